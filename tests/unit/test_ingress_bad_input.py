"""Correctly signed pathological requests, and events API Gateway never sends: a 4xx that says why, nothing queued."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from tests.conftest import drain
from tests.factories import http_event, load_event
from tests.senders import (
    EXAMPLE_TIME,
    SAMPLE_SECRETS,
    SOURCES,
    api_event,
    first_secret,
    github_signature,
    slack_signature,
    stripe_signature,
)
from tests.tables import PAYLOAD_BUCKET, create_payload_bucket

from inqueue import ingress as ingress_module
from inqueue.envelope import MAX_HEADER_VALUE_BYTES, MAX_TYPE_BYTES, Envelope
from inqueue.forms import MAX_DEPTH
from inqueue.ingress import Ingress
from inqueue.status_api import StatusApi

NOW = float(EXAMPLE_TIME)


@pytest.fixture
def ingress(ingress_env: dict[str, str], ssm: Any, monkeypatch: pytest.MonkeyPatch) -> Ingress:
    """The sample sources (one per kind) with their sample secrets, over moto's SQS and SSM."""
    for ref, value in SAMPLE_SECRETS.items():
        text = value if isinstance(value, str) else json.dumps(value)
        ssm.put_parameter(Name=ref.removeprefix("ssm:"), Value=text, Type="SecureString", Overwrite=True)
    monkeypatch.setenv("INQUEUE_SOURCES", json.dumps(SOURCES))
    return Ingress.from_environment(clock=lambda: NOW)


def refused(ingress: Ingress, event: Any, sqs: Any, queue_url: str, status: int = 400) -> dict[str, str]:
    response = ingress.handle(event)
    assert response["statusCode"] == status, response
    assert response["headers"]["content-type"] == "application/json"
    error = json.loads(response["body"])["error"]
    assert set(error) == {"code", "message"}
    assert drain(sqs, queue_url) == [], "a refused request was queued"
    return dict(error)


def signed_github(body: bytes, content_type: str = "application/json", **headers: str) -> dict[str, Any]:
    return api_event(
        "github",
        body,
        {
            "content-type": content_type,
            "x-github-event": "push",
            "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            **headers,
            "x-hub-signature-256": github_signature(body, first_secret("github")),
        },
        request_id="req-github",
        base64_body=True,
    )


def signed_slack(body: bytes, content_type: str) -> dict[str, Any]:
    return api_event(
        "slack",
        body,
        {
            "content-type": content_type,
            "x-slack-request-timestamp": str(EXAMPLE_TIME),
            "x-slack-signature": slack_signature(body, first_secret("slack"), EXAMPLE_TIME),
        },
        request_id="req-slack",
        base64_body=True,
    )


PATHOLOGICAL_JSON = [
    pytest.param(b"[" * 10_000 + b"]" * 10_000, "nests deeper", id="10000-levels"),
    pytest.param(b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "nests deeper", id="5000-objects"),
    pytest.param(b'{"a":"\\ud800"}', "lone surrogate", id="lone-surrogate-escape"),
    pytest.param(b'{"a":"\xed\xa0\x80"}', "not valid UTF-8", id="raw-ED-A0-80"),
    pytest.param(b'{"a":NaN}', "NaN", id="NaN"),
    pytest.param(b'{"a":Infinity}', "Infinity", id="Infinity"),
    pytest.param(b'{"a":1e999}', "out of range", id="1e999"),
]


@pytest.mark.parametrize(("body", "reason"), PATHOLOGICAL_JSON)
def test_signed_pathological_json_is_a_400_that_says_why(
    ingress: Ingress, sqs: Any, queue_url: str, body: bytes, reason: str
) -> None:
    event = http_event(body=body, base64_body=True)

    error = refused(ingress, event, sqs, queue_url)

    assert error["code"] == "malformed_body"
    assert reason in error["message"]


@pytest.mark.parametrize(("body", "reason"), PATHOLOGICAL_JSON)
def test_the_same_inside_githubs_form_payload(
    ingress: Ingress, sqs: Any, queue_url: str, body: bytes, reason: str
) -> None:
    form = b"payload=" + b"".join(b"%%%02X" % byte for byte in body)
    error = refused(ingress, signed_github(form, "application/x-www-form-urlencoded"), sqs, queue_url)

    assert error["code"] == "malformed_body"
    assert reason in error["message"]


@pytest.mark.parametrize(("body", "reason"), PATHOLOGICAL_JSON)
def test_the_same_inside_slacks_interactivity_payload(
    ingress: Ingress, sqs: Any, queue_url: str, body: bytes, reason: str
) -> None:
    form = b"payload=" + b"".join(b"%%%02X" % byte for byte in body)
    error = refused(ingress, signed_slack(form, "application/x-www-form-urlencoded"), sqs, queue_url)

    assert error["code"] == "malformed_body"
    assert reason in error["message"]


def test_a_form_payload_that_is_not_json_at_all_is_still_queued_as_the_form(
    ingress: Ingress, sqs: Any, queue_url: str
) -> None:
    form = urlencode({"payload": "hello"}).encode()

    assert ingress.handle(signed_github(form, "application/x-www-form-urlencoded"))["statusCode"] == 202
    [message] = drain(sqs, queue_url)
    assert Envelope.from_json(message["Body"]).body == {"payload": "hello"}


def test_json_at_the_depth_limit_is_queued_as_strict_json(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    body = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH

    assert ingress.handle(http_event(body=body))["statusCode"] == 202
    [message] = drain(sqs, queue_url)
    assert json.loads(message["Body"], parse_constant=pytest.fail)["body"] == json.loads(body)


def test_a_huge_event_type_from_a_header_is_a_400_naming_it(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    event = signed_github(b'{"zen":"x"}', **{"x-github-event": "p" * 600_000})

    error = refused(ingress, event, sqs, queue_url)

    assert error["code"] == "invalid_metadata"
    assert f"the event type is 600000 bytes; at most {MAX_TYPE_BYTES}" in error["message"]


def test_a_huge_event_type_from_the_body_is_a_400(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    body = json.dumps({"id": "evt_1", "type": "t" * 600_000}).encode()
    event = api_event(
        "stripe",
        body,
        {
            "content-type": "application/json",
            "stripe-signature": stripe_signature(body, first_secret("stripe"), EXAMPLE_TIME),
        },
        request_id="req-stripe",
    )

    assert refused(ingress, event, sqs, queue_url)["code"] == "invalid_metadata"


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        pytest.param({"idempotency-key": "k" * 10_000}, "delivery id", id="delivery-id"),
        pytest.param({"user-agent": "u" * (MAX_HEADER_VALUE_BYTES + 1)}, "user-agent header", id="kept-header"),
        pytest.param({"x-event-type": "order.\ud800"}, "not valid text", id="surrogate-in-type"),
        pytest.param({"user-agent": "\udcff"}, "not valid text", id="surrogate-in-header"),
    ],
)
def test_metadata_over_its_cap_or_not_text_is_a_400(
    ingress: Ingress, sqs: Any, queue_url: str, headers: dict[str, str], named: str
) -> None:
    error = refused(ingress, http_event(headers=headers), sqs, queue_url)

    assert error["code"] == "invalid_metadata"
    assert named in error["message"]


def test_a_meta_value_from_a_header_is_capped(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    event = signed_github(b'{"zen":"x"}', **{"x-github-hook-id": "9" * 2_000})

    error = refused(ingress, event, sqs, queue_url)

    assert error["code"] == "invalid_metadata"
    assert "meta 'hook_id'" in error["message"]


def test_an_odd_request_id_is_not_used_as_the_correlation_id(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    event = http_event()
    event["requestContext"]["requestId"] = "r" * 100_000

    assert ingress.handle(event)["statusCode"] == 202
    [message] = drain(sqs, queue_url)
    assert len(Envelope.from_json(message["Body"]).correlation_id) == 36


def test_a_413_from_the_queue_limit_leaves_no_object_in_the_bucket(
    ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, sqs: Any, queue_url: str
) -> None:
    # GIVEN claim checks on, and a queue limit the envelope without its body still exceeds
    s3 = create_payload_bucket()
    monkeypatch.setenv("INQUEUE_PAYLOAD_BUCKET", PAYLOAD_BUCKET)
    monkeypatch.setenv("INQUEUE_INLINE_LIMIT_BYTES", "1024")
    monkeypatch.setattr(ingress_module, "SQS_MAX_MESSAGE_BYTES", 2048)
    ingress = Ingress.from_environment(clock=lambda: NOW)
    event = http_event(body=json.dumps({"pad": "x" * 2000}).encode(), headers={"user-agent": "u" * 2500})

    # WHEN it is handled
    error = refused(ingress, event, sqs, queue_url, status=413)

    # THEN the 413 was decided before anything was written
    assert error["code"] == "payload_too_large"
    assert s3.list_objects_v2(Bucket=PAYLOAD_BUCKET).get("KeyCount") == 0


SHAPES_API_GATEWAY_NEVER_SENDS = [
    pytest.param([], id="event-a-list"),
    pytest.param("event", id="event-a-string"),
    pytest.param(None, id="event-none"),
    pytest.param({"headers": [["content-type", "application/json"]]}, id="headers-a-list"),
    pytest.param({"headers": {"content-type": 1}}, id="header-value-a-number"),
    pytest.param({"body": {"a": 1}}, id="body-a-dict"),
    pytest.param({"body": 12}, id="body-a-number"),
    pytest.param({"isBase64Encoded": "false"}, id="base64-flag-a-string"),
    pytest.param({"requestContext": "ctx"}, id="context-a-string"),
    pytest.param({"requestContext": {"http": ["POST"]}}, id="http-a-list"),
    pytest.param({"requestContext": {"http": {"method": 7}}}, id="method-a-number"),
    pytest.param({"pathParameters": ["demo"]}, id="path-parameters-a-list"),
    pytest.param({"pathParameters": {"source": 5, "id": 5}}, id="path-parameter-a-number"),
    pytest.param({"queryStringParameters": {"wait": None}}, id="query-value-none"),
    pytest.param({"rawPath": {"p": 1}}, id="raw-path-an-object"),
]


def _shaped(change: Any, base: dict[str, Any]) -> Any:
    if not isinstance(change, dict):
        return change
    event = json.loads(json.dumps(base))
    for key, value in change.items():
        if key == "requestContext" and isinstance(value, dict):
            event[key] = {**event[key], **value}
        else:
            event[key] = value
    return event


@pytest.mark.parametrize("change", SHAPES_API_GATEWAY_NEVER_SENDS)
def test_the_ingress_answers_shapes_api_gateway_never_sends_with_a_400(
    ingress: Ingress, sqs: Any, queue_url: str, change: Any
) -> None:
    error = refused(ingress, _shaped(change, http_event()), sqs, queue_url)

    assert error["code"] == "malformed_request"


class Store:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def get(self, event_id: str) -> dict[str, Any] | None:
        if self.fail:
            raise ConnectionError("table unreachable")
        return {"status": "queued"}


@pytest.mark.parametrize("change", SHAPES_API_GATEWAY_NEVER_SENDS)
def test_the_status_function_answers_them_with_a_400_too(change: Any) -> None:
    response = StatusApi(Store()).handle(_shaped(change, load_event("apigw-demo-status.json")))

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "malformed_request"


def test_the_status_function_answers_503_when_its_store_is_down() -> None:
    response = StatusApi(Store(fail=True)).handle(load_event("apigw-demo-status.json"))

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "status_unavailable"


def test_a_bug_still_answers_the_error_body_and_is_retryable(
    ingress: Ingress, sqs: Any, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_request: Any, _body: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(type(ingress.sources.verifier("demo")), "describe", broken)

    error = refused(ingress, http_event(), sqs, queue_url, status=500)

    assert error["code"] == "internal_error"


def test_base64_of_invalid_utf8_is_still_verified_over_the_raw_bytes(
    ingress: Ingress, sqs: Any, queue_url: str
) -> None:
    raw = b'{"a":"\xff"}'
    event = http_event(body=raw, base64_body=True)
    assert event["body"] == base64.b64encode(raw).decode()

    assert refused(ingress, event, sqs, queue_url)["code"] == "malformed_body"


def test_a_delivery_id_that_is_not_text_is_a_400(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    error = refused(ingress, http_event(headers={"idempotency-key": "d-\ud800"}), sqs, queue_url)

    assert error["code"] == "invalid_metadata"
    assert "delivery id is not valid text" in error["message"]
