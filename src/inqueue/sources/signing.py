"""Building blocks the kinds share: HMAC digests, constant-time matching, timestamp windows, proofs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from inqueue.errors import Unauthorized

DEFAULT_TOLERANCE = 300


def hmac_digest(secret: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret, message, getattr(hashlib, algorithm)).digest()


def matches_any(expected: list[bytes], presented: list[bytes]) -> bool:
    """True when any presented proof equals any expected one; every pair is compared in constant time."""
    found = False
    for want in expected:
        for got in presented:
            found |= hmac.compare_digest(want, got)
    return found


def from_hex(text: str) -> bytes:
    """Decode a hex proof; anything that is not hex decodes to b"", which matches nothing."""
    try:
        return bytes.fromhex(text.strip())
    except ValueError:
        return b""


def from_base64(text: str) -> bytes:
    """Decode a base64 proof; anything that is not base64 decodes to b"", which matches nothing."""
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (ValueError, binascii.Error):
        return b""


def parse_timestamp(timestamp: str) -> int:
    """A unix-seconds timestamp from a header; an ASCII integer and nothing else."""
    text = timestamp.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise Unauthorized("the signed timestamp is not a unix time", code="bad_timestamp")
    return int(text)


def check_timestamp(timestamp: str | int, now: float, tolerance: int = DEFAULT_TOLERANCE) -> int:
    """Reject a unix-seconds timestamp further than ``tolerance`` from now, in the past or the future."""
    value = timestamp if isinstance(timestamp, int) else parse_timestamp(timestamp)
    if abs(now - value) > tolerance:
        raise Unauthorized(f"the signed timestamp is more than {tolerance} s from now", code="stale_timestamp")
    return value


def require_header(value: str, name: str, code: str = "missing_signature") -> str:
    if not value.strip():
        raise Unauthorized(f"the {name} header is missing", code=code)
    return value


def bad_signature() -> Unauthorized:
    return Unauthorized("the signature does not match the body", code="bad_signature")


def require_hmac(keys: list[bytes], message: bytes, proofs: list[bytes]) -> None:
    """Raise 401 ``bad_signature`` unless a presented proof is the HMAC-SHA256 of ``message`` under a key.

    Every key (rotation) and every proof (several signatures in one header) is tried;
    proofs that did not decode are empty and never match.
    """
    expected = [hmac_digest(key, message) for key in keys]
    if not matches_any(expected, [proof for proof in proofs if proof]):
        raise bad_signature()
