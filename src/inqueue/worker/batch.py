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

A source routed to a destination (``INQUEUE_DESTINATIONS``) is delivered over HTTP in
step 2 instead of running a processor (``inqueue.worker.destinations``); the answer is
classified like a processor's outcome. A delivery a limit or the invocation's time left
cannot take is **deferred**, which is not an attempt: on a standard queue a fresh copy of
the message (carrying the real attempts so far) is sent in step 4 with a delay, after the
claim is released in step 3, and the original is acknowledged, so SQS's receive count
never reaches the dead-letter queue for a deferral; the worker then counts attempts as
the carried ones plus this copy's receives, and dead-letters a copy itself when they run
out. On FIFO a copy would jump its group, so a deferral waits in place as long as the
invocation allows and is otherwise a visibility change, which SQS counts as a receive.
Result callbacks go out after the batch's writes (step 5), the ones that fail queued as
callback jobs on the events queue.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, SqsFifoPartialProcessor
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from inqueue.attributes import CALLBACK_JOB, REPLAY_FLAG
from inqueue.aws import worker_config
from inqueue.claimcheck import ClaimCheck
from inqueue.envelope import Envelope
from inqueue.errors import Deferred, EnvelopeError, PermanentError, RetryLater
from inqueue.observability import logger, metrics
from inqueue.retry import MAX_DELAY_SECONDS, Backoff
from inqueue.settings import WorkerSettings
from inqueue.status import COMPLETED, DEAD, ERROR_MAX_CHARS, SUCCEEDED, Claim, StatusStore, describe_error
from inqueue.worker.destinations import Delivery, Forwarding, finished_at, parse_job
from inqueue.worker.router import Router, acknowledge_unrouted
from inqueue.worker.sqs import (
    ATTEMPTS_ATTRIBUTE,
    DEAD_LETTER_BATCH_BYTES,
    JOB_ATTRIBUTE,
    MAX_SEND_DELAY_SECONDS,
    DeadLetter,
    Queues,
    Requeued,
    Visibility,
    chunks,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.logging.formatter import BasePowertoolsFormatter
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

    from inqueue.destinations import Deliverer, Destination

# SendMessageBatch's entries together may not exceed the largest message SQS takes.
_BATCH_BYTES = DEAD_LETTER_BATCH_BYTES
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
    # Not an attempt (a delivery limit had no slot, or the invocation no time): back later as a fresh copy, the
    # original acknowledged; on FIFO reported instead, with a visibility change (a copy would jump the group).
    DEFERRED = ("deferred", "Deferred", False)
    EXHAUSTED = ("exhausted", "Failed", False)  # a copy failed its last real attempt: the worker dead-letters it now
    CALLBACK = ("callback", "CallbackDelivered", False)  # a queued result callback was delivered (or is obsolete)

    def __init__(self, label: str, metric: str, reported: bool):
        self.label = label
        self.metric = metric
        self.reported = reported


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    result: Any = None
    error: BaseException | None = None
    delay: int | None = None  # seconds until the message (or a deferred one's copy) is visible again
    reason: str | None = None
    result_omitted: str | None = None  # a delivery's answer that is not kept as the result: why
    finished_at: float | None = None  # succeeded or dead: when, as the record and its callback say


class NotProcessed(Exception):
    """A record reported without its processor having failed: in progress elsewhere, dead, or its DLQ send failed."""


@dataclass(slots=True, eq=False)
class _Record:
    raw: dict[str, Any]
    message_id: str
    receipt_handle: str
    attempt: int  # the real attempt this receive is: the attempts a copy carries, plus SQS's receive count
    since: float | None
    group_id: str | None
    carried: int = 0  # attempts made before this message (a deferred event's copy), not counted by SQS
    job: dict[str, Any] | None = None  # a callback job's fields
    destination: Destination | None = None  # where a routed envelope (or a callback job) goes
    envelope: Envelope | None = None
    not_an_envelope: str | None = None
    claim: Claim | None = None
    not_ready: BaseException | None = None  # the claim or the payload fetch failed
    outcome: Outcome | None = None
    twin: _Record | None = None  # an earlier record of this batch with the same event id: it claims for both

    @property
    def event_id(self) -> str | None:
        """The event this message is (None for a callback job: its event's record is not its to write)."""
        if self.envelope is not None:
            return self.envelope.id
        if self.job is not None:
            return None
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
        deliverer: Deliverer | None = None,
    ):
        self.router = router
        self.settings = settings
        guarantees = settings.guarantees
        config = worker_config(settings.calls_in_flight)
        if store is None and guarantees.status_table:
            store = StatusStore(
                guarantees.status_table, ttl_seconds=guarantees.record_ttl_seconds, clock=clock, client_config=config,
                index_shards=guarantees.index_shards,
            )  # fmt: skip
        self.store = store
        self.queues = queues or Queues(settings.queue_url, settings.dlq_url, client_config=config)
        self.claim_check = claim_check or ClaimCheck(guarantees.payload_bucket)
        self.backoff = backoff or Backoff(settings.retry_base_seconds, settings.retry_max_seconds)
        self.clock = clock
        self.forwarding: Forwarding | None = None
        if deliverer is not None and (deliverer.config.routes or deliverer.config.callbacks):
            self.forwarding = Forwarding(deliverer, random=self.backoff.random)
            self.forwarding.check(router.named_sources(), settings.timeout_seconds)
        self.processor = BatchProcessor(event_type=EventType.SQS)
        self.fifo_processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        self._pool: ThreadPoolExecutor | None = None
        self._started: list[Future[BaseException | None]] = []
        self._records: dict[int, _Record] = {}
        self._counts: dict[str, int] = {}
        self._log_keys: BasePowertoolsFormatter = logger.registered_formatter

    @classmethod
    def from_environment(cls, router: Router, env: Mapping[str, str] | None = None) -> Worker:
        env = os.environ if env is None else env
        return cls(router, WorkerSettings.from_env(env), deliverer=_deliverer_from_env(env))

    # -- one invocation -------------------------------------------------------------------

    def handle(self, event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        raw_records = event.get("Records") or []
        fifo = bool(raw_records) and str(raw_records[0].get("eventSourceARN", "")).endswith(".fifo")
        processor = self.fifo_processor if fifo else self.processor
        # Looked up once a batch: Logger.append_keys finds the formatter through the handler on every call.
        self._log_keys = logger.registered_formatter
        records = [self._read(raw) for raw in raw_records]
        self._records = {id(record.raw): record for record in records}
        if self.forwarding is not None:
            self.forwarding.start_batch(context, self.router.named_sources())
        try:
            self._claim_all(records, context)
            with processor(raw_records, self._run):
                processor.process()
                self._log_keys.remove_keys(_LOG_KEYS)
                self._complete(records, processor, fifo)
            self._call_back(records)
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
        message_attributes = raw.get("messageAttributes") or {}
        # Most messages are neither a deferred copy nor a job: two dict lookups, nothing parsed.
        carried = (
            _number_attribute(message_attributes, ATTEMPTS_ATTRIBUTE) if ATTEMPTS_ATTRIBUTE in message_attributes else 0
        )
        record = _Record(
            raw=raw,
            message_id=str(raw.get("messageId") or ""),
            receipt_handle=str(raw.get("receiptHandle") or ""),
            attempt=carried + int(attributes.get("ApproximateReceiveCount") or 1),
            since=int(first_received) / 1000 if first_received else None,
            group_id=attributes.get("MessageGroupId"),
            carried=carried,
        )
        if JOB_ATTRIBUTE in message_attributes and message_attributes[JOB_ATTRIBUTE].get("stringValue") == CALLBACK_JOB:
            try:
                record.job = parse_job(raw["body"])
            except (TypeError, ValueError) as exc:
                record.not_an_envelope = f"bad callback job: {exc}"
            return record
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
        elif record.job is not None:  # a callback job: about its event, but not that event's attempt
            self._log_keys.remove_keys(_LOG_KEYS)
            self._log_keys.append_keys(
                event_id=record.job["event_id"], correlation_id=record.job.get("correlation_id") or "",
                message_id=record.message_id,
            )  # fmt: skip
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
        if outcome.kind in (Kind.GIVE_UP, Kind.EXHAUSTED):  # failed last attempts count among the dead letters too
            self._count("DeadLettered")
        if outcome.kind.reported or (outcome.kind is Kind.DEFERRED and self.queues.fifo):
            raise outcome.error or NotProcessed(outcome.kind.label)
        return outcome.result

    def classify(self, record: _Record) -> Outcome:
        """The one place that decides what became of a record (with ``_without_running`` and ``_failed``).

        A processor's outcome and a delivery's are the same: returned (for a delivery, the
        app's 2xx and its JSON as the result), ``RetryLater``, ``PermanentError`` (a 4xx, an
        address refused), anything else (no answer, a 5xx); plus ``Deferred`` for a delivery,
        which is not an attempt.
        """
        settled = None if record.job is not None else self._without_running(record)
        if settled is not None:
            return settled
        try:
            result = self._call_processor(record)
        except Exception as exc:  # noqa: BLE001 - every failure has its outcome
            return self._failed(record, exc)
        if self.forwarding is None:  # no destinations: a processor returned
            return Outcome(Kind.SUCCEEDED, result=result)
        if record.job is not None:
            return Outcome(Kind.CALLBACK)
        # The time a callback reports, the record's completed_at too (a redelivery's callback reads it back).
        now = self.clock()
        if isinstance(result, Delivery):
            return Outcome(Kind.SUCCEEDED, result=result.result, result_omitted=result.result_omitted, finished_at=now)
        return Outcome(Kind.SUCCEEDED, result=result, finished_at=now)

    def _failed(self, record: _Record, exc: Exception) -> Outcome:
        if isinstance(exc, Deferred):
            return self._deferral(record, exc)
        if isinstance(exc, PermanentError):
            return Outcome(Kind.PERMANENT, error=exc, reason=exc.reason, finished_at=self.clock())
        max_receives = self.settings.max_receive_count
        if record.attempt >= max_receives:
            reason = f"failed {record.attempt} times (maxReceiveCount {max_receives})"
            if record.carried:  # a copy: SQS's count of its receives is lower, so the worker moves it itself
                return Outcome(Kind.EXHAUSTED, error=exc, reason=reason, finished_at=self.clock())
            return Outcome(Kind.GIVE_UP, error=exc, delay=0, reason=reason, finished_at=self.clock())
        requested = exc.seconds if isinstance(exc, RetryLater) else None
        return Outcome(Kind.RETRY, error=exc, delay=self.backoff.delay(record.attempt, requested))

    def _deferral(self, record: _Record, deferred: Deferred) -> Outcome:
        assert self.forwarding is not None  # only deliveries are deferred
        claim = record.claimed
        delay = self.forwarding.deferral_delay(record.destination, deferred, claim.deferrals if claim else 0)
        limit = MAX_DELAY_SECONDS if self.queues.fifo else MAX_SEND_DELAY_SECONDS
        return Outcome(Kind.DEFERRED, error=deferred, delay=min(delay, limit), reason=str(deferred))

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
        if record.job is not None:
            return self._run_job(record)
        if record.not_ready is not None:  # the claim or the payload fetch failed: classified as the processor's
            raise record.not_ready
        envelope = record.envelope
        assert envelope is not None
        forwarding = self.forwarding
        if forwarding is not None:
            record.destination = forwarding.route(envelope)
            if record.destination is not None:
                return forwarding.deliver(envelope, record.destination, attempt=record.attempt, fifo=self.queues.fifo)
        processor = self.router.resolve(envelope.source, envelope.type)
        if processor is acknowledge_unrouted:
            self._count("Unrouted")
        return processor(envelope)

    def _run_job(self, record: _Record) -> None:
        """A queued result callback: sent again with its destination's full timeout."""
        job = record.job
        assert job is not None
        forwarding = self.forwarding
        if forwarding is None or not forwarding.has_callback(str(job["source"])):
            logger.warning("callback job for a source without a result callback now: dropped")
            return
        record.destination = forwarding.deliverer.callback(str(job["source"]))
        forwarding.notify_job(job, fifo=self.queues.fifo)

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
        elif kind is Kind.DEFERRED:
            logger.info(
                "deferred: not an attempt; back later",
                extra={"deferred_seconds": outcome.delay, "reason": (outcome.reason or "")[:300]},
            )
        elif kind is Kind.EXHAUSTED:
            logger.error("failed on the last attempt; dead-lettered", exc_info=outcome.error)
        elif kind is Kind.CALLBACK:
            logger.info("result callback delivered")
        elif record.envelope is not None and record.envelope.meta.get(REPLAY_FLAG) is True:
            logger.info("replay: processed again, bypassing idempotency")

    # -- rounds 3 and 4: complete ---------------------------------------------------------

    def _complete(self, records: Sequence[_Record], processor: BatchProcessor, fifo: bool) -> None:
        for record in records:
            if record.outcome is None:  # FIFO: never run, its group had failed
                record.outcome = Outcome(Kind.SKIPPED, delay=0)
                self._count(Kind.SKIPPED.metric)
        outcomes = [(record, record.outcome) for record in records if record.outcome is not None]
        # A standard queue's deferrals come back as fresh copies (round 4), sent once their claims are released.
        copies = [] if fifo else [record for record, outcome in outcomes if outcome.kind is Kind.DEFERRED]
        hidden = [
            r for r, outcome in outcomes if outcome.delay is not None and (fifo or outcome.kind is not Kind.DEFERRED)
        ]
        dead_now = (Kind.PERMANENT, Kind.EXHAUSTED)
        letters = [] if fifo else [record for record, outcome in outcomes if outcome.kind in dead_now]
        not_hidden: dict[str, str] = {}
        not_sent: dict[str, str] = {}
        calls = self._completions(outcomes, fifo)
        calls += [partial(self._change_visibility, chunk, not_hidden) for chunk in chunks(hidden)]
        calls += [partial(self._dead_letter, chunk, not_sent) for chunk in chunks(letters)]
        # Released before its copy exists, so that the copy (which may be due at once) finds the event free.
        now = self.clock()
        calls += [partial(self._write_deferred, record, now + _delay(record)) for record in copies]
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
        not_copied: dict[str, str] = {}
        requeued = [self._copy(record) for record in copies]
        releases += [partial(self._requeue, chunk, not_copied) for chunk in chunks(requeued, max_bytes=_BATCH_BYTES)]
        store = self.store
        for record in records:
            outcome, claim = record.outcome, record.claimed
            if store is None or claim is None or outcome is None:
                continue
            visible = outcome.delay is not None and record.message_id not in not_hidden
            due = visible_at + (outcome.delay or 0) if visible else None
            if outcome.kind is Kind.RETRY:
                releases.append(partial(store.retrying, claim, error=outcome.error or "failed", next_try_at=due))
            elif outcome.kind is Kind.DEFERRED and fifo:  # its receive counts towards maxReceiveCount: so does it here
                releases.append(
                    partial(
                        store.deferred, claim, reason=outcome.reason or "deferred", next_try_at=due,
                        attempts=claim.attempt,
                    )
                )  # fmt: skip
        self._round(releases, what="status write")
        for record in copies:
            failed = not_copied.get(record.message_id)
            if failed is None:
                continue
            # Never dropped: reported instead, it comes back at the queue's visibility timeout (a receive counted).
            logger.error(
                "deferred copy send failed; reported", extra={"message_id": record.message_id, "error": failed}
            )
            processor.failure_handler(SQSRecord(record.raw), (NotProcessed, NotProcessed(failed), None))
            self._count("DeferralFailed")

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
            call = partial(
                store.succeeded, claim.event_id, outcome.result, result_omitted=outcome.result_omitted, claim=claim,
                at=outcome.finished_at,
            )  # fmt: skip
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
        failed = outcome.kind in (Kind.GIVE_UP, Kind.EXHAUSTED) and outcome.error is not None
        error = describe_error(outcome.error) if failed and outcome.error is not None else None
        self.store.dead(
            event_id, outcome.reason or "permanent", record.attempt, error=error, claim=record.claimed,
            at=outcome.finished_at,
        )  # fmt: skip

    def _write_deferred(self, record: _Record, next_try_at: float) -> None:
        outcome, claim = record.outcome, record.claimed
        if self.store is None or claim is None or outcome is None:
            return
        self.store.deferred(claim, reason=outcome.reason or "deferred", next_try_at=next_try_at)

    @staticmethod
    def _copy(record: _Record) -> Requeued:
        """A deferred record's fresh copy: the attempts made so far carried, this receive not among them."""
        return Requeued.copy(
            record.message_id, str(record.raw.get("body") or ""), record.raw.get("messageAttributes") or {},
            attempts=record.attempt - 1, delay=_delay(record),
        )  # fmt: skip

    def _requeue(self, messages: Sequence[Requeued], failed: dict[str, str]) -> None:
        try:
            failed.update(self.queues.requeue(messages))
        except Exception as exc:  # noqa: BLE001 - the caller reports what was not sent
            failed.update({message.id: describe_error(exc) for message in messages})

    # -- round 5: result callbacks --------------------------------------------------------

    def _call_back(self, records: Sequence[_Record]) -> None:
        """Each final event's callback, tried inline and concurrently; what fails retryably goes out as a job."""
        forwarding = self.forwarding
        if forwarding is None or not forwarding.deliverer.config.callbacks:
            return
        notes = [note for record in records if (note := self._callback_note(record, forwarding)) is not None]
        if not notes:
            return
        if forwarding.inline_fits():
            tried = list(self.pool.map(forwarding.notify_inline, notes))
        else:
            tried = [("queue", 0)] * len(notes)
        queued: list[tuple[dict[str, Any], int]] = []
        for note, (what, delay) in zip(notes, tried, strict=True):
            if what == "delivered":
                self._count("CallbackDelivered")
            elif what == "refused":
                self._count("CallbackFailed")
            else:
                queued.append((note, delay or 0))
        if not queued:
            return
        jobs = [forwarding.job(index, note, delay) for index, (note, delay) in enumerate(queued)]
        failed: dict[str, str] = {}
        self._round(
            [partial(self._requeue, chunk, failed) for chunk in chunks(jobs, max_bytes=_BATCH_BYTES)],
            what="callback job",
        )
        self._count("CallbackQueued", len(jobs) - len(failed))
        for job in jobs:
            if job.id in failed:
                logger.error(
                    "result callback lost: its first try failed and its job could not be queued",
                    extra={"callback": job.body[:500], "error": failed[job.id]},
                )
                self._count("CallbackLost")

    @staticmethod
    def _callback_note(record: _Record, forwarding: Forwarding) -> dict[str, Any] | None:
        """What the callback of a record that became (or was found) final says, or None."""
        outcome, envelope = record.outcome, record.envelope
        if outcome is None or envelope is None or not forwarding.has_callback(envelope.source):
            return None
        event = {
            "event_id": envelope.id, "source": envelope.source, "event_type": envelope.type,
            "correlation_id": envelope.correlation_id,
        }  # fmt: skip
        kind, claim = outcome.kind, record.claim
        if kind is Kind.SUCCEEDED:
            return forwarding.note(
                **event, status=SUCCEEDED, attempts=record.attempt, finished_at=finished_at(outcome.finished_at, None),
                result=outcome.result, result_omitted=outcome.result_omitted,
            )  # fmt: skip
        if kind in (Kind.PERMANENT, Kind.GIVE_UP, Kind.EXHAUSTED):
            return forwarding.note(
                **event, status=DEAD, attempts=record.attempt, finished_at=finished_at(outcome.finished_at, None),
                reason=(outcome.reason or "permanent")[:ERROR_MAX_CHARS],
            )  # fmt: skip
        # Found final by its claim (a redelivery, perhaps after a crash before the first callback): the same one again.
        if claim is None or claim.taken or kind not in (Kind.DUPLICATE, Kind.DEAD_ELSEWHERE):
            return None
        previous = claim.previous
        attempts = int((previous.get("attempt") or {}).get("N") or 0)
        if kind is Kind.DUPLICATE:
            result, omitted = claim.stored_result()
            when = (previous.get("completed_at") or {}).get("S")
            return forwarding.note(
                **event, status=SUCCEEDED, attempts=attempts, finished_at=finished_at(None, when), result=result,
                result_omitted=omitted,
            )  # fmt: skip
        reason = (previous.get("reason") or {}).get("S")
        when = (previous.get("updated_at") or {}).get("S")
        return forwarding.note(
            **event, status=DEAD, attempts=attempts, finished_at=finished_at(None, when), reason=reason
        )

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


def _delay(record: _Record) -> int:
    return (record.outcome.delay if record.outcome is not None else None) or 0


def _number_attribute(attributes: Mapping[str, Any], name: str) -> int:
    text = (attributes.get(name) or {}).get("stringValue")
    try:
        return max(int(str(text)), 0) if text is not None else 0
    except ValueError:
        return 0


def _deliverer_from_env(env: Mapping[str, str]) -> Deliverer | None:
    """The destinations the worker delivers to and calls back, or None when ``INQUEUE_DESTINATIONS`` has none."""
    text = env.get("INQUEUE_DESTINATIONS", "").strip()
    if not text or text == "{}":
        return None
    from inqueue.destinations import Deliverer

    # Only the ingress is given the sources' configuration: route names are checked against it by `make run`.
    return Deliverer.from_env(env)


def _attempt(call: Callable[[], Any]) -> BaseException | None:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - reported by the caller
        return exc
    return None
