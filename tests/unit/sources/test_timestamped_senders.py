"""Stripe, Slack and Standard Webhooks: signatures made by the senders' own libraries, time windows, replays."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import stripe
from tests.conftest import drain
from tests.senders import (
    EXAMPLE_TIME,
    compact,
    first_secret,
    slack_signature,
    standard_webhooks_signature,
    stripe_signature,
)

from inqueue.envelope import Envelope
from inqueue.httpapi import Request
from inqueue.secrets import SecretStore
from inqueue.sources import KindDeps, SourceConfig
from inqueue.sources import slack as slack_kind
from inqueue.sources import standard_webhooks as webhooks_kind

Send = Callable[..., dict[str, Any]]
T = EXAMPLE_TIME

STRIPE_EVENT = compact({"id": "evt_1", "object": "event", "type": "invoice.paid", "livemode": False, "data": {}})
SLACK_EVENT = compact({"type": "event_callback", "event_id": "Ev1", "team_id": "T1", "event": {"type": "message"}})
WEBHOOK_EVENT = compact({"type": "user.created", "timestamp": "2026-11-23T12:00:00Z", "data": {"id": "u1"}})


def stripe_post(send: Send, body: bytes = STRIPE_EVENT, *, header: str | None = None, at: int = T) -> dict[str, Any]:
    signature = stripe_signature(body, first_secret("stripe"), at) if header is None else header
    return send("stripe", body, {"content-type": "application/json; charset=utf-8", "stripe-signature": signature})


def slack_headers(body: bytes, at: int = T, secret: str | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-slack-request-timestamp": str(at),
        "x-slack-signature": slack_signature(body, secret or first_secret("slack"), at),
    }


def webhook_headers(body: bytes, at: int = T, message_id: str = "msg_1", secret: str | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(at),
        "webhook-signature": standard_webhooks_signature(message_id, body, secret or first_secret("webhooks"), at),
    }


def code(answer: dict[str, Any]) -> str:
    return str(answer["error"]["code"]) if "error" in answer else "queued"


# --- Stripe


def test_stripe_event_signed_by_the_stripe_library_is_queued_by_its_id_and_type(
    send: Send, sqs: Any, queue_url: str
) -> None:
    answer = stripe_post(send)

    assert answer["status"] == 202
    envelope = Envelope.from_json(drain(sqs, queue_url)[0]["Body"])
    assert (envelope.type, envelope.delivery_id, envelope.meta) == ("invoice.paid", "evt_1", {"livemode": False})


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("", "missing_signature", id="no-header"),
        pytest.param(f"v1={'0' * 64}", "missing_timestamp", id="no-t"),
        pytest.param(f"t={T}", "missing_signature", id="no-v1"),
        pytest.param(f"t=soon,v1={'0' * 64}", "bad_timestamp", id="t-not-a-number"),
        pytest.param(f"t={T},v1={'0' * 64}", "bad_signature", id="wrong-v1"),
        pytest.param(f"t={T},v0=abc", "missing_signature", id="only-other-schemes"),
    ],
)
def test_stripe_header_problems_are_401_with_a_code(send: Send, header: str, expected: str) -> None:
    answer = stripe_post(send, header=header)

    assert (answer["status"], code(answer)) == (401, expected)


def test_stripe_rejects_a_tampered_body_and_another_endpoints_secret(send: Send) -> None:
    good = stripe_signature(STRIPE_EVENT, first_secret("stripe"), T)
    other = stripe_signature(STRIPE_EVENT, "whsec_someoneElse", T)

    assert code(stripe_post(send, STRIPE_EVENT.replace(b"evt_1", b"evt_2"), header=good)) == "bad_signature"
    assert code(stripe_post(send, header=other)) == "bad_signature"


def test_stripe_tries_every_v1_while_a_secret_is_rolled(send: Send) -> None:
    old = stripe_signature(STRIPE_EVENT, "whsec_rolledAway", T).split(",")[1]
    current = stripe_signature(STRIPE_EVENT, first_secret("stripe"), T)

    assert stripe_post(send, header=f"{current.split(',')[0]},{old},{current.split(',')[1]}")["status"] == 202


@pytest.mark.parametrize(
    ("offset", "expected"), [(-301, "stale_timestamp"), (301, "stale_timestamp"), (-300, "queued"), (300, "queued")]
)
def test_stripe_timestamp_must_be_within_five_minutes_either_way(send: Send, offset: int, expected: str) -> None:
    assert code(stripe_post(send, at=T + offset)) == expected


def test_stripe_replay_inside_the_window_is_the_same_event_and_outside_it_is_stale(
    send: Send, clock: Any, sqs: Any, queue_url: str
) -> None:
    # GIVEN one signed Stripe delivery
    header = stripe_signature(STRIPE_EVENT, first_secret("stripe"), T)

    # WHEN it is replayed a minute later, then ten minutes later
    first = stripe_post(send, header=header)
    clock.now = T + 60
    replay = stripe_post(send, header=header)
    clock.now = T + 600
    late = stripe_post(send, header=header)

    # THEN the in-window replay carries the same event id (deduplicated downstream); the late one is refused
    assert first["status"] == replay["status"] == 202
    assert first["id"] == replay["id"]
    assert [Envelope.from_json(m["Body"]).id for m in drain(sqs, queue_url)] == [first["id"], first["id"]]
    assert (late["status"], code(late)) == (401, "stale_timestamp")


def test_stripe_library_accepts_what_we_accept() -> None:
    header = stripe_signature(STRIPE_EVENT, first_secret("stripe"), T)

    assert stripe.WebhookSignature.verify_header(STRIPE_EVENT, header, first_secret("stripe"), tolerance=None)


# --- Slack


SLACK_DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_DOC_TIMESTAMP = 1531420618
SLACK_DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


class OneSecret(SecretStore):
    """A store holding one literal secret: for checking published vectors against the verifier alone."""

    def __init__(self, secret: str):
        super().__init__()
        self._secret = secret

    def get(self, ref: str) -> tuple[str, ...]:
        return (self._secret,)


def request(body: bytes, headers: dict[str, str]) -> Request:
    return Request("POST", "/hooks/x", {}, {}, headers, body, "req", "203.0.113.10")


def test_slack_documented_example_verifies() -> None:
    # GIVEN the worked example of docs.slack.dev "Verifying requests from Slack", at its own time
    deps = KindDeps(secrets=OneSecret(SLACK_DOC_SECRET), clock=lambda: SLACK_DOC_TIMESTAMP + 10)
    verifier = slack_kind.build(SourceConfig("slack", "slack", {"secret": "ssm:/doc"}), deps)
    headers = {"x-slack-request-timestamp": str(SLACK_DOC_TIMESTAMP), "x-slack-signature": SLACK_DOC_SIGNATURE}

    # WHEN / THEN it verifies, and one changed byte does not
    verifier.verify(request(SLACK_DOC_BODY, headers))
    with pytest.raises(Exception, match="signature"):
        verifier.verify(request(SLACK_DOC_BODY.replace(b"foobar", b"foobaz"), headers))


def test_slack_event_is_queued_by_inner_type_and_event_id(send: Send, sqs: Any, queue_url: str) -> None:
    assert send("slack", SLACK_EVENT, slack_headers(SLACK_EVENT))["status"] == 202

    envelope = Envelope.from_json(drain(sqs, queue_url)[0]["Body"])
    assert (envelope.type, envelope.delivery_id, envelope.meta) == ("message", "Ev1", {"team_id": "T1"})


def test_slack_retry_keeps_the_event_id_and_is_marked_for_dropping(send: Send, sqs: Any, queue_url: str) -> None:
    # GIVEN Slack's first delivery and its retry after our (imagined) timeout
    first = send("slack", SLACK_EVENT, slack_headers(SLACK_EVENT))
    retry_headers = {**slack_headers(SLACK_EVENT), "x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"}

    # WHEN the retry arrives
    retry = send("slack", SLACK_EVENT, retry_headers)

    # THEN it is the same event, and the envelope says it is a retry
    assert retry["id"] == first["id"]
    original, repeated = (Envelope.from_json(m["Body"]) for m in drain(sqs, queue_url))
    assert "retry_num" not in original.meta
    assert repeated.meta["retry_num"] == 1
    assert repeated.meta["retry_reason"] == "http_timeout"
    assert repeated.headers["x-slack-retry-num"] == "1"


def test_slack_url_verification_needs_a_valid_signature(send: Send) -> None:
    body = compact({"type": "url_verification", "challenge": "abc", "token": "x"})

    assert send("slack", body, slack_headers(body, secret="not-the-signing-secret"))["status"] == 401
    assert send("slack", body, slack_headers(body)) == {"status": 200, "challenge": "abc"}


def test_slack_interactivity_payload_is_unwrapped(send: Send, sqs: Any, queue_url: str) -> None:
    payload = {"type": "block_actions", "trigger_id": "123.456.abc", "actions": [{"action_id": "approve"}]}
    body = b"payload=" + json.dumps(payload).replace(" ", "").encode().replace(b'"', b"%22")
    headers = {**slack_headers(body), "content-type": "application/x-www-form-urlencoded"}

    assert send("slack", body, headers)["status"] == 202
    envelope = Envelope.from_json(drain(sqs, queue_url)[0]["Body"])
    assert (envelope.type, envelope.delivery_id, envelope.body) == ("block_actions", "123.456.abc", payload)


@pytest.mark.parametrize(
    ("drop", "expected"),
    [("x-slack-signature", "missing_signature"), ("x-slack-request-timestamp", "missing_timestamp")],
)
def test_slack_missing_headers_are_401(send: Send, drop: str, expected: str) -> None:
    headers = slack_headers(SLACK_EVENT)
    del headers[drop]

    assert code(send("slack", SLACK_EVENT, headers)) == expected


@pytest.mark.parametrize(
    ("offset", "expected"), [(-301, "stale_timestamp"), (301, "stale_timestamp"), (-299, "queued")]
)
def test_slack_timestamp_must_be_within_five_minutes_either_way(send: Send, offset: int, expected: str) -> None:
    assert code(send("slack", SLACK_EVENT, slack_headers(SLACK_EVENT, at=T + offset))) == expected


def test_slack_rejects_tampering_and_a_wrong_secret_and_stale_replays(send: Send, clock: Any) -> None:
    headers = slack_headers(SLACK_EVENT)

    assert code(send("slack", SLACK_EVENT.replace(b"Ev1", b"Ev2"), headers)) == "bad_signature"
    assert code(send("slack", SLACK_EVENT, slack_headers(SLACK_EVENT, secret="other"))) == "bad_signature"
    clock.now = T + 301
    assert code(send("slack", SLACK_EVENT, headers)) == "stale_timestamp"


# --- Standard Webhooks


SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standard_webhooks_specification_vector_verifies() -> None:
    # GIVEN the test vector of the Standard Webhooks specification (also Svix's manual-verification docs)
    deps = KindDeps(secrets=OneSecret(SPEC_SECRET), clock=lambda: SPEC_TIMESTAMP)
    verifier = webhooks_kind.build(SourceConfig("webhooks", "standard-webhooks", {"secret": "ssm:/x"}), deps)
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP), "webhook-signature": SPEC_SIGNATURE}

    verifier.verify(request(SPEC_BODY, headers))
    with pytest.raises(Exception, match="signature"):
        verifier.verify(request(SPEC_BODY, {**headers, "webhook-id": "msg_other"}))


def test_standard_webhook_is_queued_by_webhook_id_and_type(send: Send, sqs: Any, queue_url: str) -> None:
    assert send("webhooks", WEBHOOK_EVENT, webhook_headers(WEBHOOK_EVENT, message_id="msg_42"))["status"] == 202

    envelope = Envelope.from_json(drain(sqs, queue_url)[0]["Body"])
    assert (envelope.type, envelope.delivery_id) == ("user.created", "msg_42")


def test_standard_webhooks_tries_every_signature_and_skips_other_versions(send: Send) -> None:
    headers = webhook_headers(WEBHOOK_EVENT)
    stale_key = standard_webhooks_signature("msg_1", WEBHOOK_EVENT, "whsec_" + "b2xkLWtleS1vbGQta2V5LW9sZC1rZXk=", T)
    headers["webhook-signature"] = f"v1a,c29tZXRoaW5nIGVsc2U= {stale_key} {headers['webhook-signature']}"

    assert send("webhooks", WEBHOOK_EVENT, headers)["status"] == 202


def test_svix_header_names_are_read_too(send: Send) -> None:
    headers = {k.replace("webhook-", "svix-"): v for k, v in webhook_headers(WEBHOOK_EVENT).items()}

    assert send("webhooks", WEBHOOK_EVENT, headers)["status"] == 202


@pytest.mark.parametrize(
    ("drop", "expected"),
    [
        ("webhook-signature", "missing_signature"),
        ("webhook-id", "missing_id"),
        ("webhook-timestamp", "missing_timestamp"),
    ],
)
def test_standard_webhooks_missing_headers_are_401(send: Send, drop: str, expected: str) -> None:
    headers = webhook_headers(WEBHOOK_EVENT)
    del headers[drop]

    assert code(send("webhooks", WEBHOOK_EVENT, headers)) == expected


@pytest.mark.parametrize(("offset", "expected"), [(-301, "stale_timestamp"), (301, "stale_timestamp"), (299, "queued")])
def test_standard_webhooks_timestamp_must_be_within_five_minutes(send: Send, offset: int, expected: str) -> None:
    assert code(send("webhooks", WEBHOOK_EVENT, webhook_headers(WEBHOOK_EVENT, at=T + offset))) == expected


def test_standard_webhooks_rejects_tampering_wrong_secret_and_stale_replays(send: Send, clock: Any) -> None:
    headers = webhook_headers(WEBHOOK_EVENT)
    other = webhook_headers(WEBHOOK_EVENT, secret="whsec_" + "c29tZW9uZS1lbHNlcy1rZXktMzItYnl0ZXMhIQ==")

    assert code(send("webhooks", WEBHOOK_EVENT.replace(b"u1", b"u2"), headers)) == "bad_signature"
    assert code(send("webhooks", WEBHOOK_EVENT, other)) == "bad_signature"
    first = send("webhooks", WEBHOOK_EVENT, headers)
    clock.now = T + 120
    assert send("webhooks", WEBHOOK_EVENT, headers)["id"] == first["id"]
    clock.now = T + 301
    assert code(send("webhooks", WEBHOOK_EVENT, headers)) == "stale_timestamp"


def test_a_secret_that_is_not_whsec_base64_is_503_not_401(send: Send, ssm: Any) -> None:
    ssm.put_parameter(Name="/inqueue/webhooks", Value="whsec_", Type="SecureString", Overwrite=True)

    answer = send("webhooks", WEBHOOK_EVENT, webhook_headers(WEBHOOK_EVENT))

    assert (answer["status"], code(answer)) == (503, "secret_unavailable")
