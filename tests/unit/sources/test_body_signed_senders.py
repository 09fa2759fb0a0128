"""GitHub, Shopify and Bitrix24: body HMACs (GitHub's published vector) and Bitrix24's per-portal tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from tests.conftest import drain
from tests.senders import EXAMPLE_TIME, compact, first_secret, github_signature, shopify_hmac
from tests.unit.sources.test_timestamped_senders import OneSecret, code, request

from inqueue.envelope import Envelope
from inqueue.errors import Unauthorized
from inqueue.sources import KindDeps, SourceConfig
from inqueue.sources import github as github_kind

Send = Callable[..., dict[str, Any]]
T = EXAMPLE_TIME
PUSH = compact({"ref": "refs/heads/main", "after": "7fd1a60b", "repository": {"full_name": "inqueue/demo"}})
ORDER = compact({"id": 820982911946154508, "total_price": "49.90"})


def github_headers(body: bytes, secret: str | None = None, delivery: str = "d-1") -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-github-event": "push",
        "x-github-delivery": delivery,
        "x-hub-signature-256": github_signature(body, secret or first_secret("github")),
    }


def shopify_headers(body: bytes, secret: str | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-shopify-topic": "orders/create",
        "x-shopify-webhook-id": "wh-1",
        "x-shopify-shop-domain": "demo.myshopify.com",
        "x-shopify-hmac-sha256": shopify_hmac(body, secret or first_secret("shopify")),
    }


# --- GitHub


def test_github_documented_test_values_verify() -> None:
    # GIVEN the values of docs.github.com "Validating webhook deliveries" > "Testing the webhook payload validation"
    deps = KindDeps(secrets=OneSecret("It's a Secret to Everybody"), clock=lambda: 0.0)
    verifier = github_kind.build(SourceConfig("github", "github", {"secret": "ssm:/doc"}), deps)
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    verifier.verify(request(b"Hello, World!", {"x-hub-signature-256": signature}))
    with pytest.raises(Unauthorized):
        verifier.verify(request(b"Hello, World?", {"x-hub-signature-256": signature}))


def test_github_push_is_queued_by_event_and_delivery(send: Send, sqs: Any, queue_url: str) -> None:
    assert send("github", PUSH, github_headers(PUSH))["status"] == 202

    envelope = Envelope.from_json(drain(sqs, queue_url)[0]["Body"])
    assert (envelope.type, envelope.delivery_id, envelope.headers["x-github-event"]) == ("push", "d-1", "push")
    assert "x-hub-signature-256" not in envelope.headers


def test_github_redelivery_keeps_the_event_id(send: Send) -> None:
    assert send("github", PUSH, github_headers(PUSH))["id"] == send("github", PUSH, github_headers(PUSH))["id"]
    assert (
        send("github", PUSH, github_headers(PUSH, delivery="d-2"))["id"]
        != send("github", PUSH, github_headers(PUSH))["id"]
    )


def test_github_accepts_the_previous_secret_while_it_is_rotated(send: Send) -> None:
    # The sample secret is ["local-github-secret", "local-github-secret-previous"].
    assert send("github", PUSH, github_headers(PUSH, secret="local-github-secret-previous"))["status"] == 202
    assert code(send("github", PUSH, github_headers(PUSH, secret="local-github-secret-retired"))) == "bad_signature"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"x-hub-signature-256": ""}, "missing_signature", id="missing"),
        pytest.param({"x-hub-signature-256": "sha256=" + "0" * 64}, "bad_signature", id="wrong"),
        pytest.param({"x-hub-signature-256": "sha256=zz"}, "bad_signature", id="not-hex"),
        pytest.param({"x-hub-signature-256": github_signature(PUSH, "guess")}, "bad_signature", id="wrong-secret"),
    ],
)
def test_github_bad_proofs_are_401(
    send: Send, sqs: Any, queue_url: str, headers: dict[str, str], expected: str
) -> None:
    answer = send("github", PUSH, {**github_headers(PUSH), **headers})

    assert (answer["status"], code(answer)) == (401, expected)
    assert drain(sqs, queue_url) == []


def test_github_tampered_body_is_401(send: Send) -> None:
    assert code(send("github", PUSH.replace(b"main", b"prod"), github_headers(PUSH))) == "bad_signature"


# --- Shopify


def test_shopify_order_is_queued_by_topic_and_webhook_id(send: Send, sqs: Any, queue_url: str) -> None:
    assert send("shopify", ORDER, shopify_headers(ORDER))["status"] == 202

    envelope = Envelope.from_json(drain(sqs, queue_url)[0]["Body"])
    assert (envelope.type, envelope.delivery_id, envelope.meta) == (
        "orders/create",
        "wh-1",
        {"shop_domain": "demo.myshopify.com"},
    )


def test_shopify_events_headers_without_the_x_prefix_work_too(send: Send) -> None:
    headers = {k.removeprefix("x-"): v for k, v in shopify_headers(ORDER).items()}

    assert send("shopify", ORDER, headers)["status"] == 202


@pytest.mark.parametrize(
    ("hmac_header", "expected"),
    [
        pytest.param("", "missing_signature", id="missing"),
        pytest.param("bm90IGl0", "bad_signature", id="wrong"),
        pytest.param("%%%", "bad_signature", id="not-base64"),
        pytest.param(shopify_hmac(ORDER, "another-app"), "bad_signature", id="wrong-secret"),
        pytest.param(shopify_hmac(ORDER, first_secret("shopify")).encode().hex(), "bad_signature", id="hex-not-b64"),
    ],
)
def test_shopify_bad_proofs_are_401(send: Send, hmac_header: str, expected: str) -> None:
    answer = send("shopify", ORDER, {**shopify_headers(ORDER), "x-shopify-hmac-sha256": hmac_header})

    assert (answer["status"], code(answer)) == (401, expected)


def test_shopify_tampered_body_is_401(send: Send) -> None:
    assert code(send("shopify", ORDER.replace(b"49.90", b"0.01"), shopify_headers(ORDER))) == "bad_signature"


# --- Bitrix24


def bitrix_form(
    token: str = "local-bitrix-token",  # noqa: S107 - the sample token from config/secrets.example.json
    member_id: str = "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    domain: str = "inqueue-demo.bitrix24.com",
    ts: str | None = str(T - 5),
    deal: str = "4021",
) -> bytes:
    fields = [
        ("event", "ONCRMDEALUPDATE"),
        ("data[FIELDS][ID]", deal),
        *([("ts", ts)] if ts is not None else []),
        ("auth[domain]", domain),
        ("auth[member_id]", member_id),
        ("auth[access_token]", "s1morf609228iwyjjpvfv6wsvuja4p8u"),
        ("auth[application_token]", token),
    ]
    return urlencode([(k, v) for k, v in fields if v]).encode()


def post_bitrix(send: Send, body: bytes) -> dict[str, Any]:
    return send("bitrix24", body, {"content-type": "application/x-www-form-urlencoded"}, base64_body=True)


def test_bitrix24_event_is_queued_with_a_derived_id_and_without_its_token(send: Send, sqs: Any, queue_url: str) -> None:
    assert post_bitrix(send, bitrix_form())["status"] == 202

    [message] = drain(sqs, queue_url)
    envelope = Envelope.from_json(message["Body"])
    assert envelope.type == "ONCRMDEALUPDATE"
    assert envelope.delivery_id == f"a1b2c3d4e5f60718293a4b5c6d7e8f90:ONCRMDEALUPDATE:4021:{T - 5}"
    assert "application_token" not in envelope.body["auth"]
    assert envelope.body["auth"]["access_token"] == "s1morf609228iwyjjpvfv6wsvuja4p8u"
    assert envelope.meta == {"domain": "inqueue-demo.bitrix24.com", "member_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90"}
    assert "local-bitrix-token" not in message["Body"]


def test_bitrix24_same_event_same_id_another_ts_or_entity_another_id(send: Send) -> None:
    first = post_bitrix(send, bitrix_form())["id"]

    assert post_bitrix(send, bitrix_form())["id"] == first
    assert post_bitrix(send, bitrix_form(ts=str(T - 4)))["id"] != first
    assert post_bitrix(send, bitrix_form(deal="4022"))["id"] != first


def test_bitrix24_portal_found_by_domain_accepts_each_of_its_rotated_tokens(send: Send) -> None:
    # The sample map keys the second portal by domain, with a new and an old token.
    for token in ("local-bitrix-token-2-new", "local-bitrix-token-2-old"):
        body = bitrix_form(
            token=token, member_id="ffffffffffffffffffffffffffffffff", domain="second-portal.bitrix24.com"
        )
        assert post_bitrix(send, body)["status"] == 202


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(bitrix_form(token=""), "missing_token", id="no-token"),
        pytest.param(bitrix_form(token="guess"), "bad_token", id="wrong-token"),
        pytest.param(bitrix_form(token="local-bitrix-token-2-new"), "bad_token", id="another-portals-token"),
        pytest.param(bitrix_form(member_id="unknown", domain="evil.bitrix24.com"), "unknown_portal", id="unknown"),
        pytest.param(bitrix_form(ts=str(T - 86_401)), "stale_timestamp", id="a-day-old"),
        pytest.param(bitrix_form(ts=str(T + 301)), "stale_timestamp", id="future"),
        pytest.param(b"\xff\xfe", "missing_token", id="not-utf8"),
    ],
)
def test_bitrix24_bad_proofs_are_401(send: Send, sqs: Any, queue_url: str, body: bytes, expected: str) -> None:
    answer = post_bitrix(send, body)

    assert (answer["status"], code(answer)) == (401, expected)
    assert drain(sqs, queue_url) == []


def test_bitrix24_without_ts_is_accepted_with_a_fresh_id(send: Send) -> None:
    first, second = post_bitrix(send, bitrix_form(ts=None)), post_bitrix(send, bitrix_form(ts=None))

    assert first["status"] == second["status"] == 202
    assert first["id"] != second["id"]


def test_bitrix24_outgoing_webhook_token_as_a_plain_secret(send: Send, ssm: Any) -> None:
    ssm.put_parameter(Name="/inqueue/bitrix24", Value="outgoing-token", Type="SecureString", Overwrite=True)

    assert post_bitrix(send, bitrix_form(token="outgoing-token", member_id="any"))["status"] == 202
    assert code(post_bitrix(send, bitrix_form(token="local-bitrix-token"))) == "bad_token"
