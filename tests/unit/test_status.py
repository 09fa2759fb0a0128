"""StatusStore: one record per event that only moves forward, whatever order the writes land in."""

from __future__ import annotations

from typing import Any

import pytest
from tests.factories import Clock, make_envelope
from tests.tables import STATUS_TABLE, create_status_table

from inqueue.status import RESULT_MAX_BYTES, StatusStore

T0 = 1_795_435_200.0  # 2026-11-23T12:00:00Z


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(aws: None, clock: Clock) -> StatusStore:
    return StatusStore(STATUS_TABLE, create_status_table(), ttl_seconds=3600, clock=clock)


def test_a_record_walks_queued_processing_retrying_succeeded(store: StatusStore, clock: Clock) -> None:
    # GIVEN a queued event
    assert store.queued(make_envelope())
    first = store.get("evt-1")
    assert first is not None
    assert first["status"] == "queued"
    assert (first["source"], first["type"], first["attempt"]) == ("demo", "order.created", 0)
    assert first["expires_at"] == int(T0) + 3600

    # WHEN it is tried, fails once, and succeeds on the second attempt
    clock.now += 1
    assert store.processing("evt-1", 1)
    assert store.retrying("evt-1", 1, next_try_at=T0 + 60, error=TimeoutError("crm slow"))
    retrying = store.get("evt-1")
    clock.now += 60
    assert store.processing("evt-1", 2)
    assert store.succeeded("evt-1", {"deal": 42}, attempt=2)

    # THEN each step was recorded, and the final record carries the result, not the stale retry facts
    assert retrying is not None
    assert retrying["status"] == "retrying"
    assert retrying["next_try_at"] == "2026-11-23T12:01:00.000Z"
    assert retrying["last_error"] == "TimeoutError: crm slow"
    final = store.get("evt-1")
    assert final is not None
    assert final["status"] == "succeeded"
    assert final["result"] == {"deal": 42}
    assert final["attempt"] == 2
    assert "next_try_at" not in final
    assert final["updated_at"] == "2026-11-23T12:01:01.000Z"
    assert final["expires_at"] == int(T0) + 61 + 3600


def test_queued_never_overwrites_what_the_worker_already_wrote(store: StatusStore) -> None:
    # GIVEN a worker faster than the ingress's own status write
    store.processing("evt-1", 1, source="demo", type="order.created")
    store.succeeded("evt-1", {"ok": True})

    # WHEN the late queued write lands
    written = store.queued(make_envelope())

    # THEN it is refused and the record stays succeeded
    assert written is False
    record = store.get("evt-1")
    assert record is not None
    assert (record["status"], record["source"]) == ("succeeded", "demo")


@pytest.mark.parametrize("late", ["processing", "retrying", "dead"])
def test_a_late_write_never_regresses_a_success(store: StatusStore, late: str) -> None:
    store.queued(make_envelope())
    store.succeeded("evt-1", {"n": 1})

    written = {
        "processing": lambda: store.processing("evt-1", 1),
        "retrying": lambda: store.retrying("evt-1", 1, T0 + 5, "boom"),
        "dead": lambda: store.dead("evt-1", "gave up", 5),
    }[late]()

    assert written is False
    record = store.get("evt-1")
    assert record is not None
    assert record["status"] == "succeeded"


def test_a_late_processing_from_the_same_life_does_not_revive_a_dead_event(store: StatusStore, clock: Clock) -> None:
    # GIVEN an event declared dead at T0+100, whose message was first received at T0
    store.queued(make_envelope())
    clock.now = T0 + 100
    store.dead("evt-1", "permanent: unknown deal", 1)

    # WHEN a straggler of that same message writes processing
    clock.now = T0 + 101
    written = store.processing("evt-1", 2, since=T0)

    # THEN the record stays dead
    assert written is False
    record = store.get("evt-1")
    assert record is not None
    assert (record["status"], record["reason"]) == ("dead", "permanent: unknown deal")


def test_a_redriven_or_replayed_event_comes_back_to_life(store: StatusStore, clock: Clock) -> None:
    store.queued(make_envelope())
    clock.now = T0 + 100
    store.dead("evt-1", "gave up after 5 attempts", 5)

    # A redriven message is first received after the event died: a new life.
    clock.now = T0 + 500
    assert store.processing("evt-1", 1, since=T0 + 400)
    record = store.get("evt-1")
    assert record is not None
    assert record["status"] == "processing"
    assert "reason" not in record

    # A replay reopens even a dead record whatever the timing.
    store.dead("evt-1", "again", 1)
    assert store.processing("evt-1", 1, reopen=True)


def test_success_after_dead_is_recorded(store: StatusStore) -> None:
    store.dead("evt-1", "gave up", 5)

    assert store.succeeded("evt-1", None)
    record = store.get("evt-1")
    assert record is not None
    assert record["status"] == "succeeded"


def test_a_worker_write_creates_the_record_when_the_ingress_write_was_lost(store: StatusStore) -> None:
    assert store.processing("evt-9", 1, source="demo", type="order.created")

    record = store.get("evt-9")
    assert record is not None
    assert (record["status"], record["source"], record["type"], record["attempt"]) == (
        "processing",
        "demo",
        "order.created",
        1,
    )


@pytest.mark.parametrize(
    ("result", "stored", "omitted"),
    [
        ({"a": [1, 2.5, "x"]}, {"a": [1, 2.5, "x"]}, None),
        ({"blob": "x" * RESULT_MAX_BYTES}, None, "too_large"),
        ({"when": object()}, None, "not_json"),
    ],
)
def test_results_are_kept_only_when_small_json(store: StatusStore, result: Any, stored: Any, omitted: Any) -> None:
    store.succeeded("evt-1", result)

    record = store.get("evt-1")
    assert record is not None
    assert record.get("result") == stored
    assert record.get("result_omitted") == omitted


def test_an_unknown_event_has_no_record(store: StatusStore) -> None:
    assert store.get("nope") is None


def test_the_client_is_built_only_when_first_needed(aws: None) -> None:
    # GIVEN a store with no client
    create_status_table()
    store = StatusStore(STATUS_TABLE)
    assert store._client is None

    # WHEN it is first used, THEN it builds one that works
    assert store.get("nope") is None
    assert store._client is not None
