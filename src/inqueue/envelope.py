"""The envelope: the one document the ingress queues and the worker reads.

Version 1, serialised as compact JSON in the SQS message body::

    {"version": 1, "id": "...", "source": "github", "type": "push",
     "delivery_id": "...", "received_at": "2026-11-23T12:00:00.123Z",
     "content_type": "application/json", "headers": {...}, "body": {...},
     "correlation_id": "...", "meta": {...}}

``id`` is stable for one sender delivery: a sender's retry of the same delivery gets
the same id, which is what makes it the idempotency key. ``source`` and ``type`` are
also sent as message attributes so consumers can filter without parsing the body.
Readers accept unknown fields, so adding one is not a version change; removing or
changing the meaning of one is.

Version 2 is version 1 plus ``body_ref``, and is written only for a body too large to
send inline (over ``INQUEUE_INLINE_LIMIT_BYTES``): ``body`` is then ``null`` and the
body, as JSON, is in the payload bucket::

    "body": null,
    "body_ref": {"bucket": "...", "key": "demo/<event id>.json", "bytes": 300000, "sha256": "<hex>"}

The worker fetches it before any processor runs, so processors never see the
difference. The version goes up only for those envelopes so that a reader that
predates claim checks refuses them (the message is retried) instead of processing a
null body; inline envelopes are byte-for-byte what they were.

Every envelope is strict JSON (RFC 8259) in UTF-8: the ingress parses bodies strictly
(``inqueue.forms``) and checks the fields it takes from the request against the limits
below (``limit_violation``) before anything is written. ``type`` and ``correlation_id``
are also message attributes and status-record fields, so their caps keep both far
from SQS's and DynamoDB's limits whatever a sender puts in a header.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from typing import Any

from inqueue.errors import EnvelopeError

ENVELOPE_VERSION = 1
CLAIM_CHECK_VERSION = 2
_READABLE_VERSIONS = (ENVELOPE_VERSION, CLAIM_CHECK_VERSION)

# Limits on what the ingress takes from a request besides the body, in UTF-8 bytes; no
# sender we know comes near them (the longest real event types are under 64 characters).
MAX_TYPE_BYTES = 256
MAX_DELIVERY_ID_BYTES = 512
MAX_CORRELATION_ID_BYTES = 128
MAX_HEADER_VALUE_BYTES = 4096
MAX_META_VALUE_BYTES = 1024

# A fixed namespace so that the same (source, delivery id) always maps to the same event id.
_EVENT_ID_NAMESPACE = uuid.UUID("6f1d6c62-5a43-4c1e-9f0b-8d2b7b1f0a11")


def event_id_for(source: str, delivery_id: str | None) -> str:
    """A stable event id for a sender's delivery, or a fresh one when the sender gives none."""
    if delivery_id:
        # surrogatepass: the same bytes as UTF-8 for any valid id; one that is not valid text is refused
        # later (limit_violation), with a 400, rather than failing here.
        name = f"{source}\x00{delivery_id}".encode("utf-8", "surrogatepass")
        return str(uuid.uuid5(_EVENT_ID_NAMESPACE, name))
    return str(uuid.uuid4())


def isoformat_ms(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    source: str
    type: str
    received_at: str
    content_type: str
    body: Any
    correlation_id: str
    delivery_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    version: int = ENVELOPE_VERSION
    body_ref: dict[str, Any] | None = None

    def to_json(self) -> str:
        # A shallow dict, not asdict(self): asdict deep-copies the whole body before it is encoded,
        # which cost more than the encoding itself (14 of 25 us for a 2 KB body).
        data = {name: getattr(self, name) for name in _FIELDS}
        if data["body_ref"] is None:
            del data["body_ref"]
        return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_nested_dataclass)

    def limit_violation(self) -> str | None:
        """Why this envelope's request-derived fields cannot be queued, or None when they can.

        Each is valid text (no lone surrogates) within its cap; meta values are JSON scalars.
        ASCII within the cap, the common case, costs an O(1) ``isascii`` and a length.
        """
        for what, text, limit in (
            ("the event type", self.type, MAX_TYPE_BYTES),
            ("the delivery id", self.delivery_id or "", MAX_DELIVERY_ID_BYTES),
            ("the correlation id", self.correlation_id, MAX_CORRELATION_ID_BYTES),
        ):
            if not (text.isascii() and len(text) <= limit) and (problem := _over(text, limit)):
                return f"{what} {problem}"
        for name, value in self.headers.items():
            if not (value.isascii() and len(value) <= MAX_HEADER_VALUE_BYTES) and (
                problem := _over(value, MAX_HEADER_VALUE_BYTES)
            ):
                return f"the {name} header {problem}"
        for key, item in self.meta.items():
            if isinstance(item, str):
                if not (item.isascii() and len(item) <= MAX_META_VALUE_BYTES) and (
                    problem := _over(item, MAX_META_VALUE_BYTES)
                ):
                    return f"meta {key!r} {problem}"
            elif not (
                item is None or isinstance(item, bool | int) or (isinstance(item, float) and math.isfinite(item))
            ):
                return f"meta {key!r} is not a JSON scalar"
        return None

    def message_attributes(self) -> dict[str, dict[str, str]]:
        return {
            "source": {"DataType": "String", "StringValue": self.source},
            "type": {"DataType": "String", "StringValue": self.type},
            "event_id": {"DataType": "String", "StringValue": self.id},
            "correlation_id": {"DataType": "String", "StringValue": self.correlation_id},
            "envelope_version": {"DataType": "Number", "StringValue": str(self.version)},
        }

    @classmethod
    def from_json(cls, text: str) -> Envelope:
        """Read an envelope from a message body; ``EnvelopeError`` says why one is not.

        The worker calls this for every record, so it reads each field once and checks as it
        goes; the dicts json.loads made are this envelope's own, so they are not copied again.
        """
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise EnvelopeError(f"message body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise EnvelopeError("message body is not a JSON object")
        get = data.get
        version = get("version")
        if version not in _READABLE_VERSIONS:
            raise EnvelopeError(f"unsupported envelope version {version!r}")
        required: tuple[Any, ...] = tuple(map(get, _REQUIRED))
        id_, source, type_, received_at, content_type, correlation_id = required
        for value in required:
            if not isinstance(value, str) or not value:
                missing = [
                    name for name, got in zip(_REQUIRED, required, strict=True) if not (isinstance(got, str) and got)
                ]
                raise EnvelopeError(f"envelope lacks {', '.join(missing)}")
        body_ref = get("body_ref")
        if version == CLAIM_CHECK_VERSION:
            if not (
                isinstance(body_ref, dict)
                and isinstance(body_ref.get("bucket"), str)
                and isinstance(body_ref.get("key"), str)
            ):
                raise EnvelopeError("a version 2 envelope needs a body_ref with bucket and key")
        else:
            body_ref = None
        headers = get("headers")
        if type(headers) is not dict:
            headers = dict(headers or {})
        meta = get("meta")
        if type(meta) is not dict:
            meta = dict(meta or {})
        return cls(
            id=id_,
            source=source,
            type=type_,
            received_at=received_at,
            content_type=content_type,
            body=get("body"),
            correlation_id=correlation_id,
            delivery_id=get("delivery_id"),
            headers=headers,
            meta=meta,
            version=version,
            body_ref=body_ref,
        )


_REQUIRED = ("id", "source", "type", "received_at", "content_type", "correlation_id")
_FIELDS = tuple(f.name for f in fields(Envelope))


def _over(text: str, limit: int) -> str | None:
    """What is wrong with text that is not short ASCII: not valid text, or over ``limit`` bytes; None if neither."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid text (it holds a lone surrogate)"
    return f"is {size} bytes; at most {limit} are accepted" if size > limit else None


def _nested_dataclass(value: Any) -> Any:
    """Encode a dataclass found inside ``body`` or ``meta`` as asdict() would have; refuse anything else."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
