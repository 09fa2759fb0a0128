"""The exact bytes a destination receives, and how each answer becomes an outcome (without sockets)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from tests.factories import make_envelope

from inqueue.destinations import DeliveryFailed, decide, retry_after_seconds
from inqueue.destinations.network import Answer
from inqueue.destinations.payload import callback_body, delivery_body, signed_headers
from inqueue.errors import PermanentError, RetryLater
from inqueue.sources.standard_webhooks import sign, signed_content

NOW = 1_795_435_200.0
KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def envelope(**fields: Any) -> Any:
    defaults: dict[str, Any] = {
        "source": "bitrix24",
        "type": "ONCRMDEALADD",
        "delivery_id": "d-1",
        "headers": {"user-agent": "Bitrix24 Webhook Engine"},
        "meta": {"domain": "shop.bitrix24.com"},
        "body": {"event": "ONCRMDEALADD", "data": {"FIELDS": {"ID": "42"}}, "note": "Привет"},
    }
    return make_envelope("6d9e7a52-33a1-5d0b-8f4c-5a6c2c1f9b10", **{**defaults, **fields})


def test_the_envelope_payload_is_this_exact_byte_layout() -> None:
    body = delivery_body(envelope())
    assert (
        body
        == (
            '{"id":"6d9e7a52-33a1-5d0b-8f4c-5a6c2c1f9b10","source":"bitrix24","type":"ONCRMDEALADD",'
            '"timestamp":"2026-11-23T12:00:00.000Z","delivery_id":"d-1","correlation_id":"corr-1",'
            '"content_type":"application/json","headers":{"user-agent":"Bitrix24 Webhook Engine"},'
            '"meta":{"domain":"shop.bitrix24.com"},'
            '"data":{"event":"ONCRMDEALADD","data":{"FIELDS":{"ID":"42"}},"note":"Привет"}}'
        ).encode()
    )


def test_the_body_payload_is_the_body_alone() -> None:
    assert (
        delivery_body(envelope(), "body")
        == '{"event":"ONCRMDEALADD","data":{"FIELDS":{"ID":"42"}},"note":"Привет"}'.encode()
    )


def test_a_string_without_a_utf8_form_is_sent_escaped_as_ascii() -> None:
    body = delivery_body(envelope(body={"text": "\ud800 x é"}), "body")
    assert body == b'{"text":"\\ud800 x \\u00e9"}'


def test_a_claim_checked_body_must_be_resolved_first() -> None:
    with pytest.raises(ValueError, match="resolve the claim check"):
        delivery_body(envelope(body=None, body_ref={"bucket": "b", "key": "k"}, version=2))


def test_the_signature_is_the_standard_webhooks_hmac_over_id_timestamp_and_body() -> None:
    body = delivery_body(envelope())
    headers = signed_headers(
        message_id="evt-1", timestamp=1795435200, body=body, secrets=(SECRET,), source="bitrix24", event_type="X"
    )
    expected = base64.b64encode(hmac.new(KEY, b"evt-1.1795435200." + body, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert signed_content("evt-1", 1795435200, body) == b"evt-1.1795435200." + body
    assert headers["webhook-id"] == "evt-1"
    assert headers["webhook-timestamp"] == "1795435200"
    assert headers["content-type"] == "application/json"
    assert headers["inqueue-source"] == "bitrix24"
    assert headers["inqueue-type"] == "X"
    assert "inqueue-attempt" not in headers


def test_every_listed_secret_signs_so_either_side_of_a_rotation_verifies() -> None:
    other = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()
    signature = sign((SECRET, other), "evt-1", 1, b"{}")
    assert signature.split(" ") == [sign((SECRET,), "evt-1", 1, b"{}"), sign((other,), "evt-1", 1, b"{}")]


def test_a_type_that_cannot_be_a_header_value_is_left_out_of_the_headers() -> None:
    headers = signed_headers(
        message_id="e", timestamp=1, body=b"{}", secrets=(SECRET,), source="s", event_type="a\r\nb", attempt=3
    )
    assert "inqueue-type" not in headers
    assert headers["inqueue-attempt"] == "3"


def test_a_callback_body_has_every_field_even_when_empty() -> None:
    body = callback_body(
        event_id="e-1",
        source="bitrix24",
        event_type="X",
        status="dead",
        attempts=5,
        finished_at="2026-11-23T12:00:05.000Z",
        reason="destination 'shop' answered 400",
    )
    assert json.loads(body) == {
        "type": "inqueue.event.dead",
        "timestamp": "2026-11-23T12:00:05.000Z",
        "data": {
            "id": "e-1",
            "source": "bitrix24",
            "type": "X",
            "status": "dead",
            "attempts": 5,
            "correlation_id": None,
            "result": None,
            "result_omitted": None,
            "reason": "destination 'shop' answered 400",
        },
    }
    with pytest.raises(ValueError, match="final status"):
        callback_body(event_id="e", source="s", event_type="t", status="retrying", attempts=1, finished_at="x")


# -- answers -------------------------------------------------------------------------------


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None, *, truncated: bool = False) -> Answer:
    return Answer(status, "Reason", headers or {}, body, truncated, "203.0.113.9", 0.01)


@pytest.mark.parametrize(
    ("body", "result", "omitted"),
    [
        (b'{"deal": 42, "ok": true}', {"deal": 42, "ok": True}, None),
        (b"[1, 2, 3]", [1, 2, 3], None),
        (b"", None, None),
        (b"null", None, None),
        (b"OK", None, "not_json"),
        (b"<html>thanks</html>", None, "not_json"),
        (b'{"x": NaN}', None, "not_json"),
        (b"\xff\xfe{}", None, "not_json"),
        (json.dumps({"pad": "x" * 5000}).encode(), None, "too_large"),
        # Whitespace the compact form does not keep is not counted against the limit.
        (b'{"pad": "' + b"x" * 4000 + b'"}' + b" " * 2000, {"pad": "x" * 4000}, None),
    ],
)
def test_a_2xx_succeeds_and_its_json_answer_becomes_the_result(body: bytes, result: Any, omitted: str | None) -> None:
    delivered = decide("shop", answer(200, body), NOW)
    assert (delivered.status, delivered.result, delivered.result_omitted) == (200, result, omitted)
    assert delivered.address == "203.0.113.9"


def test_an_answer_too_long_to_read_is_too_large() -> None:
    delivered = decide("shop", answer(201, b'{"a": 1', truncated=True), NOW)
    assert (delivered.result, delivered.result_omitted) == (None, "too_large")


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_with_retry_after_come_back_when_told(status: int) -> None:
    with pytest.raises(RetryLater) as delta:
        decide("shop", answer(status, headers={"retry-after": "120"}), NOW)
    assert delta.value.seconds == 120
    assert f"answered {status}" in str(delta.value)

    with pytest.raises(RetryLater) as date:
        decide("shop", answer(status, headers={"retry-after": formatdate(NOW + 90, usegmt=True)}), NOW)
    assert date.value.seconds == 90


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (429, {}),
        (503, {}),
        (503, {"retry-after": "soon"}),
        (408, {}),
        (425, {}),
        (500, {}),
        (502, {}),
        (504, {}),
        (599, {}),
        (302, {"location": "https://elsewhere.example/"}),
        (303, {}),
        (307, {}),
    ],
)
def test_transient_answers_are_retried_with_the_backoff(status: int, headers: dict[str, str]) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        decide("shop", answer(status, b'{"error": "busy"}', headers), NOW)
    assert failed.value.status == status
    assert not isinstance(failed.value, PermanentError)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 415, 422])
def test_other_4xx_are_permanent_with_the_status_and_a_bounded_excerpt(status: int) -> None:
    with pytest.raises(PermanentError) as permanent:
        decide("shop", answer(status, b'{"error":\n  "unknown deal"}' + b" more" * 2000), NOW)
    reason = permanent.value.reason
    assert reason.startswith(f'destination \'shop\' answered {status} Reason: {{"error": "unknown deal"}} more')
    assert reason.endswith("…")
    assert len(reason) < 400


@pytest.mark.parametrize("status", [301, 308])
def test_a_permanent_redirect_is_permanent_and_names_where_it_points(status: int) -> None:
    with pytest.raises(PermanentError, match=r"location: https://new\.example/in\); redirects are not followed"):
        decide("shop", answer(status, headers={"location": "https://new.example/in"}), NOW)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("17", 17.0),
        (" 5 ", 5.0),
        ("Mon, 23 Nov 2026 12:01:00 GMT", 60.0),
        ("Mon, 23 Nov 2026 11:00:00 GMT", 0.0),  # in the past: now
        ("Monday, 23-Nov-26 12:00:30 GMT", 30.0),  # RFC 850, which RFC 9110 still asks recipients to read
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("tomorrow", None),
        ("١٢", None),  # digits, but not ASCII ones
    ],
)
def test_retry_after_reads_delta_seconds_and_http_dates(value: str, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds


def test_the_docs_byte_for_byte_example_is_what_is_sent() -> None:
    page = (Path(__file__).resolve().parents[3] / "docs" / "destinations.md").read_text()
    section = page[page.index("A Bitrix24 deal event, byte") :]
    example = section[section.index("```json\n") + 8 : section.index("\n```", section.index("```json\n"))]
    sent = delivery_body(
        envelope(
            content_type="application/x-www-form-urlencoded",
            body={"event": "ONCRMDEALADD", "data": {"FIELDS": {"ID": "42"}}},
        )
    )
    assert example.encode() == sent
