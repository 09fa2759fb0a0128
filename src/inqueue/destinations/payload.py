"""The exact bytes a destination receives, and the headers that sign them.

Every delivery is ``application/json``: compact JSON (no spaces after ``,`` or ``:``),
keys in the order below, UTF-8 with non-ASCII characters as themselves. (A string with
an unpaired surrogate has no UTF-8 form; such a document is sent with every non-ASCII
character escaped as ``\\uXXXX`` instead: the same JSON value, ASCII bytes.)

``payload: "envelope"`` (the default) sends the event with what Inqueue knows of it::

    {"id":"<event id>","source":"<source>","type":"<event type>","timestamp":"<received_at>",
     "delivery_id":"<the sender's delivery id>" or null,"correlation_id":"<id>",
     "content_type":"<the sender's content type>","headers":{<the headers the source keeps>},
     "meta":{<the source's facts: portal, shop, retry number>},"data":<the body>}

``data`` is the body as processors see it: the sender's JSON, or a form body as an
object. ``payload: "body"`` sends only ``<the body>``, for an app that expects the
sender's JSON as it was; the event's facts are then only in the headers.

Result callbacks send::

    {"type":"inqueue.event.succeeded" or "inqueue.event.dead","timestamp":"<when it became final>",
     "data":{"id":"<event id>","source":"<source>","type":"<event type>","status":"succeeded" or "dead",
             "attempts":<n>,"correlation_id":"<id>" or null,"result":<JSON> or null,
             "result_omitted":"too_large" or "not_json" or null,"reason":"<why it died>" or null}}

Headers on every request, besides ``host`` and ``content-length``::

    content-type: application/json
    user-agent: Inqueue/<version>
    webhook-id: <event id>                  (a callback: <event id>.<status>.<attempts>)
    webhook-timestamp: <unix seconds when this attempt was signed>
    webhook-signature: v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body bytes>">
    inqueue-source: <source>
    inqueue-type: <event type>              (only when it is printable ASCII)
    inqueue-attempt: <n>                    (when the caller knows it)
    <the destination's headers and secret_headers>

The body is the same on every attempt of an event; ``webhook-timestamp`` and so the
signature are new each time, ``webhook-id`` is not, so the app can drop a repeat.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from inqueue import __version__
from inqueue.envelope import Envelope
from inqueue.sources.standard_webhooks import sign

USER_AGENT = f"Inqueue/{__version__}"
CALLBACK_TYPES = {"succeeded": "inqueue.event.succeeded", "dead": "inqueue.event.dead"}


def to_json_bytes(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def delivery_body(envelope: Envelope, payload: str = "envelope") -> bytes:
    if envelope.body_ref is not None:
        raise ValueError("the envelope's body is in the payload bucket: resolve the claim check before delivering")
    if payload == "body":
        return to_json_bytes(envelope.body)
    return to_json_bytes(
        {
            "id": envelope.id,
            "source": envelope.source,
            "type": envelope.type,
            "timestamp": envelope.received_at,
            "delivery_id": envelope.delivery_id,
            "correlation_id": envelope.correlation_id,
            "content_type": envelope.content_type,
            "headers": envelope.headers,
            "meta": envelope.meta,
            "data": envelope.body,
        }
    )


def callback_message_id(event_id: str, status: str, attempts: int) -> str:
    """Stable for one final transition (its retries dedup), new for a later one (a redrive that ends again)."""
    return f"{event_id}.{status}.{attempts}"


def callback_body(
    *,
    event_id: str,
    source: str,
    event_type: str,
    status: str,
    attempts: int,
    finished_at: str,
    correlation_id: str | None = None,
    result: Any = None,
    result_omitted: str | None = None,
    reason: str | None = None,
) -> bytes:
    if status not in CALLBACK_TYPES:
        raise ValueError(f"a callback is for a final status ({', '.join(CALLBACK_TYPES)}), not {status!r}")
    return to_json_bytes(
        {
            "type": CALLBACK_TYPES[status],
            "timestamp": finished_at,
            "data": {
                "id": event_id,
                "source": source,
                "type": event_type,
                "status": status,
                "attempts": attempts,
                "correlation_id": correlation_id,
                "result": result,
                "result_omitted": result_omitted,
                "reason": reason,
            },
        }
    )


def signed_headers(
    *,
    message_id: str,
    timestamp: int,
    body: bytes,
    secrets: tuple[str, ...],
    source: str,
    event_type: str,
    attempt: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, message_id, timestamp, body),
        "inqueue-source": source,
    }
    if _header_safe(event_type):
        headers["inqueue-type"] = event_type
    if attempt is not None:
        headers["inqueue-attempt"] = str(attempt)
    headers.update(extra or {})
    return headers


def _header_safe(value: str) -> bool:
    return 0 < len(value) <= 256 and value.isascii() and value.isprintable()
