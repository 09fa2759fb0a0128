"""``stripe``: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]``, HMAC-SHA256 over ``"{t}.{body}"``.

Options::

    {"kind": "stripe", "secret": "ssm:/inqueue/stripe",   # the endpoint's whsec_... signing secret
     "tolerance": 300}                                    # seconds either side of now (default 300)

The event ``id`` and ``type`` come from the body. While Stripe rolls an endpoint secret it
sends one ``v1`` per active secret; every one is tried, and so is every secret listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inqueue.errors import Unauthorized
from inqueue.httpapi import Request
from inqueue.sources import Described, KindDeps, SourceConfig, check_options
from inqueue.sources.signing import (
    DEFAULT_TOLERANCE,
    check_timestamp,
    from_hex,
    parse_timestamp,
    require_header,
    require_hmac,
)

SIGNATURE_HEADER = "stripe-signature"


@dataclass(frozen=True, slots=True)
class StripeVerifier:
    deps: KindDeps
    secret: str
    tolerance: int
    headers_kept: tuple[str, ...] = ()

    def verify(self, request: Request) -> None:
        presented = require_header(request.header(SIGNATURE_HEADER), "Stripe-Signature")
        timestamps, proofs = [], []
        for item in presented.split(","):
            key, _, value = item.strip().partition("=")
            if key == "t":
                timestamps.append(value)
            elif key == "v1":
                proofs.append(from_hex(value))
        if not timestamps:
            raise Unauthorized("the Stripe-Signature header has no timestamp (t=)", code="missing_timestamp")
        if not any(proofs):
            raise Unauthorized("the Stripe-Signature header has no v1 signature", code="missing_signature")
        timestamp = parse_timestamp(timestamps[0])
        message = f"{timestamp}.".encode() + request.body
        require_hmac([secret.encode() for secret in self.deps.secrets.get(self.secret)], message, proofs)
        # Only an authentic request is told its timestamp is stale: a forgery learns nothing.
        check_timestamp(timestamp, self.deps.clock(), self.tolerance)

    def describe(self, request: Request, body: Any) -> Described:
        event = body if isinstance(body, dict) else {}
        event_id, event_type = event.get("id"), event.get("type")
        meta: dict[str, Any] = {}
        if isinstance(event.get("livemode"), bool):
            meta["livemode"] = event["livemode"]
        if isinstance(event.get("account"), str):
            meta["account"] = event["account"]
        return Described(
            type=event_type if isinstance(event_type, str) and event_type else "unknown",
            delivery_id=event_id if isinstance(event_id, str) and event_id else None,
            meta=meta,
        )


def build(config: SourceConfig, deps: KindDeps) -> StripeVerifier:
    options = check_options(config, {"tolerance"})
    return StripeVerifier(
        deps=deps, secret=options["secret"], tolerance=int(options.get("tolerance", DEFAULT_TOLERANCE))
    )
