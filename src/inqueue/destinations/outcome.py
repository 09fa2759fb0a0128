"""The destination's answer decides the event's outcome: one table, one function.

=========================================  =============================================
answer                                      outcome
=========================================  =============================================
2xx                                         ``Delivered``: succeeded; the body is the result
                                            when it is JSON of at most 4 KiB (compact),
                                            else ``result_omitted`` says why not
429 or 503 with ``Retry-After``             ``RetryLater(seconds)``: delta-seconds or an
                                            HTTP-date; tried again then, backoff or not
408, 425, 429 and 5xx without it            ``DeliveryFailed``: retried with the backoff
301, 308 (moved for good)                   ``PermanentError``: the URL is wrong; the
                                            reason names the ``location``
other 3xx (302, 303, 307, ...)              ``DeliveryFailed``: retried; redirects are
                                            never followed
other 4xx                                   ``PermanentError`` with the status and a
                                            bounded excerpt of the answer
no answer: timeout, refused, TLS, reset     ``DeliveryFailed`` (raised by ``SafeHttp``)
an address deliveries may not reach         ``AddressRefused``, a ``PermanentError``
=========================================  =============================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from inqueue.destinations.network import Answer, DeliveryFailed
from inqueue.errors import PermanentError, RetryLater
from inqueue.status import encode_result

EXCERPT_CHARS = 300
_RETRYABLE_4XX = frozenset({408, 425, 429})
_PERMANENT_REDIRECTS = frozenset({301, 308})


@dataclass(frozen=True, slots=True)
class Delivered:
    """A 2xx: the event succeeded. ``result`` goes to the status record; ``result_omitted`` says why it did not."""

    destination: str
    status: int
    result: Any = None
    result_omitted: str | None = None
    address: str = ""
    elapsed: float = 0.0


def decide(destination: str, answer: Answer, now: float) -> Delivered:
    """A ``Delivered`` for a 2xx; otherwise raises RetryLater, DeliveryFailed or PermanentError."""
    status = answer.status
    if 200 <= status < 300:
        result, omitted = _result(answer)
        return Delivered(destination, status, result, omitted, answer.address, answer.elapsed)
    said = f"destination {destination!r} answered {status}{' ' + answer.reason if answer.reason else ''}"
    if status in (429, 503):
        seconds = retry_after_seconds(answer.headers.get("retry-after", ""), now)
        if seconds is not None:
            raise RetryLater(seconds, f"{said}, Retry-After {seconds:g} s")
    if 300 <= status < 400:
        location = _excerpt(answer.headers.get("location", "").encode(), 200) or "none"
        if status in _PERMANENT_REDIRECTS:
            raise PermanentError(f"{said} (location: {location}); redirects are not followed: update the url")
        raise DeliveryFailed(f"{said} (location: {location}); redirects are not followed", status=status)
    excerpt = _excerpt(answer.body, EXCERPT_CHARS, truncated=answer.truncated)
    detail = f"{said}: {excerpt}" if excerpt else said
    if 400 <= status < 500 and status not in _RETRYABLE_4XX:
        raise PermanentError(detail)
    raise DeliveryFailed(detail, status=status)


def retry_after_seconds(value: str, now: float) -> float | None:
    """Seconds from ``now`` that a ``Retry-After`` asks for (delta-seconds or an HTTP-date); None when unreadable."""
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; parsedate says "no zone" for -0000
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _result(answer: Answer) -> tuple[Any, str | None]:
    if answer.truncated:
        return None, "too_large"
    if not answer.body.strip():
        return None, None
    try:
        value = json.loads(answer.body.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError):
        return None, "not_json"
    if value is None:
        return None, None
    encoded, omitted = encode_result(value)
    return (value, None) if encoded is not None else (None, omitted)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _excerpt(data: bytes, limit: int, *, truncated: bool = False) -> str:
    """The start of an answer as one line of printable text, at most ``limit`` characters."""
    head = data[: limit * 4]  # enough for ``limit`` characters of any UTF-8
    text = " ".join("".join(char if char.isprintable() else " " for char in head.decode("utf-8", "replace")).split())
    if len(text) > limit or ((truncated or len(head) < len(data)) and text):
        return text[: limit - 1].rstrip() + "…"
    return text
