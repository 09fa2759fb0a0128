"""Ingress: verify, parse, queue, 202 — and every error status, with nothing queued."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.conftest import drain
from tests.factories import http_event, load_event, sign

from inqueue.envelope import Envelope
from inqueue.ingress import Ingress
from inqueue.settings import IngressSettings


@pytest.fixture
def ingress(ingress_env: dict[str, str]) -> Ingress:
    return Ingress.from_environment(clock=lambda: 1_795_435_200.0)


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def test_json_event_is_queued_in_the_documented_envelope(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    # GIVEN the signed example request that sam local invoke also uses
    event = load_event("apigw-demo-json.json")

    # WHEN the ingress handles it
    response = ingress.handle(event)

    # THEN it answers 202 with the event id, and the queue holds exactly that envelope
    assert response["statusCode"] == 202
    answer = body_of(response)
    assert answer["status"] == "queued"
    [message] = drain(sqs, queue_url)
    envelope = Envelope.from_json(message["Body"])
    assert envelope.id == answer["id"]
    assert envelope.source == "demo"
    assert envelope.type == "order.created"
    assert envelope.delivery_id == "ord_1001-created"
    assert envelope.body == {
        "type": "order.created",
        "id": "ord_1001",
        "data": {"order_id": 1001, "total": "49.90", "currency": "EUR"},
    }
    assert envelope.content_type == "application/json"
    assert envelope.received_at == "2026-11-23T12:00:00.000Z"
    assert envelope.correlation_id == event["requestContext"]["requestId"]
    assert "x-signature" not in envelope.headers
    assert envelope.headers["user-agent"] == "curl/8.5.0"
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["source"] == "demo"
    assert attributes["type"] == "order.created"
    assert attributes["event_id"] == envelope.id


def test_bitrix24_form_body_becomes_nested_objects(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    response = ingress.handle(load_event("apigw-demo-form.json"))

    assert response["statusCode"] == 202
    [message] = drain(sqs, queue_url)
    body = Envelope.from_json(message["Body"]).body
    assert body["event"] == "ONCRMDEALADD"
    assert body["data"] == {"FIELDS": {"ID": "4021"}}
    assert body["auth"]["domain"] == "example.bitrix24.com"
    assert body["auth"]["client_endpoint"] == "https://example.bitrix24.com/rest/"


def test_a_sender_retry_of_one_delivery_keeps_its_event_id(ingress: Ingress) -> None:
    event = http_event(headers={"idempotency-key": "delivery-7"})

    first, second = body_of(ingress.handle(event)), body_of(ingress.handle(event))

    assert first["id"] == second["id"]
    assert body_of(ingress.handle(http_event(headers={"idempotency-key": "delivery-8"})))["id"] != first["id"]


def test_deliveries_without_an_id_get_distinct_ids(ingress: Ingress) -> None:
    assert body_of(ingress.handle(http_event()))["id"] != body_of(ingress.handle(http_event()))["id"]


def test_correlation_id_from_the_request_reaches_the_envelope(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    ingress.handle(http_event(headers={"x-correlation-id": "checkout-42"}))

    [message] = drain(sqs, queue_url)
    assert Envelope.from_json(message["Body"]).correlation_id == "checkout-42"
    assert message["MessageAttributes"]["correlation_id"]["StringValue"] == "checkout-42"


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        pytest.param(http_event(body=b"{not json"), 400, "malformed_body", id="malformed-json"),
        pytest.param(http_event(body=b""), 400, "malformed_body", id="empty-json"),
        pytest.param(
            http_event(body=b"a[b]=1&a=2", content_type="application/x-www-form-urlencoded"),
            400,
            "malformed_body",
            id="conflicting-form-keys",
        ),
        pytest.param(http_event(source="nope"), 404, "unknown_source", id="unknown-source"),
        pytest.param(http_event(method="GET"), 405, "method_not_allowed", id="wrong-method"),
        pytest.param(
            http_event(body=b"hello", content_type="text/plain"), 415, "unsupported_media_type", id="text-plain"
        ),
        pytest.param(http_event(content_type=None), 415, "unsupported_media_type", id="no-content-type"),
        pytest.param(http_event(signed_with=None), 401, "missing_signature", id="unsigned"),
        pytest.param(http_event(signed_with="someone-else"), 401, "bad_signature", id="wrong-secret"),
    ],
)
def test_bad_requests_get_a_clear_error_and_nothing_is_queued(
    ingress: Ingress, sqs: Any, queue_url: str, event: dict[str, Any], status: int, code: str
) -> None:
    response = ingress.handle(event)

    assert response["statusCode"] == status
    assert response["headers"]["content-type"] == "application/json"
    error = body_of(response)["error"]
    assert error["code"] == code
    assert error["message"]
    assert drain(sqs, queue_url) == []


def test_wrong_method_names_the_allowed_one(ingress: Ingress) -> None:
    assert ingress.handle(http_event(method="PUT"))["headers"]["allow"] == "POST"


def test_tampered_body_is_rejected(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    event = http_event(body=b'{"amount":1}')
    event["body"] = '{"amount":1000}'

    assert ingress.handle(event)["statusCode"] == 401
    assert drain(sqs, queue_url) == []


def test_broken_base64_is_a_bad_request(ingress: Ingress) -> None:
    event = http_event()
    event["isBase64Encoded"] = True
    event["body"] = "%%% not base64"

    assert body_of(ingress.handle(event))["error"]["code"] == "malformed_body"


def test_signature_is_checked_over_the_decoded_base64_bytes(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    raw = '{"name":"Zoë"}'.encode()
    event = http_event(body=raw, base64_body=True)

    assert ingress.handle(event)["statusCode"] == 202
    assert Envelope.from_json(drain(sqs, queue_url)[0]["Body"]).body == {"name": "Zoë"}


def test_body_over_the_limit_is_413(ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INQUEUE_MAX_BODY_BYTES", "64")
    ingress = Ingress.from_environment()
    body = json.dumps({"pad": "x" * 100}).encode()

    response = ingress.handle(http_event(body=body))

    assert response["statusCode"] == 413
    assert body_of(response)["error"]["code"] == "payload_too_large"


def test_queue_failure_is_503_with_retry_after_and_never_claims_acceptance(
    ingress_env: dict[str, str], sqs: Any, queue_url: str
) -> None:
    # GIVEN an ingress whose queue does not exist (a real SQS error, not a stub)
    settings = IngressSettings.from_env({**ingress_env, "INQUEUE_QUEUE_URL": queue_url + "-gone"})
    ingress = Ingress(settings, sqs, Ingress.from_environment().sources)

    # WHEN a valid event arrives
    response = ingress.handle(http_event())

    # THEN the sender is told to retry, and nothing says "queued"
    assert response["statusCode"] == 503
    assert int(response["headers"]["retry-after"]) > 0
    assert body_of(response)["error"]["code"] == "queue_unavailable"
    assert set(body_of(response)) == {"error"}


def test_a_source_whose_secret_cannot_be_loaded_is_503_not_401(
    ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = {"demo": {"kind": "generic", "secret": "ssm:/inqueue/missing"}}
    monkeypatch.setenv("INQUEUE_SOURCES", json.dumps(sources))

    response = Ingress.from_environment().handle(http_event())

    assert response["statusCode"] == 503
    assert body_of(response)["error"]["code"] == "secret_unavailable"


def test_rotation_accepts_every_listed_secret(ingress_env: dict[str, str], ssm: Any) -> None:
    ssm.put_parameter(Name="/inqueue/demo", Value='["new-secret", "old-secret"]', Type="SecureString", Overwrite=True)
    ingress = Ingress.from_environment()

    assert ingress.handle(http_event(signed_with="old-secret"))["statusCode"] == 202
    assert ingress.handle(http_event(signed_with="new-secret"))["statusCode"] == 202
    assert ingress.handle(http_event(signed_with="retired-secret"))["statusCode"] == 401


def test_several_signatures_in_one_header_are_all_tried(ingress: Ingress) -> None:
    body = b'{"type":"ping"}'
    event = http_event(body=body, headers={"x-signature": f"{sign(body, 'other')},{sign(body)}"})

    assert ingress.handle(event)["statusCode"] == 202


def test_token_auth_accepts_bearer_and_rejects_a_wrong_token(
    ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = {"demo": {"kind": "generic", "auth": "token", "secret": "ssm:/inqueue/demo"}}
    monkeypatch.setenv("INQUEUE_SOURCES", json.dumps(sources))
    ingress = Ingress.from_environment()

    good = ingress.handle(http_event(signed_with=None, headers={"authorization": "Bearer local-demo-secret"}))
    bad = ingress.handle(http_event(signed_with=None, headers={"authorization": "Bearer guess"}))
    missing = ingress.handle(http_event(signed_with=None))

    assert good["statusCode"] == 202
    assert body_of(bad)["error"]["code"] == "bad_token"
    assert body_of(missing)["error"]["code"] == "missing_token"
