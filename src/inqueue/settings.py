"""Settings, read once from the environment into typed objects that fail fast.

A resource name never has a silent default: a function deployed without its queue URL
fails at start-up with the variable's name, not later with a confusing AWS error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# SQS's ceiling for one message since January 2026; the queue's MaximumMessageSize matches it.
SQS_MAX_MESSAGE_BYTES = 1024 * 1024


class SettingsError(RuntimeError):
    pass


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is required and not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _required_int(env: Mapping[str, str], name: str, low: int, high: int) -> int:
    _required(env, name)
    return _int(env, name, 0, low, high)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise SettingsError(f"{name} must be true or false, not {raw!r}")
    return raw == "true"


@dataclass(frozen=True, slots=True)
class IngressSettings:
    """``queued_status``: write the ``queued`` record at accept time (concurrently with SendMessage).

    Off, the first record an event gets is the worker's claim: a caller asking right after
    the 202 sees 404 until then, and an event that waits in the queue has no record.
    """

    queue_url: str
    sources_json: str
    max_body_bytes: int
    retry_after_seconds: int
    secrets_max_age: int
    queued_status: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngressSettings:
        env = os.environ if env is None else env
        return cls(
            queue_url=_required(env, "INQUEUE_QUEUE_URL"),
            sources_json=_required(env, "INQUEUE_SOURCES"),
            max_body_bytes=_int(env, "INQUEUE_MAX_BODY_BYTES", 1_000_000, 1, SQS_MAX_MESSAGE_BYTES),
            retry_after_seconds=_int(env, "INQUEUE_RETRY_AFTER_SECONDS", 5, 1, 3600),
            secrets_max_age=_int(env, "INQUEUE_SECRETS_MAX_AGE", 300, 0, 86_400),
            queued_status=_flag(env, "INQUEUE_QUEUED_STATUS", True),
        )


# SQS refuses a visibility timeout over 12 h; the backoff cap can be no longer.
SQS_MAX_VISIBILITY_SECONDS = 43_200
# The largest envelope sent inline; bigger bodies go to the payload bucket (claim check).
DEFAULT_INLINE_LIMIT_BYTES = 256 * 1024
# Idempotency records must outlive every redelivery: 72 h covers the queue's retention of
# 4 days' worth of retries in practice and any sender's retry window we know of.
MIN_IDEMPOTENCY_SECONDS = 72 * 3600


def _optional(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


@dataclass(frozen=True, slots=True)
class GuaranteeSettings:
    """What both functions share for the event records and large payloads; every resource is optional.

    Without ``INQUEUE_STATUS_TABLE`` there is no record per event: no status, and no
    idempotency (the worker runs every delivery). Without ``INQUEUE_PAYLOAD_BUCKET``
    envelopes are sent inline up to the queue's 1 MiB limit. A record lives
    ``record_ttl_seconds`` after its last write: the status retention, and never less than
    the idempotency window, so that a duplicate of a completed event finds its result.
    """

    status_table: str | None
    status_ttl_seconds: int
    idempotency_ttl_seconds: int
    payload_bucket: str | None
    inline_limit_bytes: int
    # The recent-events index's shards (0: records are not listed; the console then finds events by id only).
    index_shards: int = 4
    # The ingress keeps each envelope (the console's Replay of any event); opt-in: a write per event.
    envelope_archive: bool = False

    @property
    def record_ttl_seconds(self) -> int:
        return max(self.status_ttl_seconds, self.idempotency_ttl_seconds)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GuaranteeSettings:
        env = os.environ if env is None else env
        return cls(
            status_table=_optional(env, "INQUEUE_STATUS_TABLE"),
            status_ttl_seconds=_int(env, "INQUEUE_STATUS_TTL_SECONDS", 7 * 86_400, 3600, 366 * 86_400),
            idempotency_ttl_seconds=_int(
                env, "INQUEUE_IDEMPOTENCY_TTL_SECONDS", MIN_IDEMPOTENCY_SECONDS, MIN_IDEMPOTENCY_SECONDS, 366 * 86_400
            ),
            payload_bucket=_optional(env, "INQUEUE_PAYLOAD_BUCKET"),
            inline_limit_bytes=_int(
                env, "INQUEUE_INLINE_LIMIT_BYTES", DEFAULT_INLINE_LIMIT_BYTES, 1024, SQS_MAX_MESSAGE_BYTES
            ),
            index_shards=_int(env, "INQUEUE_EVENT_INDEX_SHARDS", 4, 0, 64),
            envelope_archive=_flag(env, "INQUEUE_ENVELOPE_ARCHIVE", False),
        )


# AWS calls a batch has in flight at once (claims, completions, SQS batch calls), one thread and one
# pooled connection each: a batch of n records takes ceil(n / this) waves per round.
DEFAULT_CALLS_IN_FLIGHT = 16


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The worker's retry policy and the resources behind its guarantees.

    The queue URL, the dead-letter queue URL and ``max_receive_count`` are required: the
    template sets them from the same resources and parameter as the queue's redrive policy,
    so the worker never has to look them up.
    """

    guarantees: GuaranteeSettings
    retry_base_seconds: int
    retry_max_seconds: int
    max_receive_count: int
    queue_url: str
    dlq_url: str
    calls_in_flight: int = DEFAULT_CALLS_IN_FLIGHT
    # The function's Timeout (WorkerTimeout): a destination whose delivery cannot fit in it is refused at start.
    timeout_seconds: int | None = None

    @property
    def idempotency_ttl_seconds(self) -> int:
        return self.guarantees.idempotency_ttl_seconds

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if env is None else env
        base = _int(env, "INQUEUE_RETRY_BASE_SECONDS", 10, 1, SQS_MAX_VISIBILITY_SECONDS)
        cap = _int(env, "INQUEUE_RETRY_MAX_SECONDS", 3600, 1, SQS_MAX_VISIBILITY_SECONDS)
        if cap < base:
            raise SettingsError(
                f"INQUEUE_RETRY_MAX_SECONDS ({cap}) must not be below INQUEUE_RETRY_BASE_SECONDS ({base})"
            )
        return cls(
            guarantees=GuaranteeSettings.from_env(env),
            retry_base_seconds=base,
            retry_max_seconds=cap,
            max_receive_count=_required_int(env, "INQUEUE_MAX_RECEIVE_COUNT", 1, 1000),
            queue_url=_required(env, "INQUEUE_QUEUE_URL"),
            dlq_url=_required(env, "INQUEUE_DLQ_URL"),
            calls_in_flight=_int(env, "INQUEUE_CALLS_IN_FLIGHT", DEFAULT_CALLS_IN_FLIGHT, 1, 64),
            timeout_seconds=_int(env, "INQUEUE_WORKER_TIMEOUT_SECONDS", 0, 1, 900) or None,
        )
