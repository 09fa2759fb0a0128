"""``generic``: the user's own clients, proving themselves with an HMAC of the body or a token.

Options::

    {"kind": "generic", "auth": "hmac",  "secret": "ssm:/inqueue/orders",
     "header": "x-signature",            # "sha256=<hex>" or "<hex>"; several, comma-separated
     "timestamp_header": "x-timestamp"}  # optional: then "{timestamp}.{body}" is signed
    {"kind": "generic", "auth": "token", "secret": "ssm:/inqueue/orders",
     "header": "authorization"}          # "Bearer <token>"; any other header carries the bare token

The event type comes from the ``type_header`` (default ``x-event-type``) or the JSON
``type_field``, else ``default_type`` (``event``); the delivery id from ``id_header``
(default ``idempotency-key``) or ``id_field``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inqueue.errors import Unauthorized
from inqueue.httpapi import Request
from inqueue.secrets import split_reference
from inqueue.sources import Described, KindDeps, SourceConfig
from inqueue.sources.signing import (
    DEFAULT_TOLERANCE,
    check_timestamp,
    from_base64,
    from_hex,
    matches_any,
    parse_timestamp,
    require_header,
    require_hmac,
)

_ALLOWED = {
    "auth",
    "secret",
    "header",
    "timestamp_header",
    "tolerance",
    "encoding",
    "type_header",
    "type_field",
    "default_type",
    "id_header",
    "id_field",
}


@dataclass(frozen=True, slots=True)
class GenericVerifier:
    deps: KindDeps
    auth: str
    secret: str
    header: str
    timestamp_header: str
    tolerance: int
    encoding: str
    type_header: str
    type_field: str
    default_type: str
    id_header: str
    id_field: str

    @property
    def headers_kept(self) -> tuple[str, ...]:
        return tuple(h for h in (self.type_header, self.id_header, self.timestamp_header) if h)

    def verify(self, request: Request) -> None:
        presented = request.header(self.header)
        if not presented:
            raise Unauthorized(
                f"the {self.header} header is missing",
                code="missing_signature" if self.auth == "hmac" else "missing_token",
            )
        secrets = [s.encode() for s in self.deps.secrets.get(self.secret)]
        if self.auth == "token":
            token = presented[7:] if presented[:7].lower() == "bearer " else presented
            if not matches_any(secrets, [token.strip().encode("utf-8", "surrogatepass")]):
                raise Unauthorized("the token is not valid for this source", code="bad_token")
            return
        message = request.body
        timestamp = None
        if self.timestamp_header:
            timestamp = parse_timestamp(
                require_header(request.header(self.timestamp_header), self.timestamp_header, "missing_timestamp")
            )
            message = f"{timestamp}.".encode() + request.body
        proofs = [self._decode(part) for part in presented.split(",")]
        require_hmac(secrets, message, proofs)
        if timestamp is not None:
            check_timestamp(timestamp, self.deps.clock(), self.tolerance)

    def _decode(self, proof: str) -> bytes:
        proof = proof.strip().removeprefix("sha256=")
        return from_hex(proof) if self.encoding == "hex" else from_base64(proof)

    def describe(self, request: Request, body: Any) -> Described:
        fields = body if isinstance(body, dict) else {}
        event_type = request.header(self.type_header) or _text(fields.get(self.type_field)) or self.default_type
        delivery_id = request.header(self.id_header) or _text(fields.get(self.id_field)) or None
        return Described(type=event_type, delivery_id=delivery_id)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value) if isinstance(value, int) else ""


def build(config: SourceConfig, deps: KindDeps) -> GenericVerifier:
    options = dict(config.options)
    unknown = set(options) - _ALLOWED
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)}")
    auth = options.get("auth", "hmac")
    if auth not in ("hmac", "token"):
        raise ValueError("auth must be 'hmac' or 'token'")
    if not options.get("secret"):
        raise ValueError("a secret reference is required")
    split_reference(options["secret"])
    encoding = options.get("encoding", "hex")
    if encoding not in ("hex", "base64"):
        raise ValueError("encoding must be 'hex' or 'base64'")
    return GenericVerifier(
        deps=deps,
        auth=auth,
        secret=options["secret"],
        header=str(options.get("header") or ("x-signature" if auth == "hmac" else "authorization")).lower(),
        timestamp_header=str(options.get("timestamp_header") or "").lower(),
        tolerance=int(options.get("tolerance", DEFAULT_TOLERANCE)),
        encoding=encoding,
        type_header=str(options.get("type_header") or "x-event-type").lower(),
        type_field=str(options.get("type_field") or "type"),
        default_type=str(options.get("default_type") or "event"),
        id_header=str(options.get("id_header") or "idempotency-key").lower(),
        id_field=str(options.get("id_field") or ""),
    )
