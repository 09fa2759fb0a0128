"""Building blocks the kinds share: HMAC digests, constant-time matching, timestamp windows."""

from __future__ import annotations

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


def check_timestamp(timestamp: str, now: float, tolerance: int = DEFAULT_TOLERANCE) -> int:
    """Parse a unix-seconds timestamp and reject it when it is further than ``tolerance`` from now."""
    try:
        value = int(timestamp)
    except (TypeError, ValueError):
        raise Unauthorized("the signed timestamp is not a unix time", code="bad_timestamp") from None
    if abs(now - value) > tolerance:
        raise Unauthorized(f"the signed timestamp is more than {tolerance} s from now", code="stale_timestamp")
    return value
