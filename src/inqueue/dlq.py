"""Dead letters: inspect, redrive, replay and purge what the worker gave up on.

Operator tooling behind the ``inqueue`` CLI. It is part of the package so it can be
imported and tested, but no Lambda path imports it.

Reading a queue is receiving from it: every inspection hides the messages it reads
for ``hold_seconds`` and raises their receive count, so the listing releases what it
read (visibility 0) as soon as it has looked.

Redrive has two paths, because not every backend has SQS's move task:

* ``StartMessageMoveTask`` (AWS, LocalStack): used for ``--all``, refused while a
  move task from the same DLQ is still RUNNING (SQS allows one at a time).
* receive / send / delete (moto, ElasticMQ, and any redrive of chosen ids): each
  message is sent to the events queue as a NEW message, so its receive count starts
  at zero and the worker gets the full ``maxReceiveCount`` attempts again, and only
  then deleted from the DLQ. A crash in between leaves a copy in both queues, which
  the worker's idempotency absorbs: nothing is lost.

Either way the event's status record goes back to ``queued`` with its attempts reset.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# A replay is marked with this message attribute (for operators reading the queue); bypassing
# idempotency is a flag in the envelope's meta, which is what the worker reads.
REPLAY_ATTRIBUTE = "replay"
# Attributes the worker adds to a dead-letter copy; a redriven message starts without them.
_DEAD_LETTER_ATTRIBUTES = frozenset({"dead_reason", "dead_attempts", "failed_message_id", REPLAY_ATTRIBUTE})

# Error codes and exceptions by which a backend says it has no move task API.
_UNSUPPORTED_CODES = frozenset(
    {"UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "InvalidAction", "NotImplemented"}
)


class DlqError(RuntimeError):
    """An operator-facing failure: the message says what to do."""


class MoveTaskRunning(DlqError):
    pass


class NotFoundError(DlqError):
    pass


class StatusRecords(Protocol):
    """The part of the status store the operator tools use."""

    def get(self, event_id: str) -> Mapping[str, Any] | None: ...

    def mark_queued(self, event_id: str) -> None: ...


class OperatorStatus:
    """The record store seen by the operator tools: reads, and the one write only operators make (``redriven``)."""

    def __init__(self, store: Any):
        self.store = store

    def get(self, event_id: str) -> Mapping[str, Any] | None:
        record: Mapping[str, Any] | None = self.store.get(event_id)
        return record

    def mark_queued(self, event_id: str) -> None:
        """Back to ``queued``, attempts reset, with a ``redriven`` entry in the event's history."""
        self.store.redriven(event_id)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at: float
    message_attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def envelope(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @property
    def event_id(self) -> str:
        attribute = self.message_attributes.get("event_id", {}).get("StringValue")
        envelope = self.envelope or {}
        return str(attribute or envelope.get("id") or "")

    def field(self, name: str) -> str:
        attribute = self.message_attributes.get(name, {}).get("StringValue")
        return str(attribute or (self.envelope or {}).get(name) or "")

    def received_at(self) -> float:
        """When the ingress accepted the event (from the envelope), else when SQS got the message."""
        stamp = (self.envelope or {}).get("received_at")
        if isinstance(stamp, str):
            try:
                return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
        return self.sent_at

    def matches(self, wanted: str) -> bool:
        return wanted in (self.event_id, self.message_id)


def sendable_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Received message attributes in the shape SendMessage takes, without the dead-letter ones."""
    sendable: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        if name in _DEAD_LETTER_ATTRIBUTES:
            continue
        kept = {key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value}
        if "DataType" in kept and ("StringValue" in kept or "BinaryValue" in kept):
            sendable[name] = kept
    return sendable


class DeadLetters:
    """The events queue, its DLQ and (optionally) the status store, seen by an operator."""

    def __init__(
        self,
        sqs: Any,
        *,
        queue_url: str,
        dlq_url: str,
        status: StatusRecords | None = None,
        clock: Callable[[], float] = time.time,
        hold_seconds: int = 30,
        wait_seconds: int = 1,
        limit: int = 10_000,
    ):
        self.sqs = sqs
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self.status = status
        self.clock = clock
        self.hold_seconds = hold_seconds
        # Short polls sample a subset of SQS's servers; a 1 s long poll sees every message.
        self.wait_seconds = wait_seconds
        self.limit = limit

    # -- reading ---------------------------------------------------------------------------

    def inspect(self) -> list[DeadLetter]:
        letters = self._receive_all()
        self._release(letters)
        return letters

    def show(self, wanted: str) -> DeadLetter:
        letters = self.inspect()
        for letter in letters:
            if letter.matches(wanted):
                return letter
        raise NotFoundError(f"no dead letter with event id or message id {wanted!r}")

    def row(self, letter: DeadLetter) -> dict[str, Any]:
        """One line of ``dlq list``: what an operator needs to decide between redrive and purge."""
        record = self._status(letter.event_id)
        return {
            "id": letter.event_id,
            "message_id": letter.message_id,
            "source": letter.field("source"),
            "type": letter.field("type"),
            "reason": _reason(record) or letter.field("dead_reason"),
            # SQS's count carries over from the events queue and includes earlier inspections.
            "receives": max(letter.receive_count - 1, 0),
            "attempts": record.get("attempt") if record else None,
            "age_seconds": round(max(self.clock() - letter.received_at(), 0.0)),
        }

    # -- redrive ---------------------------------------------------------------------------

    def redrive_all(self, *, allow_move_task: bool = True) -> dict[str, Any]:
        """Everything back to the events queue; a move task where the backend has one."""
        if allow_move_task:
            try:
                return self._start_move_task()
            except _Unsupported:
                pass
        moved = self._move(lambda letter: True)
        return {"method": "receive-send-delete", "moved": moved}

    def redrive(self, wanted: Iterable[str]) -> dict[str, Any]:
        """Chosen events back to the events queue (move tasks cannot pick messages)."""
        wanted_ids = set(wanted)
        moved = self._move(lambda letter: any(letter.matches(w) for w in wanted_ids))
        missing = sorted(w for w in wanted_ids if not any(w in (m["id"], m["message_id"]) for m in moved))
        return {"method": "receive-send-delete", "moved": moved, "missing": missing}

    def purge(self) -> None:
        self.sqs.purge_queue(QueueUrl=self.dlq_url)

    # -- replay ----------------------------------------------------------------------------

    def replay(self, event_id: str, *, bypass_idempotency: bool = False, envelope: str | None = None) -> dict[str, Any]:
        """Queue a new delivery of an event by id: from the DLQ if it is dead, else from the given
        envelope or the one its status record keeps."""
        extra = {REPLAY_ATTRIBUTE: {"DataType": "String", "StringValue": "true"}}
        rewrite = _with_bypass_flag if bypass_idempotency else None
        if envelope is None:
            moved = self._move(lambda letter: letter.event_id == event_id, extra_attributes=extra, rewrite=rewrite)
            if moved:
                return {"from": "dlq", "id": event_id, "bypass_idempotency": bypass_idempotency}
            record = self._status(event_id)
            if record is None:
                raise NotFoundError(f"event {event_id!r} is neither in the DLQ nor in the status table")
            envelope = record.get("envelope")
            if not isinstance(envelope, str) or not envelope:
                raise NotFoundError(
                    f"event {event_id!r} is {record.get('status', 'unknown')} but its envelope is not kept; "
                    "pass it with --envelope FILE (see README, 'Dead letters')"
                )
            source = "status"
        else:
            from inqueue.envelope import Envelope
            from inqueue.errors import EnvelopeError

            try:
                given = Envelope.from_json(envelope)
            except EnvelopeError as exc:
                raise DlqError(f"--envelope: {exc}") from None
            if given.id != event_id:
                raise DlqError(f"--envelope is event {given.id!r}, not {event_id!r}")
            source = "file"
        body = _with_bypass_flag(envelope) if bypass_idempotency else envelope
        self._mark_queued(event_id)
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageAttributes={**_envelope_attributes(envelope), **extra},
        )
        return {"from": source, "id": event_id, "bypass_idempotency": bypass_idempotency}

    # -- internals -------------------------------------------------------------------------

    def _receive_all(self) -> list[DeadLetter]:
        letters: dict[str, DeadLetter] = {}
        while len(letters) < self.limit:
            batch = self.sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=self.hold_seconds,
                WaitTimeSeconds=self.wait_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                attributes = message.get("Attributes", {})
                letters[message["MessageId"]] = DeadLetter(
                    message_id=message["MessageId"],
                    receipt_handle=message["ReceiptHandle"],
                    body=message["Body"],
                    receive_count=int(attributes.get("ApproximateReceiveCount", "0")),
                    sent_at=int(attributes.get("SentTimestamp", "0")) / 1000,
                    message_attributes=dict(message.get("MessageAttributes") or {}),
                )
        return sorted(letters.values(), key=DeadLetter.received_at)

    def _release(self, letters: Iterable[DeadLetter]) -> None:
        pending = list(letters)
        for start in range(0, len(pending), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for n, letter in enumerate(pending[start : start + 10])
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=self.dlq_url, Entries=entries)

    def _move(
        self,
        chosen: Callable[[DeadLetter], bool],
        extra_attributes: Mapping[str, Any] | None = None,
        rewrite: Callable[[str], str] | None = None,
    ) -> list[dict[str, str]]:
        letters = self._receive_all()
        keep = [letter for letter in letters if not chosen(letter)]
        self._release(keep)
        moved = []
        for letter in letters:
            if not chosen(letter):
                continue
            # Status first (so no worker write of the new delivery precedes it), send, delete last:
            # a failure in between duplicates (idempotency absorbs it), never loses.
            if letter.event_id:
                self._mark_queued(letter.event_id)
            self.sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=rewrite(letter.body) if rewrite else letter.body,
                MessageAttributes={**sendable_attributes(letter.message_attributes), **(extra_attributes or {})},
            )
            self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=letter.receipt_handle)
            moved.append({"id": letter.event_id, "message_id": letter.message_id})
        return moved

    def _start_move_task(self) -> dict[str, Any]:
        arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        tasks = _call_move_api(lambda: self.sqs.list_message_move_tasks(SourceArn=arn, MaxResults=10))
        running = [task for task in tasks.get("Results", []) if task.get("Status") == "RUNNING"]
        if running:
            raise MoveTaskRunning(
                f"a message move task from this DLQ is already running (handle {running[0].get('TaskHandle')}, "
                f"{running[0].get('ApproximateNumberOfMessagesMoved', 0)} moved so far); wait for it or cancel it"
            )
        # The ids are read (and released at once) before the move, to put their status back to queued.
        letters = self.inspect()
        for letter in letters:
            if letter.event_id:
                self._mark_queued(letter.event_id)
        started = _call_move_api(lambda: self.sqs.start_message_move_task(SourceArn=arn))
        return {
            "method": "StartMessageMoveTask",
            "task_handle": started.get("TaskHandle"),
            "moved": [{"id": letter.event_id, "message_id": letter.message_id} for letter in letters],
        }

    def _status(self, event_id: str) -> Mapping[str, Any] | None:
        if self.status is None or not event_id:
            return None
        return self.status.get(event_id)

    def _mark_queued(self, event_id: str) -> None:
        if self.status is not None:
            self.status.mark_queued(event_id)


class _Unsupported(Exception):
    pass


def _call_move_api(call: Callable[[], Any]) -> Any:
    from botocore.exceptions import ClientError

    try:
        return call()
    except NotImplementedError:  # moto in-process
        raise _Unsupported from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        # moto's server answers an action it lacks with a 500 or 501.
        if error.get("Code") in _UNSUPPORTED_CODES or status in (500, 501):
            raise _Unsupported from None
        raise


def _reason(record: Mapping[str, Any] | None) -> str:
    if not record:
        return ""
    for name in ("reason", "last_error", "error"):
        value = record.get(name)
        if value:
            return str(value)
    return ""


def _with_bypass_flag(envelope_json: str) -> str:
    """The envelope with ``meta.replay_bypass_idempotency`` set: the worker then runs the processor again."""
    from inqueue.worker import REPLAY_FLAG

    data = json.loads(envelope_json)
    data["meta"] = {**(data.get("meta") or {}), REPLAY_FLAG: True}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _envelope_attributes(envelope_json: str) -> dict[str, dict[str, str]]:
    from inqueue.envelope import Envelope

    return Envelope.from_json(envelope_json).message_attributes()
