"""Backoff: exponential, fully jittered, bounded by the cap and by SQS's 12 h visibility limit."""

from __future__ import annotations

import pytest

from inqueue.retry import MAX_DELAY_SECONDS, Backoff
from inqueue.settings import SettingsError, WorkerSettings


def test_the_window_doubles_per_attempt_until_the_cap() -> None:
    backoff = Backoff(base_seconds=10, max_seconds=300)

    assert [backoff.ceiling(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999_999])
@pytest.mark.parametrize("attempt", [1, 2, 5, 30, 1000])
def test_every_delay_lies_in_zero_to_the_window(draw: float, attempt: int) -> None:
    # GIVEN a fixed random draw, WHEN a delay is computed, THEN it is inside [0, ceiling] and scales with the draw
    backoff = Backoff(base_seconds=10, max_seconds=3600, random=lambda: draw)

    delay = backoff.delay(attempt)

    assert 0 <= delay <= backoff.ceiling(attempt)
    assert delay == int(draw * (backoff.ceiling(attempt) + 1))


def test_jitter_spreads_retries_of_events_that_failed_together() -> None:
    draws = iter([0.1, 0.5, 0.9])
    backoff = Backoff(base_seconds=10, max_seconds=3600, random=lambda: next(draws))

    assert [backoff.delay(4) for _ in range(3)] == [8, 40, 72]


def test_no_delay_reaches_the_sqs_visibility_limit() -> None:
    backoff = Backoff(base_seconds=43_200, max_seconds=43_200, random=lambda: 0.999_999)

    assert backoff.delay(1) <= MAX_DELAY_SECONDS < 43_200
    assert backoff.delay(1, requested=10**9) == MAX_DELAY_SECONDS


def test_a_requested_delay_is_honoured_as_asked() -> None:
    backoff = Backoff(base_seconds=10, max_seconds=60, random=lambda: 0.0)

    assert backoff.delay(1, requested=120) == 120
    assert backoff.delay(1, requested=0.2) == 1
    assert backoff.delay(1, requested=-5) == 0


REQUIRED = {"INQUEUE_QUEUE_URL": "q", "INQUEUE_DLQ_URL": "d", "INQUEUE_MAX_RECEIVE_COUNT": "5"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INQUEUE_RETRY_MAX_SECONDS": "43201"}, "between 1 and 43200"),
        ({"INQUEUE_RETRY_BASE_SECONDS": "100", "INQUEUE_RETRY_MAX_SECONDS": "50"}, "must not be below"),
        ({"INQUEUE_IDEMPOTENCY_TTL_SECONDS": "3600"}, "between 259200"),
        ({"INQUEUE_INLINE_LIMIT_BYTES": "2000000"}, "between 1024 and 1048576"),
        ({"INQUEUE_MAX_RECEIVE_COUNT": "0"}, "between 1 and 1000"),
        ({"INQUEUE_CALLS_IN_FLIGHT": "65"}, "between 1 and 64"),
    ],
)
def test_settings_refuse_limits_aws_would_refuse(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        WorkerSettings.from_env({**REQUIRED, **env})


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_the_worker_needs_its_queues_and_receive_count_from_its_settings(missing: str) -> None:
    # The template always sets them; without one the worker fails at start-up, naming it.
    with pytest.raises(SettingsError, match=missing):
        WorkerSettings.from_env({name: value for name, value in REQUIRED.items() if name != missing})


def test_settings_defaults_keep_records_at_least_72_hours() -> None:
    settings = WorkerSettings.from_env({**REQUIRED, "INQUEUE_STATUS_TTL_SECONDS": "3600"})

    assert settings.idempotency_ttl_seconds >= 72 * 3600
    assert settings.guarantees.record_ttl_seconds == 72 * 3600  # status kept 1 h, the record still 72 h
    assert (settings.retry_base_seconds, settings.retry_max_seconds) == (10, 3600)
    assert settings.max_receive_count == 5
    assert settings.guarantees.inline_limit_bytes == 256 * 1024
