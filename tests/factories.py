"""Event factories: real-shape events from events/, varied per test."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from inqueue.envelope import Envelope
from inqueue.settings import WorkerSettings

EVENTS = Path(__file__).resolve().parent.parent / "events"
DEMO_SECRET = "local-demo-secret"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def sign(body: bytes, secret: str = DEMO_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def http_event(
    source: str = "demo",
    body: bytes | str = b'{"type":"ping"}',
    *,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
    method: str = "POST",
    signed_with: str | None = DEMO_SECRET,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An HTTP API 2.0 event shaped like events/apigw-demo-json.json, signed unless told otherwise."""
    raw = body.encode() if isinstance(body, str) else body
    event = load_event("apigw-demo-json.json")
    event = copy.deepcopy(event)
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/hooks/{source}"
    event["pathParameters"] = {"source": source}
    event["requestContext"]["http"]["method"] = method
    base = {k: v for k, v in event["headers"].items() if k not in ("x-signature", "x-event-type", "idempotency-key")}
    base.pop("content-type", None)
    if content_type is not None:
        base["content-type"] = content_type
    if signed_with is not None:
        base["x-signature"] = sign(raw, signed_with)
    base["content-length"] = str(len(raw))
    base.update(headers or {})
    event["headers"] = base
    event["isBase64Encoded"] = base64_body
    event["body"] = base64.b64encode(raw).decode() if base64_body else raw.decode("utf-8", "surrogateescape")
    return event


def sqs_record(body: str, message_id: str, receive_count: int = 1) -> dict[str, Any]:
    record = copy.deepcopy(load_event("sqs-batch.json")["Records"][0])
    record["body"] = body
    record["messageId"] = message_id
    record["md5OfBody"] = hashlib.md5(body.encode()).hexdigest()  # noqa: S324 - SQS's own checksum
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return record


class LambdaContext:
    """The attributes Powertools reads from a Lambda context, fresh per invocation."""

    def __init__(self, function_name: str = "inqueue-test", timeout_ms: int = 30_000, request_id: str = "req-1"):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/11/23/[$LATEST]0123456789abcdef"
        self._timeout_ms = timeout_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._timeout_ms


def make_envelope(id: str = "evt-1", **fields: Any) -> Envelope:  # noqa: A002 - the envelope's own field name
    """An envelope as the ingress would queue it; tests override only the fields they are about."""
    defaults: dict[str, Any] = {
        "source": "demo",
        "type": "order.created",
        "received_at": "2026-11-23T12:00:00.000Z",
        "content_type": "application/json",
        "body": {},
        "correlation_id": "corr-1",
    }
    return Envelope(id=id, **{**defaults, **fields})


class Clock:
    """A clock the test moves by hand: set ``now``."""

    def __init__(self, now: float = 1_795_435_200.0):  # 2026-11-23T12:00:00Z
        self.now = now

    def __call__(self) -> float:
        return self.now


QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/inqueue-events"
DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/inqueue-events-dlq"


def worker_settings(**env: str) -> WorkerSettings:
    """The worker's settings as the template sets them (queue, dead-letter queue, receives), plus ``env``."""
    return WorkerSettings.from_env(
        {"INQUEUE_QUEUE_URL": QUEUE_URL, "INQUEUE_DLQ_URL": DLQ_URL, "INQUEUE_MAX_RECEIVE_COUNT": "5", **env}
    )
