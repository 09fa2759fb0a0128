"""The Lambda SQS event source mapping: receive, batch, invoke, then delete or leave.

``Poller.poll_once()`` is one full cycle and is what tests drive, with no threads:
collect a batch (BatchSize, batching window, 6 MB), drop what ``FilterCriteria`` rejects,
invoke, and apply the outcome (``decide``). ``EventSourceMapping`` runs
``MaximumConcurrency`` pollers in threads for ``make run``. Visibility, receive counts and dead-lettering are
the queue's own (SQS moves a message to the DLQ at receive time); the runner only
reports them.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from inqueue_local.clock import Clock
from inqueue_local.filters import matches_any
from inqueue_local.runtime import MAX_PAYLOAD, Invocation, Runtime
from inqueue_local.template import SqsSource

# The batch is cut where the invocation payload (the event's JSON, not the raw bodies) would pass 6 MB.
MAX_BATCH_BYTES = MAX_PAYLOAD
_EVENT_OVERHEAD = len('{"Records": []}')
DEFAULT_POLLERS = 5  # what Lambda starts with when no MaximumConcurrency is set
IDLE_STEP = 0.05  # how often a batching window looks again while it waits


@dataclass(frozen=True)
class QueueInfo:
    logical_id: str
    url: str
    arn: str
    fifo: bool = False
    visibility_timeout: int = 30
    max_receive_count: int | None = None
    dead_letter_arn: str | None = None

    @property
    def dead_letter_name(self) -> str | None:
        return self.dead_letter_arn.rsplit(":", 1)[-1] if self.dead_letter_arn else None


@dataclass
class Outcome:
    """Which records of a batch are deleted and which are left to come back."""

    delete: list[str]
    keep: list[str]
    reason: str


@dataclass
class BatchResult:
    records: list[dict[str, Any]]
    filtered: int = 0
    invocation: Invocation | None = None
    outcome: Outcome | None = None
    deleted: list[str] = field(default_factory=list)


def decide(  # noqa: PLR0911 - one return per row of the outcome table
    message_ids: Sequence[str], invocation: Invocation, report_batch_item_failures: bool
) -> Outcome:
    """Section 3 of LOCAL-EMULATION.md: what AWS deletes after an invocation."""
    every = list(message_ids)
    if invocation.failed:
        return Outcome([], every, invocation.describe_error())
    if not report_batch_item_failures:
        return Outcome(every, [], "ok")
    result = invocation.result
    if result is None or result in ("", {}):
        return Outcome(every, [], "ok")
    if not isinstance(result, dict):
        return Outcome([], every, f"invalid response: a {type(result).__name__}, not an object")
    failures = result.get("batchItemFailures")
    if failures is None or failures == []:
        return Outcome(every, [], "ok")
    if not isinstance(failures, list):
        return Outcome([], every, "invalid response: batchItemFailures is not a list")
    failed: list[str] = []
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or not identifier or identifier not in every:
            return Outcome([], every, f"invalid batchItemFailures entry {entry!r}: the whole batch failed")
        if identifier not in failed:
            failed.append(identifier)
    return Outcome([m for m in every if m not in failed], failed, f"{len(failed)} reported in batchItemFailures")


def to_record(message: dict[str, Any], queue: QueueInfo, region: str) -> dict[str, Any]:
    """One SQS message as the Lambda SQS event carries it (camelCase, all attributes strings)."""
    system = message.get("Attributes") or {}
    attributes = {
        name: str(system[name])
        for name in (
            "ApproximateReceiveCount",
            "AWSTraceHeader",
            "SentTimestamp",
            "SequenceNumber",
            "MessageGroupId",
            "SenderId",
            "MessageDeduplicationId",
            "ApproximateFirstReceiveTimestamp",
            "DeadLetterQueueSourceArn",
        )
        if name in system
    }
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {
            name: _message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        raw = value["BinaryValue"]
        converted["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes | bytearray) else raw
    return converted


def _size(record: dict[str, Any]) -> int:
    """What one record adds to the invocation payload: its JSON, as ``json.dumps`` of the event writes it."""
    return len(json.dumps(record).encode()) + len(", ")


class Poller:
    """One poller of a mapping. ``poll_once`` is synchronous and thread-free."""

    def __init__(
        self,
        source: SqsSource,
        function: Runtime,
        sqs: Any,
        queue: QueueInfo,
        clock: Clock,
        *,
        region: str = "us-east-1",
        log: Callable[[str, str], None] = lambda _name, _line: None,
        stop: threading.Event | None = None,
    ):
        self.source = source
        self.function = function
        self.sqs = sqs
        self.queue = queue
        self.clock = clock
        self.region = region
        self.log = log
        self.stop = stop or threading.Event()

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def collect(self, long_poll: int = 0) -> list[dict[str, Any]]:
        """Receive up to BatchSize messages as event records: at once with window 0, else until the window closes."""
        size = self.source.batch_size
        window = self.source.batching_window
        batch: list[dict[str, Any]] = []
        total = _EVENT_OVERHEAD
        first = self._receive(size, long_poll)
        if not first:
            return []
        total, full = self._add(batch, first, total)
        closes = self.clock.now() + window
        while len(batch) < size and not full:
            remaining = closes - self.clock.now()
            if remaining <= 0:
                break
            more = self._receive(size - len(batch), int(min(remaining, 20)) if long_poll and remaining >= 1 else 0)
            if not more:
                self.clock.sleep(min(IDLE_STEP, remaining), self.stop)
                continue
            total, full = self._add(batch, more, total)
        return batch

    def _add(self, batch: list[dict[str, Any]], messages: list[dict[str, Any]], total: int) -> tuple[int, bool]:
        """Add records while the event stays within 6 MB; True once one did not fit (the batch is full)."""
        full = False
        for message in messages:
            record = to_record(message, self.queue, self.region)
            grown = total + _size(record)
            if full or (grown > MAX_BATCH_BYTES and batch):
                # Past 6 MB of event: give it back at once for the next batch.
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
                full = True
                continue
            batch.append(record)
            total = grown
        return total, full

    def poll_once(self, long_poll: int = 0) -> BatchResult | None:
        """One cycle; None when the poll was empty (nothing is invoked)."""
        if not self.source.enabled:
            return None
        records = self.collect(long_poll)
        if not records:
            return None
        passing = [r for r in records if matches_any(self.source.filters, r)]
        result = BatchResult(records=passing, filtered=len(records) - len(passing))
        if result.filtered:
            dropped = [r for r in records if r not in passing]
            self._delete(dropped)
            self.log(self.function.name, f"filtered out {result.filtered} message(s): deleted without an invocation")
        if not passing:
            return result
        invocation = self.function.invoke({"Records": passing})
        outcome = decide([r["messageId"] for r in passing], invocation, self.source.report_batch_item_failures)
        by_id = {r["messageId"]: r for r in passing}
        result.invocation = invocation
        result.outcome = outcome
        result.deleted = self._delete([by_id[m] for m in outcome.delete])
        self._report(passing, invocation, outcome, result.deleted)
        return result

    def _delete(self, records: Sequence[dict[str, Any]]) -> list[str]:
        deleted: list[str] = []
        for start in range(0, len(records), 10):
            chunk = records[start : start + 10]
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
            deleted.extend(chunk[int(ok["Id"])]["messageId"] for ok in response.get("Successful", []))
            for failed in response.get("Failed", []):
                self.log(
                    self.function.name,
                    f"delete failed for {chunk[int(failed['Id'])]['messageId']}: {failed.get('Message')}",
                )
        return deleted

    def _report(
        self, records: list[dict[str, Any]], invocation: Invocation, outcome: Outcome, deleted: list[str]
    ) -> None:
        name = self.function.name
        cold = ", cold start" if invocation.cold else ""
        self.log(
            name,
            f"batch of {len(records)} from {self.queue.logical_id} -> {outcome.reason}: deleted {len(deleted)}, "
            f"left {len(outcome.keep)} in {invocation.duration_ms:.1f} ms (request {invocation.request_id}{cold})",
        )
        by_id = {r["messageId"]: r for r in records}
        for message_id in outcome.keep:
            count = int(by_id[message_id]["attributes"].get("ApproximateReceiveCount", "1"))
            limit = self.queue.max_receive_count
            # The handler may have changed the visibility itself (the worker's backoff does), which
            # the event source mapping cannot see: name the queue's default, not a promise.
            default = self.queue.visibility_timeout
            later = f"when its visibility ends (the queue's {default} s unless the handler changed it)"
            if limit is None:
                self.log(
                    name,
                    f"retry: message {message_id} failed receive {count}; visible again {later}, "
                    "retried until retention ends",
                )
            elif count >= limit:
                self.log(
                    name,
                    f"dead-letter: message {message_id} failed its last receive ({count} of {limit}); "
                    f"SQS moves it to {self.queue.dead_letter_name} at its next receive, {later}",
                )
            else:
                self.log(name, f"retry: message {message_id} failed receive {count} of {limit}; visible again {later}")


class DeadLetterWatch:
    """Reports messages arriving in a dead-letter queue (SQS moves them; nobody is told)."""

    def __init__(self, sqs: Any, url: str, name: str, log: Callable[[str, str], None]):
        self.sqs = sqs
        self.url = url
        self.name = name
        self.log = log
        self.seen = self._depth()

    def _depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )

    def check(self) -> int:
        depth = self._depth()
        if depth > self.seen:
            self.log("sqs", f"dead-lettered: {depth - self.seen} message(s) moved to {self.name} (now {depth} there)")
        self.seen = depth
        return depth


class EventSourceMapping:
    """A mapping's pollers in threads, for ``make run``: close() lets every in-flight batch finish, unless hurried."""

    def __init__(self, make_poller: Callable[[threading.Event], Poller], pollers: int):
        self.stop = threading.Event()
        self.pollers = [make_poller(self.stop) for _ in range(pollers)]
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for index, poller in enumerate(self.pollers):
            thread = threading.Thread(
                target=self._loop, args=(poller,), name=f"poller-{poller.function.name}-{index}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def _loop(self, poller: Poller) -> None:
        while not self.stop.is_set():
            try:
                poller.poll_once(long_poll=1)
            except Exception as error:  # noqa: BLE001 - a backend hiccup must not end the mapping
                poller.log(poller.function.name, f"poll failed: {type(error).__name__}: {error}; retrying in 1 s")
                self.stop.wait(1)

    def close(self, timeout: float = 30.0, hurry: threading.Event | None = None) -> None:
        """No new polls; wait up to ``timeout`` for the batches in flight, or until ``hurry`` is set."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            while thread.is_alive() and time.monotonic() < deadline and not (hurry is not None and hurry.is_set()):
                thread.join(min(0.1, max(deadline - time.monotonic(), 0.0)))
