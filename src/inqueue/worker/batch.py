"""A batch at a time: claim every record in one concurrent round, run the processors one after another,
store each success as its processor returns, and settle the failures with SQS's batch calls.

Rounds, for a batch of n records (each round's calls run concurrently, at most
``INQUEUE_CALLS_IN_FLIGHT`` at once, so a batch larger than that takes ceil(n / it)
waves per round):

1. claim: one conditional UpdateItem per record takes the event's lock, or answers in the
   same call that it is completed (the stored result), in progress elsewhere, or dead;
   a body kept in the payload bucket is fetched right after its claim.
2. the processors, one record after another (user code needs no thread safety), inside
   Powertools' ``BatchProcessor`` / ``SqsFifoPartialProcessor(skip_group_on_error=True)``,
   which builds ``batchItemFailures``; each record's outcome is decided by ``classify``,
   and a success's completion (UpdateItem) starts the moment its processor returns.
3. the successes' completions are awaited, while failures' visibility goes in
   ChangeMessageVisibilityBatch calls, permanent failures in SendMessageBatch calls to the
   dead-letter queue, and the claims of FIFO records skipped after their group's failure
   are released.
4. only when something failed: each failure's claim released (``retrying`` with the time
   its visibility change set, or ``dead``), once round 3 says what SQS accepted.

A batch of 10 that all succeed costs 2 sequential round trips and 2 DynamoDB writes per
event; with failures, 3. The ``Worker`` keeps one thread pool and one client per service
(botocore clients are thread safe) for the life of the execution environment.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, SqsFifoPartialProcessor
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from inqueue.attributes import REPLAY_FLAG
from inqueue.aws import worker_config
from inqueue.claimcheck import ClaimCheck
from inqueue.envelope import Envelope
from inqueue.errors import EnvelopeError, PermanentError, RetryLater
from inqueue.observability import logger, metrics
from inqueue.retry import Backoff
from inqueue.settings import WorkerSettings
from inqueue.status import COMPLETED, DEAD, SUCCEEDED, Claim, StatusStore, describe_error
from inqueue.worker.router import Router, acknowledge_unrouted
from inqueue.worker.sqs import DEAD_LETTER_BATCH_BYTES, DeadLetter, Queues, Visibility, chunks

if TYPE_CHECKING:
    from aws_lambda_powertools.logging.formatter import BasePowertoolsFormatter
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

# Lambda's longest timeout: the lock's life when no Lambda context says when this invocation ends.
_MAX_INVOCATION_MS = 900_000
_LOG_KEYS = ["event_id", "correlation_id", "message_id", "attempt"]


class Kind(enum.Enum):
    """What became of one record: its metric, and whether it goes back to the queue (a batch item failure)."""

    SUCCEEDED = ("succeeded", "Processed", False)  # the processor returned
    DUPLICATE = ("duplicate", "Duplicate", False)  # completed before: the stored result, the processor not run
    RETRY = ("retry", "Failed", True)  # RetryLater or any other exception: back after a backoff
    GIVE_UP = ("give_up", "Failed", True)  # failed on the last attempt: dead now, SQS moves it on its next receive
    PERMANENT = ("permanent", "DeadLettered", False)  # PermanentError, or not an envelope: to the DLQ now
    IN_PROGRESS = ("in_progress", "InProgressElsewhere", True)  # another attempt holds the lock: back after a backoff
    DEAD_ELSEWHERE = ("dead", "AlreadyDead", True)  # dead in this message's life: back at once, for SQS to move it
    SKIPPED = ("skipped", "Skipped", True)  # FIFO: its group stopped at an earlier failure; never run

    def __init__(self, label: str, metric: str, reported: bool):
        self.label = label
        self.metric = metric
        self.reported = reported


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    result: Any = None
    error: BaseException | None = None
    delay: int | None = None  # seconds until the message is visible again, for a reported record
    reason: str | None = None


class NotProcessed(Exception):
    """A record reported without its processor having failed: in progress elsewhere, dead, or its DLQ send failed."""


@dataclass(slots=True, eq=False)
class _Record:
    raw: dict[str, Any]
    message_id: str
    receipt_handle: str
    attempt: int
    since: float | None
    group_id: str | None
    envelope: Envelope | None = None
    not_an_envelope: str | None = None
    claim: Claim | None = None
    not_ready: BaseException | None = None  # the claim or the payload fetch failed
    outcome: Outcome | None = None
    twin: _Record | None = None  # an earlier record of this batch with the same event id: it claims for both

    @property
    def event_id(self) -> str | None:
        if self.envelope is not None:
            return self.envelope.id
        value = (self.raw.get("messageAttributes") or {}).get("event_id") or {}
        text = value.get("stringValue")
        return text if isinstance(text, str) else None

    @property
    def claimed(self) -> Claim | None:
        """The claim this attempt holds, if it took one."""
        return self.claim if self.claim is not None and self.claim.taken else None


class Worker:
    """Runs each batch through Powertools' batch processor, with the record store and the queues behind it."""

    def __init__(
        self,
        router: Router,
        settings: WorkerSettings,
        *,
        store: StatusStore | None = None,
        queues: Queues | None = None,
        claim_check: ClaimCheck | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.router = router
        self.settings = settings
        guarantees = settings.guarantees
        config = worker_config(settings.calls_in_flight)
        if store is None and guarantees.status_table:
            store = StatusStore(
                guarantees.status_table, ttl_seconds=guarantees.record_ttl_seconds, clock=clock, client_config=config
            )
        self.store = store
        self.queues = queues or Queues(settings.queue_url, settings.dlq_url, client_config=config)
        self.claim_check = claim_check or ClaimCheck(guarantees.payload_bucket)
        self.backoff = backoff or Backoff(settings.retry_base_seconds, settings.retry_max_seconds)
        self.clock = clock
        self.processor = BatchProcessor(event_type=EventType.SQS)
        self.fifo_processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        self._pool: ThreadPoolExecutor | None = None
        self._started: list[Future[BaseException | None]] = []
        self._records: dict[int, _Record] = {}
        self._counts: dict[str, int] = {}
        self._log_keys: BasePowertoolsFormatter = logger.registered_formatter

    @classmethod
    def from_environment(cls, router: Router) -> Worker:
        return cls(router, WorkerSettings.from_env())

    # -- one invocation -------------------------------------------------------------------

    def handle(self, event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        raw_records = event.get("Records") or []
        fifo = bool(raw_records) and str(raw_records[0].get("eventSourceARN", "")).endswith(".fifo")
        processor = self.fifo_processor if fifo else self.processor
        # Looked up once a batch: Logger.append_keys finds the formatter through the handler on every call.
        self._log_keys = logger.registered_formatter
        records = [self._read(raw) for raw in raw_records]
        self._records = {id(record.raw): record for record in records}
        try:
            self._claim_all(records, context)
            with processor(raw_records, self._run):
                processor.process()
                self._log_keys.remove_keys(_LOG_KEYS)
                self._complete(records, processor, fifo)
            return processor.response()
        finally:
            # Each record overwrites the keys of the one before; none outlives the batch.
            self._log_keys.remove_keys(_LOG_KEYS)
            self._records = {}
            self._started = []
            self._emit_counts()

    @staticmethod
    def _read(raw: dict[str, Any]) -> _Record:
        # The raw dict, read once: each SQSRecord property builds a new wrapper to read one key.
        attributes = raw.get("attributes") or {}
        first_received = attributes.get("ApproximateFirstReceiveTimestamp")
        record = _Record(
            raw=raw,
            message_id=str(raw.get("messageId") or ""),
            receipt_handle=str(raw.get("receiptHandle") or ""),
            attempt=int(attributes.get("ApproximateReceiveCount") or 1),
            since=int(first_received) / 1000 if first_received else None,
            group_id=attributes.get("MessageGroupId"),
        )
        try:
            record.envelope = Envelope.from_json(raw["body"])
        except EnvelopeError as exc:
            record.not_an_envelope = str(exc)
        return record

    # -- round 1: claims ----------------------------------------------------------------

    def _claim_all(self, records: Sequence[_Record], context: Any) -> None:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        now_ms = int(self.clock() * 1000)
        # In-progress locks expire when this invocation would time out, so a crashed or timed-out
        # attempt never blocks the event's next delivery for longer (as Powertools' idempotency does).
        deadline_ms = now_ms + (int(remaining()) if remaining is not None else _MAX_INVOCATION_MS)
        request_id = str(getattr(context, "aws_request_id", "") or "local")
        ready: dict[str, _Record] = {}
        for record in records:
            if record.envelope is None:
                continue
            # Two copies of one event in a batch (an SQS duplicate, a sender's retry): the first claims for both,
            # and the second settles on the first's outcome without a call of its own.
            if self.store is None:  # no records, no idempotency: every copy runs
                ready[record.message_id] = record
                continue
            record.twin = ready.get(record.envelope.id)
            ready.setdefault(record.envelope.id, record)
        # Nothing to do before the processors without a table or a body to fetch: no round at all.
        work = [r for r in ready.values() if self.store is not None or (r.envelope and r.envelope.body_ref)]
        self._round([partial(self._prepare, r, f"{request_id}/{r.message_id}", deadline_ms) for r in work])

    def _prepare(self, record: _Record, token: str, deadline_ms: int) -> None:
        envelope = record.envelope
        assert envelope is not None
        try:
            if self.store is not None:
                record.claim = self.store.claim(
                    envelope,
                    attempt=record.attempt,
                    token=token,
                    deadline_ms=deadline_ms,
                    since=record.since,
                    bypass=envelope.meta.get(REPLAY_FLAG) is True,
                )
            if envelope.body_ref is not None and (record.claim is None or record.claim.taken):
                record.envelope = self.claim_check.resolve(envelope)
        except Exception as exc:  # noqa: BLE001 - decided by classify: the processor does not run
            record.not_ready = exc

    # -- the processors, one record after another ----------------------------------------

    def _run(self, record: SQSRecord) -> Any:
        """Powertools' record handler: decide the outcome; raise for the records that go back to the queue."""
        return self._settle(self._records[id(record.raw_event)])

    def _settle(self, record: _Record) -> Any:
        if record.envelope is not None:
            self._log_keys.append_keys(
                event_id=record.envelope.id,
                correlation_id=record.envelope.correlation_id,
                message_id=record.message_id,
                attempt=record.attempt,
            )
        else:  # the previous record's keys, if any: this line is about another message
            self._log_keys.remove_keys(_LOG_KEYS)
        outcome = record.outcome = self.classify(record)
        self._log(record, outcome)
        if outcome.kind is Kind.PERMANENT and self.queues.fifo:
            # Sent now, so that a failed send stops its group like any failure and order holds.
            not_sent: dict[str, str] = {}
            self._dead_letter([record], not_sent)
            if record.message_id in not_sent:
                error = NotProcessed(f"dead-letter send failed: {not_sent[record.message_id]}")
                outcome = record.outcome = Outcome(Kind.RETRY, error=error, delay=self.backoff.delay(record.attempt))
                self._log(record, outcome)
        self._count(outcome.kind.metric)
        self._complete_now(record, outcome)
        if outcome.kind is Kind.GIVE_UP:
            self._count("DeadLettered")
        if outcome.kind.reported:
            raise outcome.error or NotProcessed(outcome.kind.label)
        return outcome.result

    def classify(self, record: _Record) -> Outcome:
        """The one place that decides what became of a record (with ``_without_running``)."""
        settled = self._without_running(record)
        if settled is not None:
            return settled
        try:
            result = self._call_processor(record)
        except PermanentError as exc:
            return Outcome(Kind.PERMANENT, error=exc, reason=exc.reason)
        except Exception as exc:  # noqa: BLE001 - every other failure is retried
            max_receives = self.settings.max_receive_count
            if record.attempt >= max_receives:
                reason = f"failed {record.attempt} times (maxReceiveCount {max_receives})"
                return Outcome(Kind.GIVE_UP, error=exc, delay=0, reason=reason)
            requested = exc.seconds if isinstance(exc, RetryLater) else None
            return Outcome(Kind.RETRY, error=exc, delay=self.backoff.delay(record.attempt, requested))
        return Outcome(Kind.SUCCEEDED, result=result)

    def _without_running(self, record: _Record) -> Outcome | None:
        """The outcomes decided before any processor runs: not an envelope, or a claim refused."""
        if record.envelope is None:
            return Outcome(Kind.PERMANENT, reason=f"bad_envelope: {record.not_an_envelope}")
        if record.twin is not None:
            return self._as_twin(record, record.twin)
        claim = record.claim
        if claim is None or claim.taken:
            return None
        if claim.held == COMPLETED:
            result, _ = claim.stored_result()
            return Outcome(Kind.DUPLICATE, result=result)
        if claim.held == DEAD:
            return Outcome(Kind.DEAD_ELSEWHERE, error=NotProcessed("dead in this message's life"), delay=0)
        delay = self.backoff.delay(record.attempt)
        return Outcome(Kind.IN_PROGRESS, error=NotProcessed("in progress elsewhere"), delay=delay)

    def _as_twin(self, record: _Record, twin: _Record) -> Outcome:
        """A second copy of an event in the batch: a duplicate of the first's success, else back after a backoff."""
        done = twin.outcome
        if done is not None and done.kind in (Kind.SUCCEEDED, Kind.DUPLICATE):
            return Outcome(Kind.DUPLICATE, result=done.result)
        delay = self.backoff.delay(record.attempt)
        return Outcome(Kind.IN_PROGRESS, error=NotProcessed("its copy in this batch did not succeed"), delay=delay)

    def _call_processor(self, record: _Record) -> Any:
        if record.not_ready is not None:  # the claim or the payload fetch failed: classified as the processor's
            raise record.not_ready
        envelope = record.envelope
        assert envelope is not None
        processor = self.router.resolve(envelope.source, envelope.type)
        if processor is acknowledge_unrouted:
            self._count("Unrouted")
        return processor(envelope)

    def _log(self, record: _Record, outcome: Outcome) -> None:
        kind = outcome.kind
        if kind is Kind.RETRY:
            logger.error(
                "processing failed; retrying", extra={"retry_in_seconds": outcome.delay}, exc_info=outcome.error
            )
        elif kind is Kind.GIVE_UP:
            logger.error("failed on the last attempt; SQS moves it to the dead-letter queue", exc_info=outcome.error)
        elif kind is Kind.PERMANENT and record.envelope is None:
            logger.error("not an envelope", extra={"message_id": record.message_id, "event_id": record.event_id})
        elif kind is Kind.PERMANENT:
            logger.warning("permanent failure: dead-lettered without retrying", extra={"reason": outcome.reason})
        elif kind is Kind.IN_PROGRESS:
            logger.info("already in progress elsewhere; retrying later")
        elif kind is Kind.DEAD_ELSEWHERE:
            logger.warning("already dead in this message's life; back to the queue for SQS to move it")
        elif kind is Kind.DUPLICATE:
            logger.info("duplicate delivery: returning the stored result without processing again")
        elif record.envelope is not None and record.envelope.meta.get(REPLAY_FLAG) is True:
            logger.info("replay: processed again, bypassing idempotency")

    # -- rounds 3 and 4: complete ---------------------------------------------------------

    def _complete(self, records: Sequence[_Record], processor: BatchProcessor, fifo: bool) -> None:
        for record in records:
            if record.outcome is None:  # FIFO: never run, its group had failed
                record.outcome = Outcome(Kind.SKIPPED, delay=0)
                self._count(Kind.SKIPPED.metric)
        outcomes = [(record, record.outcome) for record in records if record.outcome is not None]
        hidden = [record for record, outcome in outcomes if outcome.delay is not None]
        letters = [] if fifo else [record for record, outcome in outcomes if outcome.kind is Kind.PERMANENT]
        not_hidden: dict[str, str] = {}
        not_sent: dict[str, str] = {}
        calls = self._completions(outcomes, fifo)
        calls += [partial(self._change_visibility, chunk, not_hidden) for chunk in chunks(hidden)]
        calls += [partial(self._dead_letter, chunk, not_sent) for chunk in chunks(letters)]
        self._round(calls, what="completion", started=self._started)
        if not_hidden:
            logger.warning("could not change the visibility timeout", extra={"failed": not_hidden})
            self._count("BackoffFailed", len(not_hidden))
        visible_at = self.clock()

        # Round 4, only for failures: what depended on SQS's answers.
        releases: list[Callable[[], Any]] = []
        for record in letters:
            failed = not_sent.get(record.message_id)
            if failed is None:
                releases.append(partial(self._write_dead, record))
                continue
            # Never dropped: reported, it comes back and reaches the dead-letter queue on a later receive.
            error = NotProcessed(f"dead-letter send failed: {failed}")
            logger.error("dead-letter send failed; reported", extra={"message_id": record.message_id, "error": failed})
            processor.failure_handler(SQSRecord(record.raw), (NotProcessed, error, None))
            record.outcome = Outcome(Kind.RETRY, error=error)
            self._count("DeadLetterFailed")
        store = self.store
        for record in records:
            outcome, claim = record.outcome, record.claimed
            if store is None or claim is None or outcome is None or outcome.kind is not Kind.RETRY:
                continue
            visible = outcome.delay is not None and record.message_id not in not_hidden
            due = visible_at + (outcome.delay or 0) if visible else None
            releases.append(partial(store.retrying, claim, error=outcome.error or "failed", next_try_at=due))
        self._round(releases, what="status write")

    def _complete_now(self, record: _Record, outcome: Outcome) -> None:
        """Store a success the moment its processor returns, while the next one runs.

        As Powertools' idempotency does, a success is recorded before the batch goes on: an
        invocation killed at its timeout halfway through a batch has already stored the results
        of the records before, so their redelivery is a duplicate, not a second run. The write
        overlaps the following processors instead of adding a round trip to each record.
        """
        store = self.store
        if store is None:
            return
        claim = record.claimed
        if outcome.kind is Kind.SUCCEEDED and claim is not None:
            call = partial(store.succeeded, claim.event_id, outcome.result, claim=claim)
        elif outcome.kind is Kind.DUPLICATE and record.claim is not None and record.claim.previous_status != SUCCEEDED:
            call = partial(store.duplicate, record.claim)  # a redrive or replay had moved its status
        else:
            return
        self._started.append(self.pool.submit(_attempt, call))

    def _completions(self, outcomes: Sequence[tuple[_Record, Outcome]], fifo: bool) -> list[Callable[[], Any]]:
        """The writes that need no answer from SQS and were not made already: skipped claims, the dead."""
        store = self.store
        if store is None:
            return []
        calls: list[Callable[[], Any]] = []
        for record, outcome in outcomes:
            kind, claim = outcome.kind, record.claimed
            if kind is Kind.SKIPPED and claim is not None:
                calls.append(partial(store.skipped, claim))
            elif kind is Kind.GIVE_UP or (kind is Kind.PERMANENT and fifo):  # a FIFO letter was sent while it ran
                calls.append(partial(self._write_dead, record))
        return calls

    def _write_dead(self, record: _Record) -> None:
        outcome = record.outcome
        event_id = record.event_id
        if self.store is None or outcome is None or not event_id:
            return
        error = describe_error(outcome.error) if outcome.kind is Kind.GIVE_UP and outcome.error is not None else None
        self.store.dead(event_id, outcome.reason or "permanent", record.attempt, error=error, claim=record.claimed)

    def _change_visibility(self, records: Sequence[_Record], failed: dict[str, str]) -> None:
        entries = [Visibility(r.message_id, r.receipt_handle, r.outcome.delay or 0) for r in records if r.outcome]
        try:
            failed.update(self.queues.change_visibility(entries))
        except Exception as exc:  # noqa: BLE001 - the records are still reported; they return at the queue's timeout
            failed.update({entry.id: describe_error(exc) for entry in entries})

    def _dead_letter(self, records: Sequence[_Record], failed: dict[str, str]) -> None:
        """Send these records to the dead-letter queue; ``failed`` gets the message ids whose send failed, with why."""
        letters = [
            DeadLetter(
                id=record.message_id,
                body=str(record.raw.get("body") or ""),
                attributes=record.raw.get("messageAttributes") or {},
                reason=(record.outcome.reason if record.outcome else None) or "permanent",
                attempt=record.attempt,
                message_id=record.message_id,
                group_id=record.group_id,
            )
            for record in records
        ]
        for chunk in chunks(letters, max_bytes=DEAD_LETTER_BATCH_BYTES):
            try:
                failed.update(self.queues.dead_letter(chunk))
            except Exception as exc:  # noqa: BLE001 - reported instead: never dropped
                failed.update({letter.id: describe_error(exc) for letter in chunk})

    # -- concurrency ---------------------------------------------------------------------

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.settings.calls_in_flight, thread_name_prefix="inqueue")
        return self._pool

    def _round(
        self,
        calls: Sequence[Callable[[], Any]],
        what: str = "claim",
        started: Sequence[Future[BaseException | None]] = (),
    ) -> None:
        """Run ``calls`` concurrently, and wait for them and for ``started``; a failed write is logged and counted."""
        if not calls and not started:
            return
        if len(calls) == 1 and not started:
            failures = [_attempt(calls[0])]
        else:
            futures = [*started, *(self.pool.submit(_attempt, call) for call in calls)]
            failures = [future.result() for future in futures]
        for failure in failures:
            if failure is not None:
                logger.warning(f"{what} failed", extra={"error": describe_error(failure)})
                self._count("StatusWriteFailed")

    # -- counts, emitted once a batch ----------------------------------------------------

    def _count(self, name: str, value: int = 1) -> None:
        """Powertools' add_metric costs about 3 us a call and each value lengthens the EMF line, so outcomes
        are counted here and emitted as one value per batch: a metric's Sum is the number of records."""
        counts = self._counts
        counts[name] = counts.get(name, 0) + value

    def _emit_counts(self) -> None:
        for name, value in self._counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        self._counts.clear()


def _attempt(call: Callable[[], Any]) -> BaseException | None:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - reported by the caller
        return exc
    return None
