"""Long operations (redrive, purge) run in a thread; the page follows their progress and reads their count.

The operations are the operator library's (``inqueue_ops.dlq``): a job passes its progress
callback and keeps the ``Outcome``. One dead-letter job runs at a time: two redrives of one
DLQ would receive each other's messages.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inqueue_ops.dlq import Outcome, Progress, ProgressCallback

RUNNING, DONE, FAILED = "running", "done", "failed"
KEPT = 50  # finished jobs remembered, for a page that asks late


class Busy(RuntimeError):
    """Another job on the same queue is running."""


@dataclass(slots=True)
class Job:
    id: str
    action: str  # "redrive", "purge"
    state: str = RUNNING
    done: int = 0
    total: int | None = None
    failed: int = 0
    summary: str = ""
    outcome: dict[str, Any] | None = None
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "failed": self.failed,
            "summary": self.summary,
            "outcome": self.outcome,
            "error": self.error,
        }


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, action: str, work: Callable[[ProgressCallback], Outcome]) -> Job:
        with self._lock:
            if any(job.state == RUNNING for job in self._jobs.values()):
                raise Busy("a redrive or purge of the dead-letter queue is running; wait for it to end")
            job = Job(secrets.token_hex(8), action)
            self._jobs[job.id] = job
            finished = [j for j in self._jobs.values() if j.state != RUNNING]
            for old in finished[: max(len(finished) - KEPT, 0)]:
                del self._jobs[old.id]

        def progress(update: Progress) -> None:
            job.done, job.total, job.failed = update.done, update.total, update.failed

        def run() -> None:
            try:
                outcome = work(progress)
            except Exception as exc:  # noqa: BLE001 - shown on the page; the operator decides what next
                job.error = f"{type(exc).__name__}: {exc}"
                job.summary = job.error
                job.state = FAILED
            else:
                job.done, job.failed = outcome.done, outcome.failed
                job.summary = outcome.summary()
                job.outcome = outcome.as_dict()
                job.state = DONE if outcome.ok else FAILED
            job.finished_at = time.time()

        threading.Thread(target=run, name=f"console-{action}-{job.id}", daemon=True).start()
        return job

    def running(self) -> bool:
        with self._lock:
            return any(job.state == RUNNING for job in self._jobs.values())

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)
