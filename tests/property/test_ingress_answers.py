"""Whatever arrives, the ingress answers 202, 200 (Slack's challenge), 4xx, or 503 if the queue fails; never raises."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from tests.senders import (
    EXAMPLE_TIME,
    SAMPLE_SECRETS,
    SOURCES,
    api_event,
    first_secret,
    github_signature,
    shopify_hmac,
    slack_signature,
    standard_webhooks_signature,
    stripe_signature,
)

from inqueue.ingress import Ingress
from inqueue.secrets import SecretStore
from inqueue.settings import IngressSettings
from inqueue.sources import KindDeps, Sources, parse_config


class FakeQueue:
    """SQS's send_message, stubbed: it accepts, or fails as an outage would."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **kwargs: Any) -> dict[str, str]:
        if self.fail:
            raise ConnectionError("queue is down")
        self.sent.append(kwargs)
        return {"MessageId": str(len(self.sent))}


@pytest.fixture(scope="module")
def ssm_client() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        for ref, value in SAMPLE_SECRETS.items():
            text = value if isinstance(value, str) else json.dumps(value)
            client.put_parameter(Name=ref.removeprefix("ssm:"), Value=text, Type="SecureString")
        yield client


def make_ingress(ssm_client: Any, queue: FakeQueue) -> Ingress:
    settings = IngressSettings.from_env({"INQUEUE_QUEUE_URL": "https://queue", "INQUEUE_SOURCES": json.dumps(SOURCES)})
    deps = KindDeps(secrets=SecretStore(ssm_client=ssm_client), clock=lambda: EXAMPLE_TIME)
    return Ingress(settings, queue, Sources(parse_config(settings.sources_json), deps), clock=lambda: EXAMPLE_TIME)


CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/x-www-form-urlencoded",
            "application/cloudevents+json",
            "text/plain",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
    st.text(max_size=40),
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
KNOWN_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["url_verification", "event_callback", "x.y", ""]) | JSONISH,
        "id": JSONISH,
        "event_id": JSONISH,
        "event": JSONISH,
        "challenge": JSONISH,
        "payload": st.text(max_size=30) | JSONISH.map(json.dumps),
        "command": JSONISH,
        "auth": JSONISH,
        "data": JSONISH,
        "ts": JSONISH,
    },
)
FORM_BODIES = st.lists(
    st.tuples(
        st.sampled_from(
            ["event", "ts", "auth[member_id]", "auth[domain]", "data[FIELDS][ID]", "payload", "command", "a[]", "a[b]"]
        )
        | st.text(max_size=10),
        st.text(max_size=20),
    ),
    max_size=6,
).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass"))
# The classes strict JSON refuses, inside otherwise plausible bodies.
PATHOLOGICAL = st.lists(
    st.sampled_from(['{"type":"x.y","a":', "[", "]", "}", '"\\ud800"', "NaN", "1e999", "Infinity", '"ok"', ","]),
    max_size=30,
).map(lambda parts: "".join(parts).encode()) | st.integers(60, 3000).map(lambda n: b"[" * n + b"]" * n)
BODIES = st.one_of(
    st.binary(max_size=200),
    PATHOLOGICAL,
    PATHOLOGICAL.map(lambda body: b"payload=" + body.replace(b"%", b"%25").replace(b"&", b"%26")),
    JSONISH.map(lambda v: json.dumps(v).encode()),
    KNOWN_FIELDS.map(lambda v: json.dumps(v).encode()),
    FORM_BODIES,
)
HEADER_NAMES = st.sampled_from(
    [
        "x-hub-signature-256",
        "x-github-event",
        "x-github-delivery",
        "stripe-signature",
        "x-slack-signature",
        "x-slack-request-timestamp",
        "x-slack-retry-num",
        "x-shopify-hmac-sha256",
        "x-shopify-topic",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-signature",
        "authorization",
        "x-correlation-id",
    ]
) | st.text(min_size=1, max_size=20)
HEADERS = st.dictionaries(HEADER_NAMES, st.text(max_size=60), max_size=6)
SOURCE_NAMES = st.sampled_from([*SOURCES, "nope", ""])
ALLOWED = {200, 202, 400, 401, 404, 405, 413, 415}


def sign(source: str, body: bytes, content_type: str) -> dict[str, str]:
    """Valid proofs for body, so the property also covers everything after verification."""
    t = EXAMPLE_TIME
    kind = SOURCES[source]["kind"]
    headers = {"content-type": content_type}
    if kind == "generic":
        headers["x-signature"] = github_signature(body, first_secret(source))
    elif kind == "github":
        headers["x-hub-signature-256"] = github_signature(body, first_secret(source))
    elif kind == "shopify":
        headers["x-shopify-hmac-sha256"] = shopify_hmac(body, first_secret(source))
    elif kind == "stripe":
        headers["stripe-signature"] = stripe_signature(body, first_secret(source), t)
    elif kind == "slack":
        headers["x-slack-request-timestamp"] = str(t)
        headers["x-slack-signature"] = slack_signature(body, first_secret(source), t)
    elif kind == "standard-webhooks":
        headers.update({"webhook-id": "msg_1", "webhook-timestamp": str(t)})
        headers["webhook-signature"] = standard_webhooks_signature("msg_1", body, first_secret(source), t)
    return headers


def is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def assert_strict_json(queue: FakeQueue) -> None:
    """What was queued reads back through an independent strict parser (RFC 8259)."""
    for request in queue.sent:
        orjson.loads(request["MessageBody"].encode("utf-8"))


def answer(ingress: Ingress, source: str, body: bytes, headers: dict[str, str], base64_body: bool, method: str) -> int:
    event = api_event(source, b"", headers, request_id="prop", base64_body=False)
    base64_body = base64_body or not is_utf8(body)  # as API Gateway does: binary bodies arrive base64-encoded
    event["body"] = base64.b64encode(body).decode() if base64_body else body.decode("utf-8", "surrogateescape")
    event["isBase64Encoded"] = base64_body
    event["requestContext"]["http"]["method"] = method
    response = ingress.handle(event)
    assert json.loads(response["body"]) is not None
    return int(response["statusCode"])


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(
    source=SOURCE_NAMES,
    body=BODIES,
    headers=HEADERS,
    content_type=CONTENT_TYPES,
    base64_body=st.booleans(),
    method=st.sampled_from(["POST", "POST", "GET", "put", ""]),
)
def test_unsigned_arbitrary_requests_get_a_4xx(
    ssm_client: Any,
    source: str,
    body: bytes,
    headers: dict[str, str],
    content_type: str,
    base64_body: bool,
    method: str,
) -> None:
    queue = FakeQueue()
    status = answer(
        make_ingress(ssm_client, queue), source, body, {**headers, "content-type": content_type}, base64_body, method
    )

    assert status in ALLOWED
    assert (status == 202) == bool(queue.sent)


@PROPERTY
@given(
    source=st.sampled_from(sorted(s for s in SOURCES if s != "bitrix24")),
    body=BODIES,
    content_type=CONTENT_TYPES,
    extra=HEADERS,
    base64_body=st.booleans(),
    queue_down=st.booleans(),
)
def test_signed_arbitrary_bodies_are_queued_refused_or_503_when_the_queue_is_down(
    ssm_client: Any,
    source: str,
    body: bytes,
    content_type: str,
    extra: dict[str, str],
    base64_body: bool,
    queue_down: bool,
) -> None:
    if SOURCES[source]["kind"] in ("stripe", "slack", "standard-webhooks"):
        body = body.decode("utf-8", "replace").encode()  # their libraries sign text, as the senders do
    queue = FakeQueue(fail=queue_down)
    headers = {**extra, **sign(source, body, content_type)}

    status = answer(make_ingress(ssm_client, queue), source, body, headers, base64_body, "POST")

    assert status in (ALLOWED - {202} | {503}) if queue_down else status in ALLOWED
    assert status != 401, "a correctly signed request was refused"
    assert_strict_json(queue)


@PROPERTY
@given(
    fields=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=20)), max_size=6),
    token=st.sampled_from(["local-bitrix-token", "guess", ""]),
    queue_down=st.booleans(),
)
def test_bitrix24_arbitrary_forms_with_or_without_a_token(
    ssm_client: Any, fields: list[tuple[str, str]], token: str, queue_down: bool
) -> None:
    from urllib.parse import urlencode

    pairs = [*fields, ("auth[member_id]", "a1b2c3d4e5f60718293a4b5c6d7e8f90"), ("auth[application_token]", token)]
    body = urlencode(pairs).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}

    status = answer(make_ingress(ssm_client, FakeQueue(fail=queue_down)), "bitrix24", body, headers, True, "POST")

    assert status in (ALLOWED | {503}) - ({202} if queue_down else {503})
