"""``shopify``: ``X-Shopify-Hmac-SHA256: <base64 HMAC-SHA256 of the body>``, keyed with the app's client secret.

Options::

    {"kind": "shopify", "secret": "ssm:/inqueue/shopify"}

The type is ``X-Shopify-Topic`` (``orders/create``), the delivery id ``X-Shopify-Webhook-Id``.
Shopify's newer Events deliveries drop the ``X-`` prefix; both spellings are read. Shopify
signs no timestamp. After a client-secret rotation Shopify may sign with the old secret
for up to an hour: keep both in the secret's list until then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inqueue.httpapi import Request
from inqueue.sources import Described, KindDeps, SourceConfig, check_options
from inqueue.sources.signing import from_base64, require_header, require_hmac


def _either(request: Request, name: str) -> str:
    return request.header(f"x-{name}") or request.header(name)


@dataclass(frozen=True, slots=True)
class ShopifyVerifier:
    deps: KindDeps
    secret: str
    headers_kept: tuple[str, ...] = (
        "x-shopify-topic",
        "x-shopify-webhook-id",
        "x-shopify-event-id",
        "x-shopify-shop-domain",
        "x-shopify-api-version",
        "x-shopify-triggered-at",
        "shopify-topic",
        "shopify-webhook-id",
        "shopify-event-id",
        "shopify-shop-domain",
        "shopify-api-version",
        "shopify-triggered-at",
    )

    def verify(self, request: Request) -> None:
        presented = require_header(_either(request, "shopify-hmac-sha256"), "X-Shopify-Hmac-SHA256")
        proofs = [from_base64(part) for part in presented.split(",")]
        require_hmac([secret.encode() for secret in self.deps.secrets.get(self.secret)], request.body, proofs)

    def describe(self, request: Request, body: Any) -> Described:
        shop = _either(request, "shopify-shop-domain")
        return Described(
            type=_either(request, "shopify-topic") or "unknown",
            delivery_id=_either(request, "shopify-webhook-id") or None,
            meta={"shop_domain": shop} if shop else {},
        )


def build(config: SourceConfig, deps: KindDeps) -> ShopifyVerifier:
    options = check_options(config, set())
    return ShopifyVerifier(deps=deps, secret=options["secret"])
