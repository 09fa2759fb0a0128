"""The worker: route each queued envelope to the user's processor, one record at a time.

Users register processors on a ``Router`` by source and event type::

    router = Router()

    @router.on("github", "push")
    def on_push(event: Envelope) -> dict | None: ...

A processor knows nothing of SQS, batches or retries. It:

- returns: done. The record is deleted; the status becomes ``succeeded`` with the result
  (when it is JSON and at most 4 KiB; otherwise ``result_omitted`` says why). The result
  is also kept in the idempotency table, so a duplicate delivery of the same event id
  gets it back without the processor running again.
- raises ``RetryLater(seconds)``: tried again after that many seconds.
- raises ``PermanentError(reason)``: never tried again; the message goes to the
  dead-letter queue with the reason attached, and is not reported as a batch failure.
- raises anything else: tried again after an exponential backoff with full jitter
  (``inqueue.retry``), set with ChangeMessageVisibility; on the last attempt the status
  becomes ``dead`` and SQS moves the message to the dead-letter queue.

An event no processor matches is acknowledged and logged as ``unrouted``, because
senders such as GitHub send many types nobody asked to handle; register
``router.default`` to change that. An envelope whose ``meta`` has
``replay_bypass_idempotency: true`` (set by ``inqueue replay``) is processed again even
when it already succeeded.

On a FIFO queue the worker uses Powertools' FIFO processor with ``skip_group_on_error``:
a group stops at its first failure (the rest of that group is reported too, so order
holds) while other groups in the batch go on.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.logging.formatter import BasePowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from inqueue.attributes import DEAD_ATTEMPTS, DEAD_REASON, FAILED_MESSAGE_ID, REPLAY_FLAG
from inqueue.claimcheck import ClaimCheck
from inqueue.envelope import Envelope
from inqueue.errors import EnvelopeError, PermanentError, RetryLater
from inqueue.observability import logger, metrics
from inqueue.retry import Backoff
from inqueue.settings import WorkerSettings
from inqueue.status import StatusStore, describe_error, encode_result

# SQS allows 10 message attributes; the dead-letter copy adds these three to the originals.
# The names live in inqueue.attributes, shared with the operator tools.
DEAD_REASON_ATTRIBUTE = DEAD_REASON
DEAD_ATTEMPTS_ATTRIBUTE = DEAD_ATTEMPTS
FAILED_MESSAGE_ID_ATTRIBUTE = FAILED_MESSAGE_ID
_MAX_MESSAGE_ATTRIBUTES = 10
_LOG_KEYS = ["event_id", "source", "type", "correlation_id", "message_id", "attempt"]

Processor = Callable[[Envelope], Any]

ANY = "*"


class Router:
    """Processors by (source, type); ``"*"`` matches any source or any type."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Processor] = {}
        self._default: Processor = _acknowledge_unrouted

    def on(self, source: str = ANY, type: str = ANY) -> Callable[[Processor], Processor]:  # noqa: A002
        def register(processor: Processor) -> Processor:
            key = (source, type)
            if key in self._routes:
                raise ValueError(f"a processor is already registered for source={source!r} type={type!r}")
            self._routes[key] = processor
            return processor

        return register

    def default(self, processor: Processor) -> Processor:
        self._default = processor
        return processor

    def resolve(self, source: str, type: str) -> Processor:  # noqa: A002
        routes = self._routes
        return (
            routes.get((source, type))
            or routes.get((source, ANY))
            or routes.get((ANY, type))
            or routes.get((ANY, ANY))
            or self._default
        )


def _acknowledge_unrouted(event: Envelope) -> None:
    logger.info(
        "unrouted: no processor for this source and type; acknowledged",
        extra={"source": event.source, "type": event.type, "event_id": event.id},
    )
    metrics.add_metric(name="Unrouted", unit=MetricUnit.Count, value=1)


class Worker:
    """Runs a batch through Powertools' batch processor with a router, retries and status behind it."""

    def __init__(
        self,
        router: Router,
        settings: WorkerSettings | None = None,
        *,
        sqs: Any = None,
        status: StatusStore | None = None,
        claim_check: ClaimCheck | None = None,
        idempotency_client: Any = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.router = router
        self.settings = settings or WorkerSettings.from_env({})
        self._sqs = sqs
        guarantees = self.settings.guarantees
        if status is None and guarantees.status_table:
            status = StatusStore(guarantees.status_table, ttl_seconds=guarantees.status_ttl_seconds, clock=clock)
        self.status = status
        self.claim_check = claim_check or ClaimCheck(guarantees.payload_bucket)
        self.backoff = backoff or Backoff(self.settings.retry_base_seconds, self.settings.retry_max_seconds)
        self.clock = clock
        self.processor = BatchProcessor(event_type=EventType.SQS)
        self.fifo_processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        self.idempotency_config = IdempotencyConfig(
            event_key_jmespath="id",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=self.settings.idempotency_ttl_seconds,
            response_hook=_count_duplicate,
        )
        self._idempotency_client = idempotency_client
        self._idempotent: Callable[..., dict[str, Any]] | None = None
        self._queues: dict[str, str] = {}
        self._redrive: dict[str, tuple[str | None, int | None]] = {}
        self._counts: dict[str, int] = {}
        self._log_keys: BasePowertoolsFormatter = logger.registered_formatter

    @classmethod
    def from_environment(cls, router: Router) -> Worker:
        return cls(router, WorkerSettings.from_env())

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            from inqueue.aws import client

            self._sqs = client("sqs")
        return self._sqs

    def handle(self, event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        # In-progress idempotency locks expire when this invocation would time out, so a
        # crashed or timed-out attempt never blocks the event's next delivery for longer.
        self.idempotency_config.register_lambda_context(context)
        records = event.get("Records") or []
        fifo = bool(records) and str(records[0].get("eventSourceARN", "")).endswith(".fifo")
        # Looked up once a batch: Logger.append_keys finds the formatter through the handler on every call.
        self._log_keys = logger.registered_formatter
        try:
            return process_partial_response(
                event=event,
                record_handler=self.process_record,
                processor=self.fifo_processor if fifo else self.processor,
                context=context,
            )
        finally:
            # Each record overwrites the keys of the one before; none outlives the batch.
            self._log_keys.remove_keys(_LOG_KEYS)
            self._emit_counts()

    def process_record(self, record: SQSRecord) -> Any:
        raw = record.raw_event
        # The raw dict, read once: each SQSRecord property builds a new wrapper to read one key.
        attributes = raw.get("attributes") or {}
        attempt = int(attributes.get("ApproximateReceiveCount") or 1)
        try:
            envelope = Envelope.from_json(raw["body"])
        except EnvelopeError as exc:
            self._log_keys.remove_keys(_LOG_KEYS)  # the previous record's, if any: this line is about another message
            event_id = _attribute(record, "event_id")
            logger.error("not an envelope", extra={"message_id": record.message_id, "event_id": event_id})
            self._dead_letter(record, event_id, f"bad_envelope: {exc}", attempt)
            return None
        self._log_keys.append_keys(
            event_id=envelope.id,
            source=envelope.source,
            type=envelope.type,
            correlation_id=envelope.correlation_id,
            message_id=raw["messageId"],
            attempt=attempt,
        )
        return self._process(record, envelope, attempt, attributes)

    def _process(self, record: SQSRecord, envelope: Envelope, attempt: int, attributes: dict[str, Any]) -> Any:
        since: float | None = None
        replay = envelope.meta.get(REPLAY_FLAG) is True
        if self.status is not None:
            first_received = attributes.get("ApproximateFirstReceiveTimestamp")
            since = int(first_received) / 1000 if first_received else None
            self._write_status(
                "processing",
                envelope.id,
                attempt,
                since=since,
                reopen=replay,
                source=envelope.source,
                type=envelope.type,
            )
        try:
            if envelope.body_ref is not None:
                envelope = self.claim_check.resolve(envelope)
            stored = self._run(envelope, replay)
        except PermanentError as exc:
            logger.warning("permanent failure: dead-lettered without retrying", extra={"reason": exc.reason})
            self._dead_letter(record, envelope.id, exc.reason, attempt)
            return None
        except Exception as exc:
            self._retry_or_give_up(record, envelope, exc, attempt, since=since, reopen=replay)
            raise
        encoded = stored["result"]
        result = json.loads(encoded) if encoded is not None else None
        if self.status is not None:
            self._write_status("succeeded", envelope.id, result, attempt=attempt, result_omitted=stored.get("omitted"))
        self._count("Processed")
        return result

    # -- counts, emitted once a batch ----------------------------------------------------

    def _count(self, name: str) -> None:
        """One more ``name`` in this batch.

        Powertools' add_metric costs about 3 us a call and each value lengthens the EMF line,
        so outcomes are counted here and emitted as one value per batch: the metric's Sum is
        the number of records, as before; its SampleCount is now the number of batches.
        """
        counts = self._counts
        counts[name] = counts.get(name, 0) + 1

    def _emit_counts(self) -> None:
        for name, value in self._counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        self._counts.clear()

    # -- running the processor at most once per event id ----------------------------------

    def _run(self, envelope: Envelope, replay: bool) -> dict[str, Any]:
        table = self.settings.idempotency_table
        if not table or replay:
            if replay:
                logger.info("replay: processing again, bypassing idempotency")
            return self._call_processor(key={"id": envelope.id}, envelope=envelope)
        if self._idempotent is None:
            from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

            store = DynamoDBPersistenceLayer(table_name=table, boto3_client=self._idempotency_client)
            self._idempotent = idempotent_function(
                self._call_processor,
                data_keyword_argument="key",
                persistence_store=store,
                config=self.idempotency_config,
            )
        return self._idempotent(key={"id": envelope.id}, envelope=envelope)

    def _call_processor(self, key: dict[str, str], envelope: Envelope) -> dict[str, Any]:
        """Run the processor; what it returns is stored as JSON text (or why not) for duplicates to reuse."""
        result = self.router.resolve(envelope.source, envelope.type)(envelope)
        encoded, omitted = encode_result(result) if result is not None else (None, None)
        return {"result": encoded, "omitted": omitted}

    # -- failures ----------------------------------------------------------------------

    def _retry_or_give_up(
        self,
        record: SQSRecord,
        envelope: Envelope,
        error: Exception,
        attempt: int,
        *,
        since: float | None,
        reopen: bool,
    ) -> None:
        self._count("Failed")
        if isinstance(error, IdempotencyAlreadyInProgressError):
            # Another invocation is processing this very event: come back after a backoff,
            # and leave the status to the one that holds the lock.
            logger.info("already in progress elsewhere; retrying later")
            self._change_visibility(record, self.backoff.delay(attempt))
            return
        _, max_receives = self._redrive_of(record)
        if max_receives is not None and attempt >= max_receives:
            logger.exception("failed on the last attempt; SQS moves it to the dead-letter queue")
            self._write_status(
                "dead",
                envelope.id,
                f"failed {attempt} times (maxReceiveCount {max_receives})",
                attempt,
                error=describe_error(error),
            )
            metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
            # Visible again at once, so the next receive moves it rather than one more visibility timeout later.
            self._change_visibility(record, 0)
            return
        requested = error.seconds if isinstance(error, RetryLater) else None
        delay = self.backoff.delay(attempt, requested)
        logger.exception("processing failed; retrying", extra={"retry_in_seconds": delay})
        if self._change_visibility(record, delay):
            self._write_status(
                "retrying", envelope.id, attempt, self.clock() + delay, error, since=since, reopen=reopen
            )

    def _change_visibility(self, record: SQSRecord, seconds: int) -> bool:
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self._queue_url(record), ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
            )
        except Exception as exc:  # noqa: BLE001 - the record is still reported; it returns at the queue's timeout
            logger.warning("could not change the visibility timeout", extra={"error": describe_error(exc)})
            metrics.add_metric(name="BackoffFailed", unit=MetricUnit.Count, value=1)
            return False
        return True

    def _dead_letter(self, record: SQSRecord, event_id: str | None, reason: str, attempt: int) -> None:
        """Send this message to the dead-letter queue now, with the reason; raises when it cannot.

        Raising leaves the record reported as failed, so a message is never dropped: at
        worst it reaches the dead-letter queue the slow way, after maxReceiveCount.
        """
        dlq_url, _ = self._redrive_of(record)
        if not dlq_url:
            raise RuntimeError("no dead-letter queue is known: set INQUEUE_DLQ_URL or a redrive policy")
        attributes = _send_attributes(record)
        attributes = dict(list(attributes.items())[: _MAX_MESSAGE_ATTRIBUTES - 3])
        attributes[DEAD_REASON_ATTRIBUTE] = {"DataType": "String", "StringValue": reason[:1000] or "permanent"}
        attributes[DEAD_ATTEMPTS_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(attempt)}
        attributes[FAILED_MESSAGE_ID_ATTRIBUTE] = {"DataType": "String", "StringValue": record.message_id}
        request: dict[str, Any] = {"QueueUrl": dlq_url, "MessageBody": record.body, "MessageAttributes": attributes}
        if dlq_url.endswith(".fifo"):
            request["MessageGroupId"] = record.attributes.message_group_id or "inqueue"
            request["MessageDeduplicationId"] = record.message_id
        self.sqs.send_message(**request)
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
        if event_id:
            self._write_status("dead", event_id, reason, attempt)

    # -- the queue this record came from ------------------------------------------------

    def _queue_url(self, record: SQSRecord) -> str:
        if self.settings.queue_url:
            return self.settings.queue_url
        arn = record.event_source_arn
        url = self._queues.get(arn)
        if url is None:
            url = self._queues[arn] = _url_for_arn(self.sqs, arn)
        return url

    def _redrive_of(self, record: SQSRecord) -> tuple[str | None, int | None]:
        """(dead-letter queue URL, maxReceiveCount): from settings, else read once from the queue."""
        dlq_url, max_receives = self.settings.dlq_url, self.settings.max_receive_count
        if dlq_url and max_receives:
            return dlq_url, max_receives
        arn = record.event_source_arn
        if arn not in self._redrive:
            try:
                answer = self.sqs.get_queue_attributes(
                    QueueUrl=self._queue_url(record), AttributeNames=["RedrivePolicy"]
                )
                policy = json.loads(answer.get("Attributes", {}).get("RedrivePolicy") or "{}")
                target = policy.get("deadLetterTargetArn")
                self._redrive[arn] = (
                    _url_for_arn(self.sqs, target) if target else None,
                    int(policy["maxReceiveCount"]) if "maxReceiveCount" in policy else None,
                )
            except Exception as exc:  # noqa: BLE001 - unknown redrive: no early dead status, retries as usual
                logger.warning("could not read the queue's redrive policy", extra={"error": describe_error(exc)})
                return dlq_url, max_receives
        found_dlq, found_max = self._redrive[arn]
        return dlq_url or found_dlq, max_receives or found_max

    # -- status ------------------------------------------------------------------------

    def _write_status(self, transition: str, event_id: str, *args: Any, **kwargs: Any) -> None:
        """Status is for callers' eyes: a failed write is logged and counted, never a failed record."""
        if self.status is None:
            return
        try:
            getattr(self.status, transition)(event_id, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            logger.warning("status write failed", extra={"transition": transition, "error": describe_error(exc)})
            metrics.add_metric(name="StatusWriteFailed", unit=MetricUnit.Count, value=1)


def _count_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    logger.info("duplicate delivery: returning the stored result without processing again")
    metrics.add_metric(name="Duplicate", unit=MetricUnit.Count, value=1)
    return response


def _attribute(record: SQSRecord, name: str) -> str | None:
    value = (record.get("messageAttributes") or {}).get(name) or {}
    text = value.get("stringValue")
    return text if isinstance(text, str) else None


def _send_attributes(record: SQSRecord) -> dict[str, dict[str, Any]]:
    """The record's message attributes in SendMessage's shape (the event uses other key names)."""
    converted: dict[str, dict[str, Any]] = {}
    for name, value in (record.get("messageAttributes") or {}).items():
        data_type = value.get("dataType") or "String"
        if value.get("stringValue") is not None:
            converted[name] = {"DataType": data_type, "StringValue": value["stringValue"]}
        elif value.get("binaryValue") is not None:
            converted[name] = {"DataType": data_type, "BinaryValue": base64.b64decode(value["binaryValue"])}
    return converted


def _url_for_arn(sqs: Any, arn: str) -> str:
    parts = arn.split(":")
    answer = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
    return str(answer["QueueUrl"])
