"""The worker: route each queued envelope to the user's processor, a batch at a time.

Users register processors on a ``Router`` by source and event type::

    router = Router()

    @router.on("github", "push")
    def on_push(event: Envelope) -> dict | None: ...

A processor knows nothing of SQS, batches or retries. It:

- returns: done. The record is deleted; the event's record becomes ``succeeded`` with the
  result (when it is JSON and at most 4 KiB; otherwise ``result_omitted`` says why), and
  a duplicate delivery of the same event id gets that result back without the processor
  running again.
- raises ``RetryLater(seconds)``: tried again after that many seconds.
- raises ``PermanentError(reason)``: never tried again; the message goes to the
  dead-letter queue with the reason attached, and is not reported as a batch failure.
- raises anything else: tried again after an exponential backoff with full jitter
  (``inqueue.retry``), set with ChangeMessageVisibility; on the last attempt the record
  becomes ``dead`` and SQS moves the message to the dead-letter queue.

An event no processor matches is acknowledged and logged as ``unrouted``, because
senders such as GitHub send many types nobody asked to handle; register
``router.default`` to change that. An envelope whose ``meta`` has
``replay_bypass_idempotency: true`` (set by ``inqueue replay``) is processed again even
when it already succeeded.

On a FIFO queue the worker uses Powertools' FIFO processor with ``skip_group_on_error``:
a group stops at its first failure (the rest of that group is reported too, so order
holds) while other groups in the batch go on.

Modules: ``router`` (what processors import), ``batch`` (a batch at a time: claims,
processors, completion; ``Worker.classify`` decides each record's outcome), ``sqs``
(visibility and dead letters, in SQS batch calls).
"""

from inqueue.attributes import REPLAY_FLAG
from inqueue.worker.batch import Kind, Outcome, Worker
from inqueue.worker.router import ANY, Processor, Router
from inqueue.worker.sqs import DEAD_ATTEMPTS_ATTRIBUTE, DEAD_REASON_ATTRIBUTE, FAILED_MESSAGE_ID_ATTRIBUTE

__all__ = [
    "ANY",
    "DEAD_ATTEMPTS_ATTRIBUTE",
    "DEAD_REASON_ATTRIBUTE",
    "FAILED_MESSAGE_ID_ATTRIBUTE",
    "REPLAY_FLAG",
    "Kind",
    "Outcome",
    "Processor",
    "Router",
    "Worker",
]
