"""``standard-webhooks`` (Svix and the many SaaS that follow standardwebhooks.com).

``webhook-signature: v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">``,
space-separated when the sender signs with several keys; the secret is ``whsec_<base64 key>``.

Options::

    {"kind": "standard-webhooks", "secret": "ssm:/inqueue/webhooks",
     "tolerance": 300}      # seconds either side of now (default 300)

``webhook-id`` is the delivery id; the type is the body's ``type`` field (the
specification's payload shape). Svix's ``svix-*`` header names are read as well.
Asymmetric ``v1a`` signatures are not supported: they are ignored, so such a request is 401.

``signed_content`` and ``sign`` are the one Standard Webhooks mechanism in Inqueue: this
verifier checks with them and ``inqueue.destinations`` signs its deliveries with them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from inqueue.errors import Unauthorized
from inqueue.httpapi import Request
from inqueue.secrets import SecretError
from inqueue.sources import Described, KindDeps, SourceConfig, check_options
from inqueue.sources.signing import (
    DEFAULT_TOLERANCE,
    check_timestamp,
    from_base64,
    hmac_digest,
    parse_timestamp,
    require_header,
    require_hmac,
)

_PREFIX = "whsec_"


def decode_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional, as in the reference library)."""
    try:
        key = base64.b64decode(secret.removeprefix(_PREFIX) + "==")
    except (ValueError, binascii.Error):
        key = b""
    if not key:
        raise SecretError("the secret for this source is malformed: not whsec_<base64>")
    return key


def signed_content(message_id: str, timestamp: int, body: bytes) -> bytes:
    """The bytes a ``v1`` signature covers: ``{webhook-id}.{webhook-timestamp}.{body}``."""
    return f"{message_id}.{timestamp}.".encode("utf-8", "surrogatepass") + body


def sign(secrets: tuple[str, ...] | list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64>`` per secret, space-separated (several while one rotates)."""
    content = signed_content(message_id, timestamp, body)
    return " ".join(
        "v1," + base64.b64encode(hmac_digest(decode_key(secret), content)).decode("ascii") for secret in secrets
    )


def _header(request: Request, name: str) -> str:
    return request.header(f"webhook-{name}") or request.header(f"svix-{name}")


@dataclass(frozen=True, slots=True)
class StandardWebhooksVerifier:
    deps: KindDeps
    secret: str
    tolerance: int
    headers_kept: tuple[str, ...] = ("webhook-id", "webhook-timestamp", "svix-id", "svix-timestamp")

    def verify(self, request: Request) -> None:
        presented = require_header(_header(request, "signature"), "webhook-signature")
        message_id = require_header(_header(request, "id"), "webhook-id", "missing_id")
        timestamp = parse_timestamp(
            require_header(_header(request, "timestamp"), "webhook-timestamp", "missing_timestamp")
        )
        proofs = []
        for item in presented.split():
            version, _, signature = item.partition(",")
            if version == "v1":
                proofs.append(from_base64(signature))
        if not any(proofs):
            raise Unauthorized("the webhook-signature header has no v1 signature", code="missing_signature")
        message = signed_content(message_id, timestamp, request.body)
        require_hmac([decode_key(secret) for secret in self.deps.secrets.get(self.secret)], message, proofs)
        check_timestamp(timestamp, self.deps.clock(), self.tolerance)

    def describe(self, request: Request, body: Any) -> Described:
        event_type = body.get("type") if isinstance(body, dict) else None
        return Described(
            type=event_type if isinstance(event_type, str) and event_type else "unknown",
            delivery_id=_header(request, "id") or None,
        )


def build(config: SourceConfig, deps: KindDeps) -> StandardWebhooksVerifier:
    options = check_options(config, {"tolerance"})
    return StandardWebhooksVerifier(
        deps=deps, secret=options["secret"], tolerance=int(options.get("tolerance", DEFAULT_TOLERANCE))
    )
