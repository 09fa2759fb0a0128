"""The worker's side of destinations: deliver a routed event within the invocation's time, defer, call back.

**Time.** Records run one after another, and a delivery may take its destination's
timeout twice (to connect, then for the answer) plus a wait for a rate slot. A delivery
starts only if that, and a margin for the batch's completion, fits in what the Lambda
context says is left; otherwise the record is deferred (not an attempt) and comes back at
once as a fresh copy, for an invocation with time. A destination that could not fit even
in a fresh invocation is refused at start (``check``), or, when the worker's timeout is
not known, fails as an attempt instead of being deferred for ever.

**Deferrals.** When a limit has no slot, the record comes back when one may be free: the
limiter's ``seconds``, spread over the destination's interval by the record's place among
this batch's deferrals and by a random share that doubles with each earlier deferral of
the event, so the events a full destination turned away do not all return at once (full
jitter, as the retries'). Once a destination deferred one record, the batch's later
records for it are deferred without asking the limiter again.

**Result callbacks.** When an event becomes final (succeeded or dead; a duplicate or dead
delivery of one repeats it, with the same body), the worker POSTs the outcome to the
source's callback destination after the batch's writes: first inline, concurrently, with
a short timeout and no wait for a rate slot. A retryable failure (no answer, a 5xx, a
``Retry-After``, a limit) queues a **callback job** on the events queue, which the worker
retries with the queue's backoff and dead-letter queue like any event; a permanent one (a
4xx, a refused address) is logged and counted (``CallbackFailed``). A callback never
changes its event's record or outcome.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inqueue.attributes import CALLBACK_FOR, CALLBACK_JOB
from inqueue.envelope import Envelope, isoformat_ms
from inqueue.errors import Deferred, PermanentError, RetryLater
from inqueue.observability import logger
from inqueue.status import encode_result
from inqueue.worker.sqs import JOB_ATTRIBUTE, MAX_SEND_DELAY_SECONDS, Requeued

if TYPE_CHECKING:
    from inqueue.destinations import Deliverer, Destination

# What the batch's completion needs after the last delivery (its status writes and SQS calls).
DELIVERY_MARGIN_SECONDS = 2.0
# What an invocation spends before its first delivery (the claims): a timeout must leave this too.
DELIVERY_START_SECONDS = 1.0
# A callback's first try must not hold the batch: past this it is queued as a job.
CALLBACK_INLINE_TIMEOUT_SECONDS = 5.0
# How long a concurrency limit's deferral is spread over (a rate uses its interval).
LEASE_SPREAD_SECONDS = 1.0
# Earlier deferrals of an event double its random share up to 2 ** this.
_SPREAD_DOUBLINGS = 10
_JOB_FIELDS = (
    "event_id",
    "source",
    "event_type",
    "status",
    "attempts",
    "finished_at",
    "correlation_id",
    "result",
    "result_omitted",
    "reason",
)


class DeliveryTooLong(Exception):
    """The destination's delivery cannot fit in this worker's invocations at all: an attempt, not a deferral."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A routed event the app answered with a 2xx: what its record keeps."""

    destination: str
    status: int
    result: Any
    result_omitted: str | None


def delivery_seconds(destination: Destination) -> float:
    """The longest a delivery may take after its wait: connect and answer timeouts, and the batch's margin."""
    return 2 * destination.timeout + DELIVERY_MARGIN_SECONDS


def parse_job(body: str) -> dict[str, Any]:
    """A callback job's fields; ValueError when the body is not one."""
    data = json.loads(body)
    if not isinstance(data, dict) or data.get("job") != CALLBACK_JOB:
        raise ValueError("not a callback job")
    fields = {name: data.get(name) for name in _JOB_FIELDS}
    for name in ("event_id", "source", "event_type", "status", "finished_at"):
        if not isinstance(fields[name], str) or not fields[name]:
            raise ValueError(f"a callback job needs {name}")
    if isinstance(fields["attempts"], bool) or not isinstance(fields["attempts"], int):
        raise TypeError("a callback job needs attempts")
    return fields


class Forwarding:
    """The worker's deliverer and what one batch's deliveries share: the time left, the limits found full."""

    def __init__(self, deliverer: Deliverer, *, random: Callable[[], float]):
        self.deliverer = deliverer
        self.random = random
        self.processor_sources: frozenset[str] = frozenset()
        self.timeout_seconds: int | None = None  # the worker's, when known: checked at start
        self._seconds_left: Callable[[], float] | None = None
        self._at_start: float | None = None
        self._full: dict[str, tuple[float, str]] = {}  # destination -> (full until, why), this batch
        self._deferred: dict[str, int] = {}  # destination -> records deferred, this batch

    def check(self, processor_sources: Iterable[str], timeout_seconds: int | None) -> None:
        """At start: a source uses a destination or processors, and every delivery fits in the worker's timeout."""
        from inqueue.destinations import DestinationsConfigError

        config = self.deliverer.config
        config.check_exclusive(processor_sources)
        self.timeout_seconds = timeout_seconds
        if timeout_seconds is None:
            return
        used = {name for by_type in config.routes.values() for name in by_type.values()} | set(
            config.callbacks.values()
        )
        for name in sorted(used):
            need = delivery_seconds(config.destinations[name])
            if need + DELIVERY_START_SECONDS > timeout_seconds:
                raise DestinationsConfigError(
                    f"destination {name!r}: a delivery may take {need:g} s (twice its timeout and a "
                    f"{DELIVERY_MARGIN_SECONDS:g} s margin), which with {DELIVERY_START_SECONDS:g} s for the batch's "
                    f"claims does not fit in the worker's {timeout_seconds} s timeout; "
                    "lower its timeout or raise WorkerTimeout"
                )

    def start_batch(self, context: Any, processor_sources: frozenset[str]) -> None:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        self._seconds_left = (lambda: float(remaining()) / 1000) if remaining is not None else None
        self._at_start = self._seconds_left() if self._seconds_left is not None else None
        self.processor_sources = processor_sources
        self._full.clear()
        self._deferred.clear()

    def seconds_left(self) -> float | None:
        return self._seconds_left() if self._seconds_left is not None else None

    # -- deliveries -----------------------------------------------------------------------

    def route(self, envelope: Envelope) -> Destination | None:
        return self.deliverer.route(envelope, self.processor_sources)

    def deliver(self, envelope: Envelope, destination: Destination, *, attempt: int, fifo: bool) -> Delivery:
        """Deliver now, or raise ``Deferred`` (no time, no slot) or the delivery's own failure."""
        max_wait = self._max_wait(destination, fifo)
        delivered = self.deliverer.deliver(envelope, destination, attempt=attempt, max_wait=max_wait)
        return Delivery(destination.name, delivered.status, delivered.result, delivered.result_omitted)

    def notify_job(self, job: Mapping[str, Any], *, fifo: bool) -> None:
        """A queued callback job: its full timeout and wait, as a delivery has."""
        destination = self.deliverer.callback(str(job["source"]))
        if destination is None:
            return
        self.deliverer.notify(**job, max_wait=self._max_wait(destination, fifo))

    def _max_wait(self, destination: Destination, fifo: bool) -> float:
        from inqueue.destinations import DEFAULT_MAX_WAIT_SECONDS

        name = destination.name
        full = self._full.get(name)
        if full is not None:
            until, why = full
            full_for = until - self.deliverer.clock()
            if full_for > 0:
                raise Deferred(full_for, why)
        need = delivery_seconds(destination)
        left = self.seconds_left()
        if left is None:
            return DEFAULT_MAX_WAIT_SECONDS
        # Checked at start when the worker's timeout is known; otherwise judged by this invocation's time.
        if self.timeout_seconds is None and self._at_start is not None and self._at_start < need:
            raise DeliveryTooLong(
                f"destination {name!r}: a delivery may take {need:g} s and this invocation had {self._at_start:.1f} s "
                "in all; lower the destination's timeout or raise WorkerTimeout"
            )
        spare = left - need
        if spare < 0:
            raise Deferred(0, f"the invocation has {left:.1f} s left; a delivery to {name!r} may take {need:g} s")
        # On FIFO the group waits for this record anyway: better to wait here than to spend a receive.
        return spare if fifo else min(DEFAULT_MAX_WAIT_SECONDS, spare)

    def deferral_delay(self, destination: Destination | None, deferred: Deferred, earlier_deferrals: int) -> int:
        """Whole seconds until the record comes back; see the module's docstring."""
        if destination is None or deferred.seconds <= 0:
            return 0  # out of time: back at once, for an invocation that has some
        name = destination.name
        self._full.setdefault(name, (self.deliverer.clock() + deferred.seconds, str(deferred)))
        place = self._deferred.get(name, 0)
        self._deferred[name] = place + 1
        interval = destination.rate.interval if destination.rate is not None else LEASE_SPREAD_SECONDS
        share = self.random() * interval * (1 << min(earlier_deferrals, _SPREAD_DOUBLINGS))
        return math.ceil(deferred.seconds + interval * place + share)

    # -- result callbacks -----------------------------------------------------------------

    def has_callback(self, source: str) -> bool:
        return self.deliverer.callback(source) is not None

    def note(
        self,
        *,
        event_id: str,
        source: str,
        event_type: str,
        status: str,
        attempts: int,
        finished_at: str,
        correlation_id: str | None,
        result: Any = None,
        result_omitted: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """A callback's fields, the result as the record keeps it (JSON of at most 4 KiB, else why not)."""
        if result is not None:
            encoded, omitted = encode_result(result)
            if encoded is None:
                result, result_omitted = None, omitted
        return {
            "event_id": event_id,
            "source": source,
            "event_type": event_type,
            "status": status,
            "attempts": attempts,
            "finished_at": finished_at,
            "correlation_id": correlation_id,
            "result": result,
            "result_omitted": result_omitted,
            "reason": reason,
        }

    def notify_inline(self, note: Mapping[str, Any]) -> tuple[str, int | None]:
        """The first try: ("delivered" | "refused", None), or ("queue", delay) when it should be a job."""
        try:
            self.deliverer.notify(**note, max_wait=0.0, timeout=CALLBACK_INLINE_TIMEOUT_SECONDS)
        except PermanentError as exc:
            logger.error(
                "result callback refused; not retried",
                extra={"event_id": note["event_id"], "reason": exc.reason[:300]},
            )
            return "refused", None
        except (RetryLater, Deferred) as exc:
            return "queue", math.ceil(exc.seconds)
        except Exception as exc:  # noqa: BLE001 - no answer, a 5xx, a secret or limit unavailable: a job retries it
            logger.warning(
                "result callback failed; queued for retries",
                extra={"event_id": note["event_id"], "error": f"{type(exc).__name__}: {str(exc)[:300]}"},
            )
            return "queue", 0
        return "delivered", None

    def inline_fits(self) -> bool:
        left = self.seconds_left()
        return left is None or left >= 2 * CALLBACK_INLINE_TIMEOUT_SECONDS + DELIVERY_MARGIN_SECONDS

    @staticmethod
    def job(index: int, note: Mapping[str, Any], delay: int) -> Requeued:
        event_id = str(note["event_id"])
        attributes = {
            JOB_ATTRIBUTE: {"DataType": "String", "StringValue": CALLBACK_JOB},
            "source": {"DataType": "String", "StringValue": str(note["source"])},
            "type": {"DataType": "String", "StringValue": str(note["event_type"])},
            # Not event_id: an operator's redrive of a dead job must not send its (final) event back to queued.
            CALLBACK_FOR: {"DataType": "String", "StringValue": event_id},
        }
        webhook_id = f"{event_id}.{note['status']}.{note['attempts']}"
        return Requeued(
            id=f"callback-{index}",
            body=json.dumps({"job": CALLBACK_JOB, **note}, ensure_ascii=False, separators=(",", ":")),
            attributes=attributes,
            delay=min(max(delay, 0), MAX_SEND_DELAY_SECONDS),
            # Its own group: a callback that keeps failing must not hold up its event's group.
            group_id=f"callback-{event_id}"[:128],
            deduplication_id=webhook_id[:128],
        )


def finished_at(epoch_seconds: float | None, fallback: Any) -> str:
    if epoch_seconds is not None:
        return isoformat_ms(epoch_seconds)
    return str(fallback or "")
