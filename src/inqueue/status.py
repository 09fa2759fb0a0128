"""The status of each event, one DynamoDB item per event id, for callers who ask "did it happen?".

Item (table key ``id``, a string)::

    {"id": "<event id>", "status": "queued|processing|retrying|succeeded|dead",
     "source": "github", "type": "push", "received_at": "2026-11-23T12:00:00.123Z",
     "correlation_id": "...", "attempt": 2,
     "next_try_at": "...",            # retrying: when the next attempt is due
     "last_error": "TimeoutError: ...",  # retrying / dead: the last failure, at most 1,000 characters
     "result": {...},                 # succeeded: the processor's result when it is JSON and <= 4 KiB
     "result_omitted": "too_large",   # ... otherwise why it is not there ("too_large" or "not_json")
     "reason": "...",                 # dead: why it was given up
     "updated_at": "...", "expires_at": 1796040000}   # expires_at: epoch seconds, the table's TTL

Timestamps are ISO 8601 UTC with milliseconds, so they compare as strings.

Writes are conditional, so the record moves forward only, whatever order concurrent or
late writers land in:

- ``queued`` creates the item and never overwrites one (the worker may be faster than
  the ingress's own status write).
- ``processing`` / ``retrying`` never replace ``succeeded``; they replace ``dead`` only
  for a new life of the message (``since``: the message was first received after the
  event was declared dead, i.e. a redrive or a resend) or with ``reopen`` (a replay).
- ``succeeded`` is always the truth and replaces anything.
- ``dead`` replaces anything except ``succeeded``.

A write refused by its condition returns ``False``; any other failure raises, and the
caller decides whether it matters (neither the ingress nor the worker lets it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from inqueue.envelope import Envelope, isoformat_ms

QUEUED = "queued"
PROCESSING = "processing"
RETRYING = "retrying"
SUCCEEDED = "succeeded"
DEAD = "dead"
FINAL = frozenset({SUCCEEDED, DEAD})
STATUSES = (QUEUED, PROCESSING, RETRYING, SUCCEEDED, DEAD)

DEFAULT_TTL_SECONDS = 7 * 86_400
RESULT_MAX_BYTES = 4096
ERROR_MAX_CHARS = 1000

# A short leash: the ingress answers senders with a 3 s budget and this write is best effort.
STATUS_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 1,
    "read_timeout": 1,
    "retries": {"mode": "standard", "total_max_attempts": 2},
}

_CONDITION_FAILED = "ConditionalCheckFailedException"

_ACTIVE_OR_REOPENED = (
    "attribute_not_exists(id) OR #status IN (:queued, :processing, :retrying)"
    " OR (#status = :dead AND (:reopen = :true OR updated_at < :since))"
)


def describe_error(error: BaseException) -> str:
    """``Type: message``, short enough for a status record and a DLQ attribute."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text[:ERROR_MAX_CHARS]


class StatusStore:
    """Conditional status writes over one DynamoDB table; the client is built on first use."""

    def __init__(
        self,
        table_name: str,
        client: Any = None,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self.table_name = table_name
        self._client = client
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    @property
    def client(self) -> Any:
        if self._client is None:
            from inqueue.aws import client

            self._client = client("dynamodb", **STATUS_CLIENT_CONFIG)
        return self._client

    # -- writes -------------------------------------------------------------------------

    def queued(self, envelope: Envelope) -> bool:
        now = self.clock()
        item = {
            "id": {"S": envelope.id},
            "status": {"S": QUEUED},
            "source": {"S": envelope.source},
            "type": {"S": envelope.type},
            "received_at": {"S": envelope.received_at},
            "correlation_id": {"S": envelope.correlation_id},
            "attempt": {"N": "0"},
            "updated_at": {"S": isoformat_ms(now)},
            "expires_at": {"N": str(int(now) + self.ttl_seconds)},
        }
        return self._conditional(
            self.client.put_item,
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(id)",
        )

    def processing(
        self,
        event_id: str,
        attempt: int,
        *,
        since: float | None = None,
        reopen: bool = False,
        source: str | None = None,
        type: str | None = None,  # noqa: A002 - the envelope's own field name
    ) -> bool:
        """Mark an attempt as started. ``since``: when this message was first received (epoch seconds)."""
        return self._update(
            event_id,
            {"status": PROCESSING, "attempt": attempt},
            remove=("next_try_at", "reason"),
            condition=_ACTIVE_OR_REOPENED,
            since=since,
            reopen=reopen,
            defaults={"source": source, "type": type},
        )

    def retrying(
        self,
        event_id: str,
        attempt: int,
        next_try_at: float,
        error: BaseException | str,
        *,
        since: float | None = None,
        reopen: bool = False,
    ) -> bool:
        last_error = error if isinstance(error, str) else describe_error(error)
        return self._update(
            event_id,
            {
                "status": RETRYING,
                "attempt": attempt,
                "next_try_at": isoformat_ms(next_try_at),
                "last_error": last_error[:ERROR_MAX_CHARS],
            },
            condition=_ACTIVE_OR_REOPENED,
            since=since,
            reopen=reopen,
        )

    def succeeded(
        self, event_id: str, result: Any = None, *, attempt: int | None = None, result_omitted: str | None = None
    ) -> bool:
        """Record success; ``result_omitted`` says why a result the caller could not pass is missing."""
        values: dict[str, Any] = {"status": SUCCEEDED}
        if attempt is not None:
            values["attempt"] = attempt
        remove = ["next_try_at", "reason", "result", "result_omitted"]
        if result is None and result_omitted:
            values["result_omitted"] = result_omitted
            remove.remove("result_omitted")
        elif result is not None:
            encoded, omitted = encode_result(result)
            if encoded is not None:
                values["result"] = encoded
                remove.remove("result")
            else:
                values["result_omitted"] = omitted
                remove.remove("result_omitted")
        return self._update(event_id, values, remove=tuple(remove), condition=None)

    def dead(self, event_id: str, reason: str, attempts: int | None = None, *, error: str | None = None) -> bool:
        values: dict[str, Any] = {"status": DEAD, "reason": reason[:ERROR_MAX_CHARS]}
        if attempts is not None:
            values["attempt"] = attempts
        if error:
            values["last_error"] = error[:ERROR_MAX_CHARS]
        return self._update(
            event_id,
            values,
            remove=("next_try_at",),
            condition="attribute_not_exists(id) OR #status <> :succeeded",
        )

    # -- reads --------------------------------------------------------------------------

    def get(self, event_id: str, *, consistent: bool = True) -> dict[str, Any] | None:
        """The record as plain Python (numbers as int, ``result`` decoded), or None when there is none."""
        answer = self.client.get_item(TableName=self.table_name, Key={"id": {"S": event_id}}, ConsistentRead=consistent)
        item = answer.get("Item")
        if not item:
            return None
        from boto3.dynamodb.types import TypeDeserializer  # reads only: the ingress never pays for it

        deserializer = TypeDeserializer()
        record = {name: _plain(deserializer.deserialize(value)) for name, value in item.items()}
        if isinstance(record.get("result"), str):
            record["result"] = json.loads(record["result"])
        return record

    # -- plumbing -----------------------------------------------------------------------

    def _update(
        self,
        event_id: str,
        values: dict[str, Any],
        *,
        condition: str | None,
        remove: tuple[str, ...] = (),
        since: float | None = None,
        reopen: bool = False,
        defaults: dict[str, str | None] | None = None,
    ) -> bool:
        now = self.clock()
        values = {**values, "updated_at": isoformat_ms(now), "expires_at": int(now) + self.ttl_seconds}
        names = {"#status": "status"}
        attribute_values: dict[str, Any] = {}
        sets = []
        for index, (name, value) in enumerate(values.items()):
            names[f"#f{index}"] = name
            attribute_values[f":v{index}"] = _attribute(value)
            sets.append(f"#f{index} = :v{index}")
        for index, (name, value) in enumerate((defaults or {}).items()):
            if value is not None:
                names[f"#d{index}"] = name
                attribute_values[f":d{index}"] = {"S": value}
                sets.append(f"#d{index} = if_not_exists(#d{index}, :d{index})")
        expression = "SET " + ", ".join(sets)
        if remove:
            for index, name in enumerate(remove):
                names[f"#r{index}"] = name
            expression += " REMOVE " + ", ".join(f"#r{index}" for index in range(len(remove)))
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"id": {"S": event_id}},
            "UpdateExpression": expression,
        }
        if condition is not None:
            placeholders = {
                ":queued": QUEUED,
                ":processing": PROCESSING,
                ":retrying": RETRYING,
                ":dead": DEAD,
                ":succeeded": SUCCEEDED,
                ":since": isoformat_ms(since) if since is not None else "",
                ":reopen": reopen,
                ":true": True,
            }
            for key, value in placeholders.items():
                if key in condition:
                    attribute_values[key] = _attribute(value)
            request["ConditionExpression"] = condition
        request["ExpressionAttributeNames"] = {
            k: v for k, v in names.items() if k in expression or k in request.get("ConditionExpression", "")
        }
        request["ExpressionAttributeValues"] = attribute_values
        return self._conditional(self.client.update_item, **request)

    @staticmethod
    def _conditional(call: Callable[..., Any], **request: Any) -> bool:
        try:
            call(**request)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code == _CONDITION_FAILED:
                return False
            raise
        return True


def encode_result(result: Any) -> tuple[str | None, str | None]:
    """The result as JSON text when it is JSON and small enough, else None and why not."""
    try:
        text = json.dumps(result, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None, "not_json"
    if len(text.encode("utf-8")) > RESULT_MAX_BYTES:
        return None, "too_large"
    return text, None


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    return {"S": str(value)}


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
