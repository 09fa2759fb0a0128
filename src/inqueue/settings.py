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


@dataclass(frozen=True, slots=True)
class IngressSettings:
    queue_url: str
    sources_json: str
    max_body_bytes: int
    retry_after_seconds: int
    secrets_max_age: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngressSettings:
        env = os.environ if env is None else env
        return cls(
            queue_url=_required(env, "INQUEUE_QUEUE_URL"),
            sources_json=_required(env, "INQUEUE_SOURCES"),
            max_body_bytes=_int(env, "INQUEUE_MAX_BODY_BYTES", 1_000_000, 1, SQS_MAX_MESSAGE_BYTES),
            retry_after_seconds=_int(env, "INQUEUE_RETRY_AFTER_SECONDS", 5, 1, 3600),
            secrets_max_age=_int(env, "INQUEUE_SECRETS_MAX_AGE", 300, 0, 86_400),
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
    """What both functions may share for status and large payloads; every resource is optional.

    Without ``INQUEUE_STATUS_TABLE`` nothing writes status; without ``INQUEUE_PAYLOAD_BUCKET``
    envelopes are sent inline up to the queue's 1 MiB limit.
    """

    status_table: str | None
    status_ttl_seconds: int
    payload_bucket: str | None
    inline_limit_bytes: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GuaranteeSettings:
        env = os.environ if env is None else env
        return cls(
            status_table=_optional(env, "INQUEUE_STATUS_TABLE"),
            status_ttl_seconds=_int(env, "INQUEUE_STATUS_TTL_SECONDS", 7 * 86_400, 3600, 366 * 86_400),
            payload_bucket=_optional(env, "INQUEUE_PAYLOAD_BUCKET"),
            inline_limit_bytes=_int(
                env, "INQUEUE_INLINE_LIMIT_BYTES", DEFAULT_INLINE_LIMIT_BYTES, 1024, SQS_MAX_MESSAGE_BYTES
            ),
        )


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The worker's retry policy and the resources behind its guarantees.

    ``max_receive_count`` must equal the queue's redrive policy (the template passes the
    same parameter to both); when unset the worker reads it from the queue once.
    ``dlq_url`` likewise falls back to the queue's redrive target.
    """

    guarantees: GuaranteeSettings
    idempotency_table: str | None
    idempotency_ttl_seconds: int
    retry_base_seconds: int
    retry_max_seconds: int
    max_receive_count: int | None
    queue_url: str | None
    dlq_url: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if env is None else env
        base = _int(env, "INQUEUE_RETRY_BASE_SECONDS", 10, 1, SQS_MAX_VISIBILITY_SECONDS)
        cap = _int(env, "INQUEUE_RETRY_MAX_SECONDS", 3600, 1, SQS_MAX_VISIBILITY_SECONDS)
        if cap < base:
            raise SettingsError(
                f"INQUEUE_RETRY_MAX_SECONDS ({cap}) must not be below INQUEUE_RETRY_BASE_SECONDS ({base})"
            )
        receives = _int(env, "INQUEUE_MAX_RECEIVE_COUNT", 0, 0, 1000)
        return cls(
            guarantees=GuaranteeSettings.from_env(env),
            idempotency_table=_optional(env, "INQUEUE_IDEMPOTENCY_TABLE"),
            idempotency_ttl_seconds=_int(
                env, "INQUEUE_IDEMPOTENCY_TTL_SECONDS", MIN_IDEMPOTENCY_SECONDS, MIN_IDEMPOTENCY_SECONDS, 366 * 86_400
            ),
            retry_base_seconds=base,
            retry_max_seconds=cap,
            max_receive_count=receives or None,
            queue_url=_optional(env, "INQUEUE_QUEUE_URL"),
            dlq_url=_optional(env, "INQUEUE_DLQ_URL"),
        )
