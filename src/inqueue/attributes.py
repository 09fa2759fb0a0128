"""Names on a queued message that more than one part reads: one home for them.

The worker writes the dead-letter attributes and reads the replay flag; the operator
tools (``inqueue_ops``) read the first and write the second.
"""

from __future__ import annotations

# Message attributes the worker adds to a dead-letter copy (SQS allows 10 per message).
DEAD_REASON = "dead_reason"
DEAD_ATTEMPTS = "dead_attempts"
FAILED_MESSAGE_ID = "failed_message_id"
# A message attribute marking a replay, for operators reading the queue.
REPLAY = "replay"
# On a deferred event's fresh copy (the worker's): the real attempts made before it, since SQS's receive
# count starts again with each copy and a deferral is not an attempt.
ATTEMPTS = "inqueue_attempts"
# On a message that is a job of the worker's own, not an event; its value says which (CALLBACK_JOB).
JOB = "inqueue_job"
CALLBACK_JOB = "callback"
# On a callback job: the event whose outcome it carries.
CALLBACK_FOR = "callback_for"
# Attributes a redriven or replayed message starts without: they describe the old delivery.
DEAD_LETTER_ATTRIBUTES = frozenset({DEAD_REASON, DEAD_ATTEMPTS, FAILED_MESSAGE_ID, REPLAY, ATTEMPTS})

# The envelope ``meta`` flag that makes the worker run the processor again despite idempotency.
REPLAY_FLAG = "replay_bypass_idempotency"
