"""The signed examples in events/: each is accepted with the right type and id, and a tampered copy is 401."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from tests.conftest import drain
from tests.factories import EVENTS, load_event

from inqueue.envelope import Envelope, event_id_for
from inqueue.ingress import Ingress

# file -> (source, type, delivery id)
QUEUED = {
    "apigw-bitrix24-deal-add.json": (
        "bitrix24",
        "ONCRMDEALADD",
        "a1b2c3d4e5f60718293a4b5c6d7e8f90:ONCRMDEALADD:4021:1795435198",
    ),
    "apigw-github-push.json": ("github", "push", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    "apigw-github-ping-form.json": ("github", "ping", "0b5f6c7e-cc79-11e3-8f2d-9e4b0c4a6d11"),
    "apigw-stripe-payment-intent-succeeded.json": ("stripe", "payment_intent.succeeded", "evt_3QdemoInqueue0001"),
    "apigw-slack-app-mention.json": ("slack", "app_mention", "Ev0LAN670R"),
    "apigw-slack-slash-command.json": ("slack", "slash_command", "13345224609.738474920.8088930838d88f008e0"),
    "apigw-shopify-orders-create.json": ("shopify", "orders/create", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
    "apigw-standard-webhooks-invoice-paid.json": ("webhooks", "invoice.paid", "msg_2Kq8zqRbInqueueDemo0001"),
}
SENDER_EXAMPLES = sorted(p.name for p in EVENTS.glob("apigw-*.json") if not p.name.startswith("apigw-demo-"))


def test_every_sender_example_is_listed_here() -> None:
    assert set(SENDER_EXAMPLES) == {*QUEUED, "apigw-slack-url-verification.json"}


@pytest.mark.parametrize("name", sorted(QUEUED))
def test_signed_example_is_queued_with_its_type_and_stable_id(
    ingress: Ingress, sqs: Any, queue_url: str, name: str
) -> None:
    # GIVEN a signed example request, at the time it was signed
    event = load_event(name)
    source, event_type, delivery_id = QUEUED[name]

    # WHEN the ingress handles it
    response = ingress.handle(event)

    # THEN it is queued once, typed and identified as the sender meant, in the body and the attributes
    assert response["statusCode"] == 202, response["body"]
    [message] = drain(sqs, queue_url)
    envelope = Envelope.from_json(message["Body"])
    assert (envelope.source, envelope.type, envelope.delivery_id) == (source, event_type, delivery_id)
    assert envelope.id == json.loads(response["body"])["id"] == event_id_for(source, delivery_id)
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert (attributes["source"], attributes["type"], attributes["event_id"]) == (source, event_type, envelope.id)
    assert isinstance(envelope.body, dict)


def tampered(event: dict[str, Any]) -> dict[str, Any]:
    """The same request with one byte of the body changed (for Bitrix24, the token: its only proof)."""
    raw = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    if b"application_token" in raw:
        raw = raw.replace(b"local-bitrix-token", b"local-bitrix-tokeN")
    else:
        raw = raw.replace(b"1", b"2", 1) if b"1" in raw else raw + b" "
    return {**event, "body": base64.b64encode(raw).decode() if event["isBase64Encoded"] else raw.decode()}


@pytest.mark.parametrize("name", SENDER_EXAMPLES)
def test_a_tampered_copy_is_401_and_not_queued(ingress: Ingress, sqs: Any, queue_url: str, name: str) -> None:
    response = ingress.handle(tampered(load_event(name)))

    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["code"] in ("bad_signature", "bad_token")
    assert drain(sqs, queue_url) == []


def test_github_form_payload_is_queued_as_its_json(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    ingress.handle(load_event("apigw-github-ping-form.json"))

    body = Envelope.from_json(drain(sqs, queue_url)[0]["Body"]).body
    assert body["zen"] == "Keep it logically awesome."
    assert body["hook_id"] == 292430182


def test_slack_url_verification_is_answered_with_its_challenge_and_not_queued(
    ingress: Ingress, sqs: Any, queue_url: str
) -> None:
    response = ingress.handle(load_event("apigw-slack-url-verification.json"))

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert drain(sqs, queue_url) == []
