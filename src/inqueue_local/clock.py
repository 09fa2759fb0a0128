"""One injectable clock for every deadline the runner owns.

The batching window, the Lambda timeout and remaining time, and poll back-off all read
it; tests step a ``FakeClock`` instead of sleeping. Visibility timeouts are the backend's.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Wait, returning early when ``stop`` is set."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        if seconds <= 0:
            return
        if stop is None:
            time.sleep(seconds)
        else:
            stop.wait(seconds)


class FakeClock:
    """A clock that moves only when told to; ``sleep`` moves it."""

    def __init__(self, start: float = 1_795_435_200.0):
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        self.advance(max(seconds, 0.0))
