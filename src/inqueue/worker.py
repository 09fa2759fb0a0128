"""The worker: route each queued envelope to the user's processor, one record at a time.

Users register processors on a ``Router`` by source and event type::

    router = Router()

    @router.on("github", "push")
    def on_push(event: Envelope) -> dict | None: ...

A processor returns (success: the record is deleted) or raises (the record is reported
in ``batchItemFailures`` and comes back after its visibility timeout, then goes to the
dead-letter queue after ``maxReceiveCount`` receives). Processors know nothing of SQS,
batches or retries. An event no processor matches is acknowledged and logged as
``unrouted``, because senders such as GitHub send many types nobody asked to handle;
register ``router.default`` to change that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from inqueue.envelope import Envelope
from inqueue.observability import logger, metrics

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
    """Runs a batch through Powertools' BatchProcessor with a router behind it."""

    def __init__(self, router: Router):
        self.router = router
        self.processor = BatchProcessor(event_type=EventType.SQS)

    def handle(self, event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        return process_partial_response(
            event=event, record_handler=self.process_record, processor=self.processor, context=context
        )

    def process_record(self, record: SQSRecord) -> Any:
        envelope = Envelope.from_json(record.body)
        logger.append_keys(
            event_id=envelope.id,
            source=envelope.source,
            type=envelope.type,
            correlation_id=envelope.correlation_id,
            message_id=record.message_id,
        )
        try:
            result = self.router.resolve(envelope.source, envelope.type)(envelope)
        except Exception:
            logger.exception("processing failed", extra={"receive_count": record.attributes.approximate_receive_count})
            metrics.add_metric(name="Failed", unit=MetricUnit.Count, value=1)
            raise
        finally:
            logger.remove_keys(["event_id", "source", "type", "correlation_id", "message_id"])
        metrics.add_metric(name="Processed", unit=MetricUnit.Count, value=1)
        return result
