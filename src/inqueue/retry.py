"""When to try a failed record again: exponential backoff with full jitter, from the receive count.

Attempt ``n`` (SQS's ``ApproximateReceiveCount``) waits a uniformly random whole number
of seconds in ``[0, min(cap, base * 2 ** (n - 1))]`` ("full jitter": retries of many
events that failed together spread out instead of stampeding the API that failed them).
A processor's ``RetryLater(seconds)`` replaces the random choice: the API said when to
come back, so the configured cap does not shorten it. Every delay is at most
``MAX_DELAY_SECONDS``, because SQS refuses a visibility timeout that ends more than
12 h after the receive, and the receive is up to one Lambda timeout (15 min at most)
old when the worker changes it.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field

from inqueue.settings import SQS_MAX_VISIBILITY_SECONDS

MAX_LAMBDA_TIMEOUT_SECONDS = 900
MAX_DELAY_SECONDS = SQS_MAX_VISIBILITY_SECONDS - MAX_LAMBDA_TIMEOUT_SECONDS


@dataclass(frozen=True, slots=True)
class Backoff:
    base_seconds: int = 10
    max_seconds: int = 3600
    random: Callable[[], float] = field(default=_random.random, repr=False)

    def ceiling(self, receive_count: int) -> int:
        """The longest wait attempt ``receive_count`` may draw."""
        exponent = min(max(receive_count, 1) - 1, 62)  # 2 ** 62 s is past any cap; keeps the number small
        return min(self.base_seconds * int(2**exponent), self.max_seconds, MAX_DELAY_SECONDS)

    def delay(self, receive_count: int, requested: float | None = None) -> int:
        """Whole seconds until the next attempt: ``requested`` when given (a RetryLater), else jittered."""
        if requested is not None:
            return min(math.ceil(max(requested, 0.0)), MAX_DELAY_SECONDS)
        return math.floor(self.random() * (self.ceiling(receive_count) + 1))
