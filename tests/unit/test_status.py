"""The one record per event on moto's DynamoDB: status and idempotency in one item, forward only, whatever the order.

Races are played out by ordering the writes by hand: each test is one interleaving of two
writers, so it fails the same way every time it fails.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.factories import Clock, make_envelope
from tests.tables import STATUS_TABLE, create_status_table

from inqueue.envelope import Envelope
from inqueue.status import COMPLETED, DEAD, HISTORY_MAX, IN_PROGRESS, RESULT_MAX_BYTES, Claim, StatusStore

T0 = 1_795_435_200.0  # 2026-11-23T12:00:00Z
DEADLINE_MS = int(T0 * 1000) + 30_000  # the invocation's 30 s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(aws: None, clock: Clock) -> StatusStore:
    return StatusStore(STATUS_TABLE, create_status_table(), ttl_seconds=3600, clock=clock)


def envelope(event_id: str = "evt-1", **fields: Any) -> Envelope:
    return make_envelope(event_id, received_at="2026-11-23T11:59:59.500Z", correlation_id="corr-7", **fields)


def claim(
    store: StatusStore,
    item: Envelope | None = None,
    attempt: int = 1,
    token: str = "req-1/m1",  # noqa: S107 - a lock id, not a secret
    **options: Any,
) -> Claim:
    options.setdefault("deadline_ms", int(store.clock() * 1000) + 30_000)
    return store.claim(item or envelope(), attempt=attempt, token=token, **options)


def record(store: StatusStore, event_id: str = "evt-1") -> dict[str, Any]:
    found = store.get(event_id)
    assert found is not None
    return found


def steps(found: dict[str, Any]) -> list[tuple[str, ...]]:
    return [(entry["status"], *([entry["reason"]] if "reason" in entry else [])) for entry in found["history"]]


def test_an_event_walks_queued_processing_retrying_succeeded_with_its_timeline(
    store: StatusStore, clock: Clock
) -> None:
    # GIVEN a queued event
    assert store.queued(envelope())
    queued = record(store)
    assert (queued["status"], queued["attempt"], queued["source"], queued["type"]) == (
        "queued",
        0,
        "demo",
        "order.created",
    )
    assert queued["expires_at"] == int(T0) + 3600

    # WHEN its first attempt fails and its second succeeds
    clock.now += 1
    first = claim(store)
    assert first.taken
    assert store.retrying(first, error=TimeoutError("crm slow"), next_try_at=T0 + 60)
    retrying = record(store)
    clock.now = T0 + 61
    second = claim(store, attempt=2, token="req-2/m1")
    assert second.taken
    assert store.succeeded("evt-1", {"deal": 42}, claim=second)

    # THEN each step is in the record's history, and the final record holds the result, not the stale retry facts
    assert (retrying["status"], retrying["next_try_at"], retrying["last_error"]) == (
        "retrying",
        "2026-11-23T12:01:00.000Z",
        "TimeoutError: crm slow",
    )
    assert "lock_expires_at" not in retrying
    final = record(store)
    assert (final["status"], final["attempt"], final["result"]) == ("succeeded", 2, {"deal": 42})
    assert not {"next_try_at", "lock_expires_at", "lock_id"} & set(final)
    assert final["updated_at"] == final["completed_at"] == "2026-11-23T12:01:01.000Z"
    assert final["expires_at"] == int(T0) + 61 + 3600
    assert final["history"] == [
        {"at": "2026-11-23T12:00:00.000Z", "status": "queued"},
        {"at": "2026-11-23T12:00:01.000Z", "status": "processing", "attempt": 1},
        {
            "at": "2026-11-23T12:00:01.000Z",
            "status": "retrying",
            "attempt": 1,
            "error": "TimeoutError: crm slow",
            "next_try_at": "2026-11-23T12:01:00.000Z",
        },
        {"at": "2026-11-23T12:01:01.000Z", "status": "processing", "attempt": 2},
        {"at": "2026-11-23T12:01:01.000Z", "status": "succeeded", "attempt": 2},
    ]


@pytest.mark.parametrize("first", ["ingress", "worker"])
def test_the_ingress_and_the_claim_race_and_no_field_is_lost(store: StatusStore, first: str) -> None:
    # GIVEN the ingress's queued write and the worker's claim, landing in either order
    writes = {"ingress": lambda: store.queued(envelope()), "worker": lambda: claim(store)}
    other = "worker" if first == "ingress" else "ingress"

    # WHEN both land
    writes[first]()
    writes[other]()

    # THEN the record is the worker's (processing), with every field the ingress knew, and one queued entry
    found = record(store)
    assert found["status"] == "processing"
    assert (found["received_at"], found["correlation_id"], found["source"], found["type"]) == (
        "2026-11-23T11:59:59.500Z",
        "corr-7",
        "demo",
        "order.created",
    )
    assert steps(found) == [("queued",), ("processing",)]


def test_a_claim_that_creates_the_record_starts_its_timeline_at_the_envelopes_receipt(store: StatusStore) -> None:
    claim(store)

    assert record(store)["history"][0] == {"at": "2026-11-23T11:59:59.500Z", "status": "queued"}


def test_two_workers_claiming_one_event_get_one_lock(store: StatusStore) -> None:
    # GIVEN one worker holding the event (an SQS duplicate delivered to a second worker at once)
    mine = claim(store, token="req-1/m1")

    # WHEN the second worker claims it
    theirs = claim(store, token="req-2/m1")

    # THEN it is refused as in progress, and learns it from the same call
    assert mine.taken
    assert not theirs.taken
    assert theirs.held == IN_PROGRESS
    assert record(store)["lock_id"] == "req-1/m1"


def test_an_expired_lock_is_taken_by_the_next_delivery(store: StatusStore, clock: Clock) -> None:
    # GIVEN an attempt that died holding its lock (30 s: its invocation's deadline)
    claim(store, token="req-1/m1")

    # WHEN the event comes back 10 s later, and again after the deadline
    clock.now = T0 + 10
    early = claim(store, attempt=2, token="req-2/m1")
    clock.now = T0 + 31
    late = claim(store, attempt=3, token="req-3/m1")

    # THEN the lock held it off until it expired, then the next delivery took it
    assert (early.taken, early.held) == (False, IN_PROGRESS)
    assert late.taken
    assert (record(store)["lock_id"], record(store)["attempt"]) == ("req-3/m1", 3)


def test_a_completed_event_returns_its_stored_result_in_the_refused_claim(store: StatusStore) -> None:
    first = claim(store)
    store.succeeded("evt-1", {"invoice": "INV-1"}, claim=first)

    duplicate = claim(store, attempt=1, token="req-9/m2")

    assert (duplicate.taken, duplicate.held) == (False, COMPLETED)
    assert duplicate.stored_result() == ({"invoice": "INV-1"}, None)
    assert record(store)["status"] == "succeeded"


def test_a_failed_attempt_releases_only_its_own_lock(store: StatusStore, clock: Clock) -> None:
    # GIVEN a stale attempt whose lock expired, and the next delivery holding the event now
    stale = claim(store, token="req-1/m1")
    clock.now = T0 + 31
    current = claim(store, attempt=2, token="req-2/m1")

    # WHEN the stale attempt's release lands late
    released = store.retrying(stale, error="late failure", next_try_at=T0 + 40)

    # THEN it is refused: the current attempt keeps its lock and its status
    assert current.taken
    assert released is False
    found = record(store)
    assert (found["status"], found["lock_id"]) == ("processing", "req-2/m1")


@pytest.mark.parametrize("late", ["retrying", "dead", "claim", "queued"])
def test_a_late_write_never_moves_a_completed_event_backwards(store: StatusStore, late: str) -> None:
    # GIVEN an event that succeeded, with a stale claim of an earlier attempt still around
    stale = claim(store, token="req-1/m1")
    done = Claim(stale.event_id, True, "req-2/m1", 2, None, {}, stale.history)
    store.succeeded("evt-1", {"n": 1}, claim=done)

    # WHEN a late writer lands
    written = {
        "retrying": lambda: store.retrying(stale, error="boom"),
        "dead": lambda: store.dead("evt-1", "gave up", 5),
        "claim": lambda: claim(store, attempt=3, token="req-3/m1").taken,
        "queued": lambda: store.queued(envelope()),
    }[late]()

    # THEN it is refused and the record stays succeeded with its result
    assert written is False
    found = record(store)
    assert (found["status"], found["result"]) == ("succeeded", {"n": 1})


def test_a_straggler_of_the_same_message_life_does_not_revive_a_dead_event(store: StatusStore, clock: Clock) -> None:
    # GIVEN an event declared dead at T0+100, whose message was first received at T0
    first = claim(store)
    clock.now = T0 + 100
    store.dead("evt-1", "permanent: unknown deal", claim=first)

    # WHEN a straggler of that same message claims it
    clock.now = T0 + 101
    straggler = claim(store, attempt=2, token="req-2/m1", since=T0)

    # THEN it is refused as dead, and the record keeps its reason
    assert (straggler.taken, straggler.held) == (False, DEAD)
    found = record(store)
    assert (found["status"], found["reason"]) == ("dead", "permanent: unknown deal")


def test_a_new_life_or_a_replay_claims_a_dead_event(store: StatusStore, clock: Clock) -> None:
    first = claim(store)
    clock.now = T0 + 100
    store.dead("evt-1", "gave up after 5 attempts", claim=first)

    # A resent or redriven message is first received after the event died: a new life.
    clock.now = T0 + 500
    renewed = claim(store, token="req-2/m2", since=T0 + 400)
    assert renewed.taken
    assert "reason" not in record(store)

    # A replay takes a dead event whatever the timing.
    store.dead("evt-1", "again", claim=renewed)
    assert claim(store, token="req-3/m3", since=T0, bypass=True).taken


def test_a_replay_that_bypasses_idempotency_runs_a_completed_event_again(store: StatusStore) -> None:
    first = claim(store)
    store.succeeded("evt-1", {"n": 1}, claim=first)

    replay = claim(store, token="req-2/m2", bypass=True)

    assert replay.taken
    found = record(store)
    assert found["status"] == "processing"
    assert "completed_at" not in found
    assert "result" not in found


def test_an_item_past_its_expiry_that_ttl_has_not_deleted_is_claimed_as_new(store: StatusStore, clock: Clock) -> None:
    first = claim(store)
    store.succeeded("evt-1", {"n": 1}, claim=first)

    clock.now = T0 + 3601  # past expires_at; DynamoDB's TTL deletes within days, not at once
    again = claim(store, token="req-2/m2")

    # AND when that new attempt fails, the old life's result is gone: the next delivery runs, not a duplicate
    assert again.taken
    store.retrying(again, error="boom")
    assert not {"completed_at", "result"} & set(record(store))
    assert claim(store, token="req-3/m3").taken


def test_a_redrive_puts_the_event_back_to_queued_and_keeps_a_completed_result(store: StatusStore) -> None:
    # GIVEN a completed event that an operator replays without bypassing idempotency
    first = claim(store)
    store.succeeded("evt-1", {"n": 1}, claim=first)

    # WHEN it is redriven and delivered again
    assert store.redriven("evt-1")
    queued = record(store)
    duplicate = claim(store, token="req-2/m2")
    assert store.duplicate(duplicate)

    # THEN it showed queued (attempt 0), was a duplicate (the stored result), and is succeeded again
    assert (queued["status"], queued["attempt"]) == ("queued", 0)
    assert duplicate.held == COMPLETED
    found = record(store)
    assert (found["status"], found["result"]) == ("succeeded", {"n": 1})
    assert steps(found)[-2:] == [("queued", "redriven"), ("succeeded", "duplicate")]


def test_a_redriven_dead_event_is_claimed_by_its_next_delivery(store: StatusStore) -> None:
    first = claim(store)
    store.dead("evt-1", "gave up", claim=first)

    store.redriven("evt-1")

    assert claim(store, token="req-2/m2", since=None).taken


def test_a_skipped_claim_goes_back_to_what_it_was(store: StatusStore) -> None:
    store.queued(envelope())
    taken = claim(store)

    assert store.skipped(taken)

    found = record(store)
    assert (found["status"], found["attempt"]) == ("queued", 0)
    assert "lock_expires_at" not in found
    assert steps(found)[-1] == ("queued", "skipped")


def test_a_queued_record_is_withdrawn_only_while_nothing_else_touched_it(store: StatusStore) -> None:
    store.queued(envelope("evt-1"))
    store.queued(envelope("evt-2"))
    claim(store, envelope("evt-2"))

    assert store.withdraw_queued("evt-1") is True
    assert store.withdraw_queued("evt-2") is False
    assert store.get("evt-1") is None
    assert record(store, "evt-2")["status"] == "processing"


def test_the_history_stays_within_its_bound_keeping_its_first_entry(store: StatusStore, clock: Clock) -> None:
    # GIVEN an event retried far more often than the bound (a big maxReceiveCount)
    store.queued(envelope())
    for attempt in range(1, 30):
        clock.now += 1
        taken = claim(store, attempt=attempt, token=f"req-{attempt}/m1")
        assert taken.taken
        store.retrying(taken, error=f"failure {attempt}")

    # THEN the history is bounded, keeps the queued entry first, and ends with the latest attempt
    found = record(store)
    history = found["history"]
    assert len(history) <= HISTORY_MAX
    assert history[0]["status"] == "queued"
    assert (history[-1]["status"], history[-1]["attempt"]) == ("retrying", 29)


def test_history_texts_are_short_and_last_error_keeps_more(store: StatusStore) -> None:
    taken = claim(store)

    store.retrying(taken, error="x" * 5000)

    found = record(store)
    assert len(found["last_error"]) == 1000
    assert len(found["history"][-1]["error"]) == 120


def test_success_after_dead_is_recorded(store: StatusStore) -> None:
    store.dead("evt-1", "gave up", 5)

    assert store.succeeded("evt-1", None)
    assert record(store)["status"] == "succeeded"


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

    found = record(store)
    assert found.get("result") == stored
    assert found.get("result_omitted") == omitted


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


def test_a_deferral_is_no_attempt_and_repeated_deferrals_keep_one_entry(store: StatusStore, clock: Clock) -> None:
    # GIVEN an event that failed once
    store.queued(envelope())
    store.retrying(claim(store, attempt=1), error="boom", next_try_at=T0 + 5)

    # WHEN its second receive is deferred three times (each a fresh copy, so each claims attempt 2 again)
    for n in range(3):
        clock.now += 10
        assert store.deferred(
            claim(store, attempt=2, token=f"req-{n}/m"), reason="rate full", next_try_at=clock.now + 60
        )

    # THEN the record says deferred after one attempt, three deferrals, with one entry for them, lock released
    found = record(store)
    assert (found["status"], found["attempt"], found["deferrals"]) == ("deferred", 1, 3)
    assert found["next_try_at"] == found["history"][-1]["next_try_at"]
    assert steps(found) == [("queued",), ("processing",), ("retrying",), ("deferred", "rate full")]
    assert found["history"][-1]["deferrals"] == 3
    assert "lock_id" not in found
    # AND its next claim is attempt 2 again, and it succeeds as such, the count kept
    store.succeeded("evt-1", {"ok": True}, claim=claim(store, attempt=2, token="req-9/m"))
    found = record(store)
    assert (found["status"], found["attempt"], found["deferrals"]) == ("succeeded", 2, 3)
    assert [s for s, *_ in steps(found)] == ["queued", "processing", "retrying", "deferred", "processing", "succeeded"]


def test_a_deferral_keeps_the_history_within_its_bound(store: StatusStore, clock: Clock) -> None:
    store.queued(envelope())
    for attempt in range(1, HISTORY_MAX):
        clock.now += 1
        store.retrying(claim(store, attempt=attempt, token=f"req-{attempt}/m"), error="boom")
    clock.now += 1
    store.deferred(claim(store, attempt=HISTORY_MAX, token="req-x/m"), reason="time")
    found = record(store)
    assert len(found["history"]) == HISTORY_MAX
    assert found["history"][0]["status"] == "queued"
    assert found["history"][-1]["status"] == "deferred"


def test_a_deferral_never_releases_another_attempts_lock(store: StatusStore) -> None:
    store.queued(envelope())
    mine = claim(store, token="req-1/m1")
    assert store.deferred(mine, reason="rate full")
    claim(store, token="req-2/m2")  # another attempt holds it now
    assert store.deferred(mine, reason="rate full") is False
    assert record(store)["lock_id"] == "req-2/m2"
