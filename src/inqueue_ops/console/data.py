"""The console's data layer: what each page shows and what each button does, without the web.

Everything goes through the operator library and the runtime library's own readers:
records by ``inqueue.status.StatusStore``, envelopes by ``inqueue.archive.EnvelopeArchive``,
dead letters, redrive, purge and replay by ``inqueue_ops.dlq.DeadLetters``, the recent
events by the status table's index (``events.RecentEvents``), the queues by
``queues.QueueWatch``. The events queue is never received from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from inqueue.status import DEAD, DUPLICATE, FINAL, PROCESSING, QUEUED, REDRIVEN, RETRYING, SKIPPED, SUCCEEDED
from inqueue_ops.console.events import Cursor, Filters, Page, RecentEvents
from inqueue_ops.console.jobs import Job, Jobs
from inqueue_ops.console.queues import Cached, CloudWatchOldest, OldestAge, QueueStats, QueueWatch, probe
from inqueue_ops.dlq import DeadLetter, DeadLetters, DlqError, OperatorStatus, Outcome
from inqueue_ops.targets import ClientFactory, Targets, boto_client

OUTPUT_SHARDS = "EventIndexShards"
OUTPUT_ARCHIVE = "EnvelopeArchive"
OUTPUT_BUCKET = "PayloadBucketName"
# Ids that are not events share the status table (the destinations' rate items, archived envelopes).
NOT_EVENT_MARK = "#"
# A destination's deferral (issue 11): the delivery waited for a rate slot or time; not an attempt.
DEFERRED = "deferred"


def parse_time(stamp: Any) -> float | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Step:
    """One line of an event's timeline."""

    at: str
    status: str
    title: str
    attempt: int | None = None
    error: str | None = None
    next_try_at: str | None = None
    backoff_seconds: float | None = None
    reason: str | None = None


@dataclass(slots=True)
class EventView:
    record: dict[str, Any]
    timeline: list[Step]
    envelope: dict[str, Any] | None = None  # the envelope as queued, decoded
    envelope_from: str | None = None  # "the envelope archive", "the dead-letter queue"
    envelope_missing: str | None = None  # why there is none to show
    body: Any = None  # the body, fetched from the payload bucket when the envelope refers to it
    notes: list[str] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.record.get("status") in FINAL

    @property
    def replayable(self) -> bool:
        return self.envelope is not None or self.record.get("status") == DEAD


def timeline(record: dict[str, Any]) -> list[Step]:
    """The record's history in time order, each entry told as what happened."""
    entries = sorted(
        (entry for entry in record.get("history") or [] if isinstance(entry, dict)), key=lambda e: str(e.get("at", ""))
    )
    steps = []
    received = False
    for entry in entries:
        status, attempt, reason = str(entry.get("status", "")), entry.get("attempt"), entry.get("reason")
        error, due = entry.get("error"), entry.get("next_try_at")
        backoff = None
        if status == QUEUED and reason == REDRIVEN:
            title = "sent back to the queue by an operator (redrive or replay)"
        elif status == QUEUED and not received:
            title, received = "received", True
        elif reason == SKIPPED:
            title = f"attempt {attempt} skipped: its FIFO group stopped at an earlier failure"
        elif status == PROCESSING:
            title = f"attempt {attempt} started"
        elif status == RETRYING:
            at, next_at = parse_time(entry.get("at")), parse_time(due)
            backoff = round(next_at - at, 3) if at is not None and next_at is not None else None
            title = f"attempt {attempt} failed; retrying" + (f" after {backoff:g} s" if backoff is not None else "")
        elif status == DEFERRED:
            count = entry.get("deferrals")
            title = "deferred, not attempted" + (f" ({count} so far)" if count else "")
            title += f": {reason}" if reason else ""
            reason = None  # said in the title: not an error
        elif status == SUCCEEDED and reason == DUPLICATE:
            title = "delivered again: a duplicate, answered from the stored result"
        elif status == SUCCEEDED:
            title = f"succeeded on attempt {attempt}" if attempt else "succeeded"
        elif status == DEAD:
            title = "dead: given up" + (f" after attempt {attempt}" if attempt else "")
        else:
            title = status
        steps.append(
            Step(
                at=str(entry.get("at", "")),
                status=status,
                title=title,
                attempt=int(attempt) if isinstance(attempt, int) else None,
                error=str(error) if error else None,
                next_try_at=str(due) if due else None,
                backoff_seconds=backoff,
                reason=str(reason) if reason and reason not in (REDRIVEN, DUPLICATE, SKIPPED) else None,
            )
        )
    return steps


class Console:
    """One deployed stack or local runner, as the console sees it; clients made once, at start."""

    def __init__(
        self,
        targets: Targets,
        clients: ClientFactory = boto_client,
        *,
        clock: Callable[[], float] = time.time,
        oldest: OldestAge | None = None,
        wait_seconds: int | None = None,
    ):
        from inqueue.archive import EnvelopeArchive
        from inqueue.status import DEFAULT_INDEX_SHARDS, StatusStore

        self.targets = targets
        self.clock = clock
        self.sqs = clients("sqs", targets)
        self.table = targets.status_table
        self.dynamodb = clients("dynamodb", targets) if self.table else None
        self.bucket = targets.outputs.get(OUTPUT_BUCKET)
        self.s3 = clients("s3", targets) if self.bucket else None
        self.store = StatusStore(self.table, self.dynamodb, clock=clock) if self.table else None
        self.archive = (
            EnvelopeArchive(self.table, self.bucket, client=self.dynamodb, s3=self.s3, clock=clock)
            if self.table
            else None
        )
        shards = _int(targets.outputs.get(OUTPUT_SHARDS), DEFAULT_INDEX_SHARDS)
        self.index_shards = shards if self.table else 0
        self.archive_on = targets.local or targets.outputs.get(OUTPUT_ARCHIVE, "false").lower() == "true"
        self.recent = RecentEvents(self.dynamodb, self.table or "", self.index_shards, clock=clock)
        self.dead = DeadLetters(
            self.sqs,
            queue_url=targets.queue_url,
            dlq_url=targets.dlq_url,
            status=OperatorStatus(self.store) if self.store else None,
            clock=clock,
            # Long polls only help against real SQS; local backends answer short polls completely.
            wait_seconds=wait_seconds if wait_seconds is not None else (0 if targets.local else 1),
            envelopes=self.archive.get if self.archive else None,
        )
        if oldest is None:
            if targets.local:
                oldest = probe(targets.endpoint("sqs"), targets.queue_url, targets.region or "us-east-1")
            else:
                oldest = Cached(CloudWatchOldest(clients("cloudwatch", targets), clock), 60.0)
        self.queue_watch = QueueWatch(self.sqs, {"events": targets.queue_url, "dead letters": targets.dlq_url}, oldest)
        self.jobs = Jobs()
        self._dead_rows: list[dict[str, Any]] = []

    @property
    def where(self) -> str:
        if self.targets.local:
            return "the local runner (make run)"
        stack = self.targets.outputs.get("StackName")
        return f"stack {stack}" if stack else f"{self.targets.queue_url.rsplit('/', 1)[-1]} ({self.targets.region})"

    # -- events ------------------------------------------------------------------------

    def events(self, filters: Filters = Filters(), *, before: Cursor | None = None, limit: int = 50) -> Page:  # noqa: B008
        page = self.recent.page(filters, limit=limit, before=before)
        now = self.clock()
        for row in page.rows:
            received = parse_time(row.get("received_at"))
            row["age_seconds"] = max(now - received, 0.0) if received is not None else None
        return page

    def record(self, event_id: str) -> dict[str, Any] | None:
        if self.store is None or not event_id or NOT_EVENT_MARK in event_id:
            return None
        return self.store.get(event_id.strip())

    def event(self, event_id: str, *, with_envelope: bool = True) -> EventView | None:
        """The event's record and timeline; with ``with_envelope``, its envelope from the archive or the DLQ."""
        record = self.record(event_id)
        if record is None:
            return None
        view = EventView(record, timeline(record))
        if with_envelope:
            self._envelope(view)
        return view

    def _envelope(self, view: EventView) -> None:
        event_id = str(view.record["id"])
        text = self.archive.get(event_id) if self.archive else None
        if text is not None:
            view.envelope_from = "the envelope archive"
        elif view.record.get("status") == DEAD:
            try:
                letter = self.dead.show(event_id)
            except DlqError:
                letter = None
            if letter is not None:
                text, view.envelope_from = letter.body, "the dead-letter queue"
        if text is None:
            view.envelope_missing = (
                "not kept: this stack does not archive envelopes (deploy with EnvelopeArchive=true)"
                if not self.archive_on
                else "not kept: it expired with its record, or was accepted before the archive was on"
            )
            return
        try:
            envelope = json.loads(text)
        except ValueError:
            view.envelope_missing = "kept, but not JSON"
            return
        view.envelope = envelope if isinstance(envelope, dict) else {"body": envelope}
        reference = view.envelope.get("body_ref")
        if isinstance(reference, dict) and self.s3 is not None:
            view.body = self._claimed_body(view, reference)
        else:
            view.body = view.envelope.get("body")

    def _claimed_body(self, view: EventView, reference: dict[str, Any]) -> Any:
        try:
            answer = self.s3.get_object(Bucket=reference["bucket"], Key=reference["key"])  # type: ignore[union-attr]
            return json.loads(answer["Body"].read())
        except Exception as exc:  # noqa: BLE001 - the page says why the body is not shown
            view.notes.append(f"body in s3://{reference.get('bucket')}/{reference.get('key')}: not read ({exc})")
            return None

    # -- queues ------------------------------------------------------------------------

    def queues(self) -> list[QueueStats]:
        return self.queue_watch.stats()

    # -- dead letters ------------------------------------------------------------------

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter with reason and attempts (the DLQ is read by receiving it, then released at once).

        While a redrive or purge runs, the last list is shown instead: reading the DLQ holds its
        messages for a moment, and the job would not see those it should move.
        """
        if self.jobs.running():
            return self._dead_rows
        letters: list[DeadLetter] = self.dead.inspect()
        rows = [self.dead.row(letter) for letter in letters]
        self._dead_rows = rows
        return rows

    def dead_letter_count(self) -> int:
        return self.dead.depth()

    def redrive(self, event_ids: Iterable[str] | None) -> Job:
        """Back to the events queue: the chosen ones, or (``None``) all; a job with progress and a count."""
        if event_ids is None:
            return self.jobs.start("redrive", lambda progress: self.dead.redrive_all(progress=progress))
        chosen = list(event_ids)
        return self.jobs.start("redrive", lambda progress: self.dead.redrive(chosen, progress=progress))

    def purge(self, event_ids: Iterable[str] | None) -> Job:
        chosen = None if event_ids is None else list(event_ids)
        return self.jobs.start("purge", lambda progress: self.dead.purge(chosen, progress=progress))

    def replay(self, event_id: str, *, bypass_idempotency: bool = False) -> Outcome:
        """A new delivery of the event, same id: from the DLQ when it is dead, else its archived envelope."""
        record = self.record(event_id)
        if record is None:
            raise DlqError(f"no event {event_id!r}")
        envelope = None
        if record.get("status") != DEAD and self.archive is not None:
            envelope = self.archive.get(event_id)
        return self.dead.replay(
            event_id,
            bypass_idempotency=bypass_idempotency,
            envelope=envelope,
            envelope_from="from the envelope archive",
        )


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
