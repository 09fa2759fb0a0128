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
