"""Signing as the senders do it, with the senders' own libraries where they publish one.

``python -m tests.senders`` rewrites the signed examples ``events/apigw-<kind>-*.json``
from the sample secrets in ``config/secrets.example.json``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import stripe
import yaml
from slack_sdk.signature import SignatureVerifier
from standardwebhooks import Webhook

from tests.factories import EVENTS, load_event

ROOT = EVENTS.parent
SAMPLE_SECRETS: dict[str, Any] = json.loads((ROOT / "config" / "secrets.example.json").read_text())
EXAMPLE_TIME = 1_795_435_200  # 2026-11-23T12:00:00Z, the time of every example event


def _sample_sources() -> dict[str, Any]:
    """The sample configuration: the template's SourcesConfig default, one source per kind."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # CloudFormation tags
    template = yaml.load((ROOT / "infra" / "template.yaml").read_text(), Loader=Loader)  # noqa: S506 - SafeLoader
    return dict(json.loads(template["Parameters"]["SourcesConfig"]["Default"]))


SOURCES = _sample_sources()


def first_secret(source: str) -> str:
    value = SAMPLE_SECRETS[SOURCES[source]["secret"]]
    return value[0] if isinstance(value, list) else value


# --- GitHub and Shopify publish no library; their docs give the construction (and GitHub a vector).


def github_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def shopify_hmac(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# --- The senders' own code.


def stripe_signature(body: bytes, secret: str, timestamp: int) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp))


class _FixedClock:
    def __init__(self, now: float):
        self._now = now

    def now(self) -> float:
        return self._now


def slack_signature(body: bytes, secret: str, timestamp: int) -> str:
    signature = SignatureVerifier(secret, clock=_FixedClock(timestamp)).generate_signature(
        timestamp=str(timestamp), body=body
    )
    assert signature is not None
    return signature


def slack_is_valid(body: bytes, secret: str, timestamp: str, signature: str, now: float) -> bool:
    return SignatureVerifier(secret, clock=_FixedClock(now)).is_valid(body, timestamp, signature)


def standard_webhooks_signature(message_id: str, body: bytes, secret: str, timestamp: int) -> str:
    return str(Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body.decode()))


# --- HTTP API 2.0 events shaped like events/apigw-demo-json.json.


def api_event(
    source: str, body: bytes, headers: dict[str, str], *, request_id: str, base64_body: bool = False
) -> dict[str, Any]:
    event = copy.deepcopy(load_event("apigw-demo-json.json"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/hooks/{source}"
    event["pathParameters"] = {"source": source}
    event["requestContext"]["requestId"] = request_id
    event["requestContext"]["http"]["userAgent"] = headers.get("user-agent", "")
    base = {
        k: v
        for k, v in event["headers"].items()
        if k in ("host", "x-amzn-trace-id", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto")
    }
    event["headers"] = {**base, "content-length": str(len(body)), **headers}
    event["isBase64Encoded"] = base64_body
    event["body"] = base64.b64encode(body).decode() if base64_body else body.decode()
    return event


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def examples() -> dict[str, dict[str, Any]]:
    """Every signed example, by file name."""
    t = EXAMPLE_TIME
    out: dict[str, dict[str, Any]] = {}

    bitrix = urlencode(
        [
            ("event", "ONCRMDEALADD"),
            ("event_handler_id", "13"),
            ("data[FIELDS][ID]", "4021"),
            ("ts", str(t - 2)),
            ("auth[domain]", "inqueue-demo.bitrix24.com"),
            ("auth[client_endpoint]", "https://inqueue-demo.bitrix24.com/rest/"),
            ("auth[server_endpoint]", "https://oauth.bitrix.info/rest/"),
            ("auth[member_id]", "a1b2c3d4e5f60718293a4b5c6d7e8f90"),
            ("auth[application_token]", "local-bitrix-token"),
        ]
    ).encode()
    out["apigw-bitrix24-deal-add.json"] = api_event(
        "bitrix24",
        bitrix,
        {"content-type": "application/x-www-form-urlencoded", "user-agent": "Bitrix24 Webhook Engine"},
        request_id="Cw3UrhB24AAEV9Q=",
        base64_body=True,
    )

    push = compact(
        {
            "ref": "refs/heads/main",
            "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "after": "0000000000000000000000000000000000000000",
            "repository": {"id": 79929171, "full_name": "inqueue/demo", "private": False},
            "pusher": {"name": "octocat", "email": "octocat@github.com"},
            "sender": {"login": "octocat", "id": 1},
            "head_commit": {"id": "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d", "message": "Say hello"},
        }
    )
    github_headers = {
        "accept": "*/*",
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/4f2b7c1",
        "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "x-github-event": "push",
        "x-github-hook-id": "292430182",
        "x-github-hook-installation-target-id": "79929171",
        "x-github-hook-installation-target-type": "repository",
    }
    secret = first_secret("github")
    out["apigw-github-push.json"] = api_event(
        "github",
        push,
        {**github_headers, "x-hub-signature-256": github_signature(push, secret)},
        request_id="Cw3UrhGHBAAEV9Q=",
    )
    ping = compact({"zen": "Keep it logically awesome.", "hook_id": 292430182, "hook": {"type": "Repository"}})
    ping_form = urlencode({"payload": ping.decode()}).encode()
    out["apigw-github-ping-form.json"] = api_event(
        "github",
        ping_form,
        {
            **github_headers,
            "content-type": "application/x-www-form-urlencoded",
            "x-github-delivery": "0b5f6c7e-cc79-11e3-8f2d-9e4b0c4a6d11",
            "x-github-event": "ping",
            "x-hub-signature-256": github_signature(ping_form, secret),
        },
        request_id="Cw3UrhGHCAAEV9Q=",
        base64_body=True,
    )

    intent = compact(
        {
            "id": "evt_3QdemoInqueue0001",
            "object": "event",
            "api_version": "2025-10-29.clover",
            "created": t - 1,
            "data": {
                "object": {
                    "id": "pi_3QdemoInqueue0001",
                    "object": "payment_intent",
                    "amount": 4990,
                    "currency": "eur",
                    "status": "succeeded",
                    "metadata": {"order_id": "1001"},
                }
            },
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": "req_demoInqueue01", "idempotency_key": "1001-pay"},
            "type": "payment_intent.succeeded",
        }
    )
    out["apigw-stripe-payment-intent-succeeded.json"] = api_event(
        "stripe",
        intent,
        {
            "accept": "*/*; q=0.5, application/xml",
            "cache-control": "no-cache",
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "stripe-signature": stripe_signature(intent, first_secret("stripe"), t),
        },
        request_id="Cw3UrhSTRAAEV9Q=",
    )

    slack_secret = first_secret("slack")
    slack_headers = {
        "accept": "*/*",
        "accept-encoding": "gzip,deflate",
        "content-type": "application/json",
        "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "x-slack-request-timestamp": str(t),
    }
    mention = compact(
        {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "team_id": "T061EG9R6",
            "api_app_id": "A0PNCHHK2",
            "event": {
                "type": "app_mention",
                "user": "U061F7AUR",
                "text": "<@U0LAN0Z89> is it everything a river should be?",
                "ts": "1515449522.000016",
                "channel": "C0LAN2Q65",
                "event_ts": "1515449522000016",
            },
            "type": "event_callback",
            "event_id": "Ev0LAN670R",
            "event_time": t - 1,
            "authorizations": [{"team_id": "T061EG9R6", "user_id": "U0LAN0Z89", "is_bot": True}],
        }
    )
    out["apigw-slack-app-mention.json"] = api_event(
        "slack",
        mention,
        {**slack_headers, "x-slack-signature": slack_signature(mention, slack_secret, t)},
        request_id="Cw3UrhSLKAAEV9Q=",
    )
    challenge = compact(
        {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    out["apigw-slack-url-verification.json"] = api_event(
        "slack",
        challenge,
        {**slack_headers, "x-slack-signature": slack_signature(challenge, slack_secret, t)},
        request_id="Cw3UrhSLLAAEV9Q=",
    )
    command = urlencode(
        [
            ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
            ("team_id", "T0001"),
            ("team_domain", "example"),
            ("channel_id", "C2147483705"),
            ("channel_name", "test"),
            ("user_id", "U2147483697"),
            ("user_name", "Steve"),
            ("command", "/weather"),
            ("text", "94070"),
            ("response_url", "https://hooks.slack.com/commands/1234/5678"),
            ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
            ("api_app_id", "A123456"),
        ]
    ).encode()
    out["apigw-slack-slash-command.json"] = api_event(
        "slack",
        command,
        {
            **slack_headers,
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-signature": slack_signature(command, slack_secret, t),
        },
        request_id="Cw3UrhSLMAAEV9Q=",
        base64_body=True,
    )

    order = compact(
        {
            "id": 820982911946154508,
            "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
            "email": "jon@example.com",
            "created_at": "2026-11-23T06:59:58-05:00",
            "currency": "EUR",
            "total_price": "49.90",
            "financial_status": "paid",
            "line_items": [{"id": 866550311766439020, "sku": "IPOD2008BLACK", "quantity": 1, "price": "49.90"}],
        }
    )
    out["apigw-shopify-orders-create.json"] = api_event(
        "shopify",
        order,
        {
            "accept": "*/*",
            "content-type": "application/json",
            "user-agent": "Shopify-Captain-Hook",
            "x-shopify-api-version": "2025-10",
            "x-shopify-event-id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
            "x-shopify-hmac-sha256": shopify_hmac(order, first_secret("shopify")),
            "x-shopify-shop-domain": "inqueue-demo.myshopify.com",
            "x-shopify-topic": "orders/create",
            "x-shopify-triggered-at": "2026-11-23T11:59:59.123456Z",
            "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        },
        request_id="Cw3UrhSHPAAEV9Q=",
    )

    invoice = compact(
        {
            "type": "invoice.paid",
            "timestamp": "2026-11-23T11:59:59.000Z",
            "data": {"invoice_id": "inv_1001", "customer_id": "cus_42", "amount": 4990, "currency": "EUR"},
        }
    )
    message_id = "msg_2Kq8zqRbInqueueDemo0001"
    out["apigw-standard-webhooks-invoice-paid.json"] = api_event(
        "webhooks",
        invoice,
        {
            "accept": "*/*",
            "content-type": "application/json",
            "user-agent": "Svix-Webhooks/1.76.1 (sender-inqueue; +https://www.standardwebhooks.com/)",
            "webhook-id": message_id,
            "webhook-timestamp": str(t),
            "webhook-signature": standard_webhooks_signature(message_id, invoice, first_secret("webhooks"), t),
        },
        request_id="Cw3UrhSTWAAEV9Q=",
    )
    return out


def main() -> None:
    for name, event in examples().items():
        (EVENTS / name).write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
