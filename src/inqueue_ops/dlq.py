"""Dead letters: inspect, redrive, replay and purge what the worker gave up on.

A library: the ``inqueue`` CLI formats what it returns, and a console page can call the
same operations with a display of its own. Long operations report ``Progress`` through
a callback and return an ``Outcome`` with counts; nothing here prints.

Every call is per batch of up to ten messages, never per message:

* reading (``dlq list``/``show``): ``ReceiveMessage`` 10 at a time, then
  ``ChangeMessageVisibilityBatch`` to release what was read at once. Reading a queue is
  receiving from it, so each look raises the messages' receive count.
* redrive, replay, purge of chosen ids, and redrive ``--all`` where the backend has no move
  task (moto, ElasticMQ): receive 10, reset their status records (concurrently), then
  ``SendMessageBatch`` to the events queue and ``DeleteMessageBatch`` from the DLQ. Each
  message is sent as a NEW message, so its receive count starts at zero and the worker
  gets the full ``maxReceiveCount`` attempts again; it is deleted only once sent. A
  per-entry failure is retried when SQS says it was SQS's fault, and otherwise left in
  the DLQ and counted as failed. A crash in between leaves a copy in both queues, which
  the worker's idempotency absorbs: nothing is lost.
* redrive ``--all`` where ``StartMessageMoveTask`` exists (AWS, LocalStack): one task to
  the events queue (SQS allows one per queue at a time), its progress read from
  ``ListMessageMoveTasks``.
* purge: receive and ``DeleteMessageBatch``, only messages that were in the DLQ when the
  purge began. ``PurgeQueue`` would be one call, but it also deletes what arrives during
  the next 60 seconds, unseen, and cannot say how many it deleted.

The status of each redriven or replayed event goes back to ``queued``, attempts reset,
before its message is sent.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from inqueue.attributes import (
    CALLBACK_FOR,
    DEAD_LETTER_ATTRIBUTES,
    DEAD_REASON,
    FAILED_MESSAGE_ID,
    JOB,
    REPLAY,
    REPLAY_FLAG,
)

# Error codes by which a backend says it has no move task API.
_UNSUPPORTED_CODES = frozenset(
    {"UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "InvalidAction", "NotImplemented"}
)
BATCH = 10  # SQS's most per batch call
ENTRY_ATTEMPTS = 4  # a batch entry SQS failed on its side is sent again up to three times
STATUS_WRITERS = 10  # concurrent status writes: one round per batch of ten
FINISHED_TASK = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


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
class Progress:
    """Where a long operation is: ``done`` of about ``total`` (``None`` while unknown)."""

    action: str  # "reading", "redriving", "replaying", "purging"
    done: int
    total: int | None = None
    failed: int = 0


ProgressCallback = Callable[[Progress], None]


def _no_progress(_progress: Progress) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Failure:
    id: str
    message_id: str
    code: str
    message: str


@dataclass(slots=True)
class Outcome:
    """What a redrive, replay or purge did, with counts."""

    action: str  # "redrive", "replay", "purge"
    method: str  # "SendMessageBatch", "StartMessageMoveTask", "DeleteMessageBatch"
    done: int = 0
    ids: list[dict[str, str]] = field(default_factory=list)  # id and message id of each one done, where known
    failures: list[Failure] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # asked-for ids that are not in the DLQ
    task_handle: str | None = None
    notes: list[str] = field(default_factory=list)
    failed_count: int | None = None  # a move task's own count, when it gives no per-message failures
    pending: int = 0  # a move task not waited for: how many it was started for

    @property
    def failed(self) -> int:
        return len(self.failures) if self.failed_count is None else self.failed_count

    @property
    def ok(self) -> bool:
        return not self.failed and not self.missing

    @property
    def verb(self) -> str:
        return {"redrive": "moved", "replay": "replayed", "purge": "deleted"}.get(self.action, "done")

    def summary(self) -> str:
        """``moved 301, failed 0``, plus the ids that were asked for and not found."""
        if self.pending:
            return f"moving {self.pending} (started, not waited for)"
        text = f"{self.verb} {self.done}, failed {self.failed}"
        if self.missing:
            text += f", not in the DLQ {len(self.missing)}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "method": self.method,
            self.verb: self.done,
            "failed": self.failed,
            "ids": self.ids,
            "failures": [
                {"id": f.id, "message_id": f.message_id, "code": f.code, "message": f.message} for f in self.failures
            ],
            "missing": self.missing,
            "task_handle": self.task_handle,
            "pending": self.pending,
            "notes": self.notes,
        }


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at: float
    message_attributes: dict[str, Any] = field(default_factory=dict)
    group_id: str | None = None  # FIFO queues only

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> DeadLetter:
        attributes = message.get("Attributes", {})
        return cls(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=message["Body"],
            receive_count=int(attributes.get("ApproximateReceiveCount", "0")),
            sent_at=int(attributes.get("SentTimestamp", "0")) / 1000,
            message_attributes=dict(message.get("MessageAttributes") or {}),
            group_id=attributes.get("MessageGroupId"),
        )

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

    def size(self) -> int:
        """Bytes this message counts for against SQS's batch payload limit (body plus attributes)."""
        size = len(self.body.encode("utf-8"))
        for name, value in self.message_attributes.items():
            size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
            size += len(str(value.get("StringValue", "")).encode()) + len(value.get("BinaryValue", b"") or b"")
        return size


def sendable_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Received message attributes in the shape SendMessage takes, without the dead-letter ones."""
    sendable: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        if name in DEAD_LETTER_ATTRIBUTES:
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
        sleep: Callable[[float], None] = time.sleep,
        hold_seconds: int = 60,
        wait_seconds: int = 1,
        limit: int = 10_000,
        poll_seconds: float = 1.0,
        envelopes: Callable[[str], str | None] | None = None,
    ):
        self.sqs = sqs
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self.status = status
        self.clock = clock
        self.sleep = sleep
        # How long a message read for an operation stays hidden from others while it is handled.
        self.hold_seconds = hold_seconds
        # Short polls sample a subset of SQS's servers; a 1 s long poll sees every message.
        self.wait_seconds = wait_seconds
        self.limit = limit
        self.poll_seconds = poll_seconds
        # Where a replay finds the envelope of an event no longer in the DLQ: the archive (EnvelopeArchive).
        self.envelopes = envelopes
        self._batch_bytes: int | None = None

    # -- reading ---------------------------------------------------------------------------

    def inspect(self, progress: ProgressCallback = _no_progress) -> list[DeadLetter]:
        """Every dead letter (up to ``limit``), oldest first; each is visible again when this returns."""
        total = self.depth()
        letters: dict[str, DeadLetter] = {}
        try:
            while len(letters) < self.limit:
                batch = self._receive()
                fresh = [letter for letter in batch if letter.message_id not in letters]
                letters.update((letter.message_id, letter) for letter in batch)
                if not fresh:
                    break
                progress(Progress("reading", len(letters), max(total, len(letters))))
        finally:
            self._release(letters.values())
        return sorted(letters.values(), key=DeadLetter.received_at)

    def show(self, wanted: str) -> DeadLetter:
        for letter in self.inspect():
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
            "reason": _reason(record) or letter.field(DEAD_REASON),
            # SQS's count carries over from the events queue and includes earlier inspections.
            "receives": max(letter.receive_count - 1, 0),
            "attempts": record.get("attempt") if record else None,
            "age_seconds": round(max(self.clock() - letter.received_at(), 0.0)),
            # The worker's own jobs (a result callback that kept failing) are no event: say whose they are.
            "job": letter.field(JOB) or None,
            "job_for": letter.field(CALLBACK_FOR) or None,
        }

    def depth(self) -> int:
        """SQS's approximate count of the DLQ's messages, visible or not."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    # -- redrive ---------------------------------------------------------------------------

    def redrive_all(
        self, *, allow_move_task: bool = True, wait: bool = True, progress: ProgressCallback = _no_progress
    ) -> Outcome:
        """Everything back to the events queue: a move task where the backend has one, else batches."""
        if allow_move_task:
            try:
                return self._redrive_with_move_task(wait=wait, progress=progress)
            except _Unsupported:
                pass
        total = self.depth()
        return self._move("redrive", lambda letter: True, total=total, progress=progress)

    def redrive(self, wanted: Iterable[str], *, progress: ProgressCallback = _no_progress) -> Outcome:
        """Chosen events back to the events queue (a move task cannot pick messages)."""
        wanted_ids = set(wanted)
        return self._move("redrive", _chooser(wanted_ids), wanted=wanted_ids, progress=progress)

    # -- replay ----------------------------------------------------------------------------

    def replay(
        self,
        event_id: str,
        *,
        bypass_idempotency: bool = False,
        envelope: str | None = None,
        envelope_from: str = "from the envelope file",
    ) -> Outcome:
        """Queue a new delivery of an event by id: from the DLQ if it is dead, else from the given
        envelope (``envelope_from`` says where it came from) or the one kept for it."""
        extra = {REPLAY: {"DataType": "String", "StringValue": "true"}}
        rewrite = _with_bypass_flag if bypass_idempotency else None
        note = "bypassing idempotency: the processor runs again" if bypass_idempotency else None
        if envelope is None:
            moved = self._move(
                "replay", lambda letter: letter.event_id == event_id, wanted={event_id}, extra=extra, rewrite=rewrite
            )
            if moved.done or moved.failures:
                moved.notes += ["from the DLQ", *([note] if note else [])]
                return moved
            record = self._status(event_id)
            archived = self.envelopes(event_id) if self.envelopes is not None else None
            if record is None and archived is None:
                raise NotFoundError(f"event {event_id!r} is neither in the DLQ nor in the status table")
            envelope = archived or (record or {}).get("envelope")
            if not isinstance(envelope, str) or not envelope:
                status = (record or {}).get("status", "unknown")
                raise NotFoundError(
                    f"event {event_id!r} is {status} but its envelope is not kept; pass it with --envelope FILE, "
                    "or deploy with EnvelopeArchive=true (docs/cli.md, Replay)"
                )
            source = "from the envelope archive" if archived else "from its status record"
        else:
            from inqueue.envelope import Envelope
            from inqueue.errors import EnvelopeError

            try:
                given = Envelope.from_json(envelope)
            except EnvelopeError as exc:
                raise DlqError(f"--envelope: {exc}") from None
            if given.id != event_id:
                raise DlqError(f"--envelope is event {given.id!r}, not {event_id!r}")
            source = envelope_from
        body = _with_bypass_flag(envelope) if bypass_idempotency else envelope
        self._mark_queued([event_id])
        sent = self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageAttributes={**_envelope_attributes(envelope), **extra},
            **self._fifo_fields(_envelope_group(envelope), f"replay-{event_id}-{uuid.uuid4().hex}"),
        )
        return Outcome(
            "replay",
            "SendMessage",
            done=1,
            ids=[{"id": event_id, "message_id": str(sent.get("MessageId", ""))}],
            notes=[source, *([note] if note else [])],
        )

    # -- purge -----------------------------------------------------------------------------

    def purge(self, wanted: Iterable[str] | None = None, *, progress: ProgressCallback = _no_progress) -> Outcome:
        """Delete dead letters for good: the chosen ones, or (``None``) all that are there now."""
        if wanted is None:
            began = self.clock()
            return self._delete(lambda letter: letter.sent_at <= began, total=self.depth(), progress=progress)
        wanted_ids = set(wanted)
        return self._delete(_chooser(wanted_ids), wanted=wanted_ids, progress=progress)

    # -- the batch loop --------------------------------------------------------------------

    def _move(
        self,
        action: str,
        chosen: Callable[[DeadLetter], bool],
        *,
        total: int | None = None,
        wanted: set[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        rewrite: Callable[[str], str] | None = None,
        progress: ProgressCallback = _no_progress,
    ) -> Outcome:
        outcome = Outcome(action, "SendMessageBatch")
        # FIFO: one deduplication id per message per run, so an entry sent again is not queued twice.
        run = uuid.uuid4().hex[:12]
        # What this run sent: if it fails again and comes back to the DLQ meanwhile (same message id when SQS
        # moved it, failed_message_id when the worker sent it), it is not moved again: the run ends.
        sent_ids: set[str] = set()

        def ours(letter: DeadLetter) -> bool:
            return letter.message_id in sent_ids or letter.field(FAILED_MESSAGE_ID) in sent_ids

        def handle(picked: list[DeadLetter]) -> list[DeadLetter]:
            self._mark_queued([letter.event_id for letter in picked], outcome)
            kept: list[DeadLetter] = []
            for batch in self._pack(picked):
                sent, failed = self._send(batch, extra or {}, rewrite, run)
                sent_ids.update(sent.values())
                kept += failed_letters(batch, failed, outcome)
                moved = [batch[int(n)] for n in sorted(sent, key=int)]
                undeleted = self._delete_batch(moved)
                if undeleted:
                    outcome.notes.append(
                        f"{len(undeleted)} sent but still in the DLQ (delete failed): a later redrive sends them again"
                    )
                outcome.ids += [{"id": letter.event_id, "message_id": letter.message_id} for letter in moved]
                outcome.done += len(moved)
            return kept

        self._each_batch(
            lambda letter: chosen(letter) and not ours(letter),
            handle,
            outcome,
            total=total,
            wanted=wanted,
            progress=progress,
            name=_ACTIONS[action],
        )
        return outcome

    def _delete(
        self,
        chosen: Callable[[DeadLetter], bool],
        *,
        total: int | None = None,
        wanted: set[str] | None = None,
        progress: ProgressCallback = _no_progress,
    ) -> Outcome:
        outcome = Outcome("purge", "DeleteMessageBatch")

        def handle(picked: list[DeadLetter]) -> list[DeadLetter]:
            undeleted = self._delete_batch(picked)
            for letter, code, message in undeleted:
                outcome.failures.append(Failure(letter.event_id, letter.message_id, code, message))
            failed_ids = {letter.message_id for letter, _, _ in undeleted}
            done = [letter for letter in picked if letter.message_id not in failed_ids]
            outcome.ids += [{"id": letter.event_id, "message_id": letter.message_id} for letter in done]
            outcome.done += len(done)
            return [letter for letter, _, _ in undeleted]

        self._each_batch(chosen, handle, outcome, total=total, wanted=wanted, progress=progress, name="purging")
        return outcome

    def _each_batch(
        self,
        chosen: Callable[[DeadLetter], bool],
        handle: Callable[[list[DeadLetter]], list[DeadLetter]],
        outcome: Outcome,
        *,
        total: int | None,
        wanted: set[str] | None,
        progress: ProgressCallback,
        name: str,
    ) -> None:
        """Receive the DLQ ten at a time and hand the chosen messages of each batch to ``handle``.

        What is not chosen, or ``handle`` gives back (it failed), stays hidden until the end,
        so the loop never reads it again, and is then released at once.
        """
        held: dict[str, DeadLetter] = {}
        seen: set[str] = set()
        remaining = set(wanted) if wanted is not None else None
        expected = len(wanted) if wanted is not None else total
        try:
            while len(seen) < self.limit and (remaining is None or remaining):
                batch = self._receive()
                fresh = [letter for letter in batch if letter.message_id not in seen]
                # A held message seen again (its hold ran out): keep its newest handle, to release it.
                held.update((letter.message_id, letter) for letter in batch if letter.message_id in held)
                if not fresh:
                    break
                seen.update(letter.message_id for letter in fresh)
                picked = [letter for letter in fresh if chosen(letter)]
                held.update((letter.message_id, letter) for letter in fresh if not chosen(letter))
                if picked:
                    held.update((letter.message_id, letter) for letter in handle(picked))
                if remaining is not None:
                    remaining -= {key for letter in picked for key in (letter.event_id, letter.message_id)}
                done = outcome.done
                progress(Progress(name, done, max(expected or 0, done + outcome.failed), outcome.failed))
        finally:
            self._release(held.values())
        if remaining:
            outcome.missing = sorted(remaining)

    def _receive(self) -> list[DeadLetter]:
        messages = self.sqs.receive_message(
            QueueUrl=self.dlq_url,
            MaxNumberOfMessages=BATCH,
            VisibilityTimeout=self.hold_seconds,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return [DeadLetter.from_message(message) for message in messages]

    def _release(self, letters: Iterable[DeadLetter]) -> None:
        pending = list(letters)
        for start in range(0, len(pending), BATCH):
            entries = [
                {"Id": str(n), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for n, letter in enumerate(pending[start : start + BATCH])
            ]
            # Best effort: a message not released comes back by itself when its hold ends.
            self.sqs.change_message_visibility_batch(QueueUrl=self.dlq_url, Entries=entries)

    def _pack(self, letters: Sequence[DeadLetter]) -> list[list[DeadLetter]]:
        """Batches of at most ten that fit the events queue's payload limit (the sum of their sizes)."""
        limit = self._payload_limit()
        batches: list[list[DeadLetter]] = []
        size = 0
        for letter in letters:
            if not batches or len(batches[-1]) == BATCH or size + letter.size() > limit:
                batches.append([])
                size = 0
            batches[-1].append(letter)
            size += letter.size()
        return batches

    def _payload_limit(self) -> int:
        if self._batch_bytes is None:
            attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["MaximumMessageSize"])
            self._batch_bytes = int(attributes["Attributes"].get("MaximumMessageSize", 262_144))
        return self._batch_bytes

    def _send(
        self,
        batch: list[DeadLetter],
        extra: Mapping[str, Any],
        rewrite: Callable[[str], str] | None,
        run: str,
    ) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
        """SendMessageBatch, retrying the entries SQS failed on its side.

        Returns (position -> the new message's id, position -> (code, message) of those that failed).
        """
        entries = {
            str(n): {
                "Id": str(n),
                "MessageBody": rewrite(letter.body) if rewrite else letter.body,
                "MessageAttributes": {**sendable_attributes(letter.message_attributes), **extra},
                **self._fifo_fields(letter.group_id, f"redrive-{letter.message_id}-{run}"),
            }
            for n, letter in enumerate(batch)
        }
        return self._batch_call(
            lambda chunk: self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=chunk), entries
        )

    def _delete_batch(self, letters: Sequence[DeadLetter]) -> list[tuple[DeadLetter, str, str]]:
        """DeleteMessageBatch; the letters it could not delete, with SQS's code and message."""
        if not letters:
            return []
        entries = {str(n): {"Id": str(n), "ReceiptHandle": letter.receipt_handle} for n, letter in enumerate(letters)}
        _, failed = self._batch_call(
            lambda chunk: self.sqs.delete_message_batch(QueueUrl=self.dlq_url, Entries=chunk), entries
        )
        return [(letters[int(n)], *failed[n]) for n in sorted(failed, key=int)]

    def _batch_call(
        self, call: Callable[[list[dict[str, Any]]], Any], entries: Mapping[str, dict[str, Any]]
    ) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
        """One batch call; entries that fail on SQS's side (``SenderFault`` false) go again, with backoff.

        Returns (entry id -> its MessageId where SQS gives one, entry id -> (code, message) of the failed).
        """
        pending = dict(entries)
        succeeded: dict[str, str] = {}
        failed: dict[str, tuple[str, str]] = {}
        for attempt in range(ENTRY_ATTEMPTS):
            if not pending:
                break
            if attempt:
                self.sleep(min(0.1 * 2**attempt, 2.0))
            answer = call(list(pending.values()))
            succeeded.update((entry["Id"], str(entry.get("MessageId", ""))) for entry in answer.get("Successful", []))
            retry: dict[str, dict[str, Any]] = {}
            for entry in answer.get("Failed", []):
                failed[entry["Id"]] = (str(entry.get("Code", "")), str(entry.get("Message", "")))
                if not entry.get("SenderFault", False):
                    retry[entry["Id"]] = pending[entry["Id"]]
            pending = retry
        for done in succeeded:
            failed.pop(done, None)
        return succeeded, failed

    def _fifo_fields(self, group_id: str | None, deduplication_id: str) -> dict[str, str]:
        if not self.queue_url.endswith(".fifo"):
            return {}
        return {"MessageGroupId": group_id or "inqueue", "MessageDeduplicationId": deduplication_id[:128]}

    # -- move task -------------------------------------------------------------------------

    def _redrive_with_move_task(self, *, wait: bool, progress: ProgressCallback) -> Outcome:
        arn = self._arn(self.dlq_url)
        tasks = _call_move_api(lambda: self.sqs.list_message_move_tasks(SourceArn=arn, MaxResults=10))
        running = [task for task in tasks.get("Results", []) if task.get("Status") == "RUNNING"]
        if running:
            raise MoveTaskRunning(
                f"a message move task from this DLQ is already running (handle {running[0].get('TaskHandle')}, "
                f"{running[0].get('ApproximateNumberOfMessagesMoved', 0)} moved so far); wait for it or cancel it"
            )
        # The ids are read (and released at once) before the move, to put their status back to queued.
        letters = self.inspect(progress)
        outcome = Outcome("redrive", "StartMessageMoveTask")
        if not letters:
            return outcome
        self._mark_queued([letter.event_id for letter in letters], outcome)
        if len(letters) >= self.limit:
            outcome.notes.append(f"status reset to queued for the first {self.limit} only; the task moves them all")
        started_at = self.clock()
        # The events queue is named: a message the worker dead-lettered itself has no source queue to go back to.
        started = _call_move_api(
            lambda: self.sqs.start_message_move_task(SourceArn=arn, DestinationArn=self._arn(self.queue_url))
        )
        outcome.task_handle = started.get("TaskHandle")
        outcome.ids = [{"id": letter.event_id, "message_id": letter.message_id} for letter in letters]
        if not wait:
            outcome.pending = len(letters)
            outcome.notes.append("SQS moves them in the background; `inqueue dlq list` shows what is left")
            return outcome
        while True:
            task = self._task(arn, outcome.task_handle, started_at)
            moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            to_move = int(task.get("ApproximateNumberOfMessagesToMove", 0) or len(letters))
            progress(Progress("redriving", moved, max(to_move, moved)))
            if task.get("Status") in FINISHED_TASK:
                break
            self.sleep(self.poll_seconds)
        outcome.done = moved
        if task.get("Status") != "COMPLETED":
            outcome.failed_count = max(to_move - moved, 0)
            outcome.notes.append(f"move task {task.get('Status')}: {task.get('FailureReason') or 'no reason given'}")
        else:
            outcome.failed_count = 0
        return outcome

    def _task(self, arn: str, handle: str | None, started_at: float) -> dict[str, Any]:
        """Our move task: by its handle while it runs (SQS gives handles of running tasks only), else the
        newest one started since we started ours."""
        results: list[dict[str, Any]] = self.sqs.list_message_move_tasks(SourceArn=arn, MaxResults=10).get(
            "Results", []
        )
        for task in results:
            if handle and task.get("TaskHandle") == handle:
                return dict(task)

        def started(task: dict[str, Any]) -> int:
            return int(task.get("StartedTimestamp", 0))

        since: list[dict[str, Any]] = [task for task in results if started(task) >= int(started_at * 1000) - 5000]
        if since:
            newest: dict[str, Any] = max(since, key=started)
            return newest
        return dict(results[0]) if results else {"Status": "COMPLETED"}

    def _arn(self, url: str) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(attributes["QueueArn"])

    # -- status ----------------------------------------------------------------------------

    def _status(self, event_id: str) -> Mapping[str, Any] | None:
        if self.status is None or not event_id:
            return None
        return self.status.get(event_id)

    def _mark_queued(self, event_ids: Sequence[str], outcome: Outcome | None = None) -> None:
        """Each event's status back to queued, the batch's writes at once; a failed write is noted, not fatal.

        The status is a courtesy (the queue is the promise): a record left ``dead`` moves on with the
        worker's first write for the new delivery.
        """
        status = self.status
        ids = [event_id for event_id in event_ids if event_id]
        if status is None or not ids:
            return

        def write(event_id: str) -> str | None:
            try:
                status.mark_queued(event_id)
            except Exception as exc:
                if outcome is None:
                    raise
                return f"{type(exc).__name__}: {exc}"
            return None

        if len(ids) == 1:
            errors = [write(ids[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(STATUS_WRITERS, len(ids))) as pool:
                errors = list(pool.map(write, ids))
        failed = [error for error in errors if error]
        if failed and outcome is not None:
            outcome.notes.append(f"status not reset to queued for {len(failed)} event(s): {failed[0]}")


_ACTIONS = {"redrive": "redriving", "replay": "replaying"}


def failed_letters(
    batch: list[DeadLetter], failed: Mapping[str, tuple[str, str]], outcome: Outcome
) -> list[DeadLetter]:
    kept = []
    for n, (code, message) in sorted(failed.items(), key=lambda item: int(item[0])):
        letter = batch[int(n)]
        outcome.failures.append(Failure(letter.event_id, letter.message_id, code, message))
        kept.append(letter)
    return kept


def _chooser(wanted: set[str]) -> Callable[[DeadLetter], bool]:
    return lambda letter: letter.event_id in wanted or letter.message_id in wanted


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
    data = json.loads(envelope_json)
    data["meta"] = {**(data.get("meta") or {}), REPLAY_FLAG: True}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _envelope_attributes(envelope_json: str) -> dict[str, dict[str, str]]:
    from inqueue.envelope import Envelope

    return Envelope.from_json(envelope_json).message_attributes()


def _envelope_group(envelope_json: str) -> str | None:
    """A replayed event's FIFO group: its source, as the ingress groups by default."""
    from inqueue.envelope import Envelope

    return Envelope.from_json(envelope_json).source or None
