"""The delivery limits every worker shares, on moto's in-process DynamoDB: rate, concurrency, cost in writes."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from tests.factories import Clock
from tests.tables import STATUS_TABLE, create_status_table

from inqueue.destinations import DeliveryLimiter, LimitUnavailable, parse_config
from inqueue.destinations.config import Destination
from inqueue.destinations.ratelimit import lease_key, rate_key
from inqueue.errors import Deferred

T0 = 1_795_435_200.0


def destination(**settings: Any) -> Destination:
    shop = {"url": "https://shop.example.com/", "secret": "ssm:/x", **settings}
    return parse_config(json.dumps({"destinations": {"shop": shop}})).destinations["shop"]


class Serialized:
    """The table client, one request at a time.

    DynamoDB applies the conditional writes to one item one after another; moto's in-process
    backend does not (two threads can both pass a condition), so this stands for the service's
    guarantee. The limiters above it still run concurrently: clocks, guesses and retries interleave.
    """

    def __init__(self, client: Any):
        self._client = client
        self._lock = threading.Lock()
        self.writes = 0

    def update_item(self, **request: Any) -> Any:
        with self._lock:
            self.writes += 1
            return self._client.update_item(**request)

    def get_item(self, **request: Any) -> Any:
        with self._lock:
            return self._client.get_item(**request)


@pytest.fixture
def table(aws: None) -> Serialized:
    return Serialized(create_status_table())


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def limiter_on(
    table: Serialized, clock: Callable[[], float], sleep: Callable[[float], None] | None = None
) -> DeliveryLimiter:
    return DeliveryLimiter(STATUS_TABLE, table, clock=clock, sleep=sleep or (lambda seconds: None))


def test_slots_are_an_interval_apart_and_a_full_wait_defers_with_when_to_come_back(
    table: Serialized, clock: Clock
) -> None:
    shop = destination(rate=2)  # one every 0.5 s
    limiter = limiter_on(table, clock)

    # WHEN three deliveries ask at the same moment, willing to wait 0.6 s
    first = limiter.acquire(shop, max_wait=0.6)
    second = limiter.acquire(shop, max_wait=0.6)

    # THEN the first goes now, the second in 0.5 s, and the third would wait 1 s: deferred, nothing written
    assert (first.send_at, second.send_at) == (T0, T0 + 0.5)
    with pytest.raises(Deferred) as deferred:
        limiter.acquire(shop, max_wait=0.6)
    assert deferred.value.seconds == pytest.approx(0.4)  # when tat (T0 + 1) is within 0.6 s of now
    item = table.get_item(TableName=STATUS_TABLE, Key={"id": {"S": rate_key("shop")}})["Item"]
    assert Decimal(item["tat"]["N"]) == Decimal(str(T0 + 1.0))
    assert item["kind"] == {"S": "destination_rate"}
    assert int(item["expires_at"]["N"]) == int(T0) + 86_400

    # WHEN the clock reaches the deferral, the slot is there
    clock.now += deferred.value.seconds
    assert limiter.acquire(shop, max_wait=0.6).send_at == pytest.approx(T0 + 1.0)


def test_the_limiter_sleeps_until_its_slot(table: Serialized, clock: Clock) -> None:
    slept: list[float] = []
    limiter = limiter_on(table, clock, slept.append)
    shop = destination(rate=4)
    limiter.wait(limiter.acquire(shop, max_wait=1))
    limiter.wait(limiter.acquire(shop, max_wait=1))
    assert slept == [0.25]


def test_an_idle_destination_and_a_busy_one_cost_one_write_per_delivery(table: Serialized, clock: Clock) -> None:
    shop = destination(rate=10)
    limiter = limiter_on(table, clock)

    # GIVEN deliveries slower than the rate (idle every time)
    for _ in range(20):
        limiter.acquire(shop, max_wait=1)
        clock.now += 0.5
    assert table.writes == 20

    # WHEN a burst comes in at once (busy after the first), the guess follows
    table.writes = 0
    for _ in range(10):
        limiter.acquire(shop, max_wait=5)
    assert table.writes == 10


def test_a_stale_guess_costs_a_second_write_never_a_read(table: Serialized, clock: Clock) -> None:
    shop = destination(rate=10)
    one, other = limiter_on(table, clock), limiter_on(table, clock)
    one.acquire(shop, max_wait=1)  # idle write
    # The other container has never seen the item: it guesses idle, is refused, learns tat from the refusal.
    assert other.acquire(shop, max_wait=1).send_at == pytest.approx(T0 + 0.1)
    assert table.writes == 3


def test_every_window_holds_at_most_the_rate_across_concurrent_workers(table: Serialized) -> None:
    # GIVEN 200 deliveries at 5 a second across 4 threads, each with its own limiter (its own guesses)
    # and its own clock, moved only by its own sleeps: clocks that drift apart far more than Lambda's,
    # deferrals that come back when told, and requests that take a random 0-300 ms
    rate, workers, total = 5, 4, 200
    shop = destination(rate=rate)
    remaining = [total]
    taken = threading.Lock()
    grants: list[float] = []
    deferrals = [0]
    start = threading.Barrier(workers)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        now = [T0 + rng.random() * 0.01]

        def sleep(seconds: float) -> None:
            now[0] += seconds

        limiter = DeliveryLimiter(STATUS_TABLE, table, clock=lambda: now[0], sleep=sleep, random=rng.random)
        start.wait()
        while True:
            with taken:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            while True:
                try:
                    permit = limiter.acquire(shop, max_wait=0.5)
                    break
                except Deferred as deferred:
                    with taken:
                        deferrals[0] += 1
                    sleep(deferred.seconds)
            limiter.wait(permit)
            with taken:
                grants.append(now[0])
            sleep(rng.random() * 0.3)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN every delivery went, no two closer than 1/rate, so no second-long window holds more than 5
    # (slots are exact decimals in the table; as floats here they are within a microsecond)
    grants.sort()
    assert len(grants) == total
    gaps = [later - earlier for earlier, later in itertools.pairwise(grants)]
    assert min(gaps) >= 1 / rate - 1e-6
    busiest = max(bisect.bisect_left(grants, begin + 1.0 - 1e-5) - index for index, begin in enumerate(grants))
    assert busiest <= rate


def test_four_workers_sharing_a_rate_keep_its_pace_for_one_write_a_delivery(table: Serialized, clock: Clock) -> None:
    # GIVEN 200 events at 5 a second and 4 workers on one clock, each delivering one event at a time
    # (as a batch does) in 50-150 ms; simulated in event order, so the counts are exact
    rate, total = 5, 200
    shop = destination(rate=rate)
    rng = random.Random(7)
    ready = {worker: T0 + worker * 0.001 for worker in range(4)}
    limiters = {worker: DeliveryLimiter(STATUS_TABLE, table, clock=clock) for worker in ready}
    sends: list[float] = []
    deferrals = 0
    while len(sends) < total:
        worker = min(ready, key=ready.__getitem__)
        clock.now = ready[worker]
        try:
            permit = limiters[worker].acquire(shop, max_wait=2.0)
        except Deferred as deferred:
            deferrals += 1
            ready[worker] = clock.now + max(1, math.ceil(deferred.seconds))  # a visibility timeout: whole seconds
            continue
        sends.append(permit.send_at)
        ready[worker] = permit.send_at + 0.05 + rng.random() * 0.1

    # THEN the rate is kept exactly: evenly spaced, no deferral, one write per delivery
    gaps = [later - earlier for earlier, later in itertools.pairwise(sends)]
    assert min(gaps) == pytest.approx(1 / rate, abs=1e-6)
    assert max(gaps) == pytest.approx(1 / rate, abs=1e-6)
    assert deferrals == 0
    # (each worker but the first guesses "idle" once, before it has seen the item)
    assert table.writes == total + 3


def test_concurrency_leases_cap_deliveries_in_flight_and_are_given_back(table: Serialized, clock: Clock) -> None:
    shop = destination(concurrency=2, timeout=10)
    limiter = limiter_on(table, clock)

    first = limiter.acquire(shop, max_wait=0)
    second = limiter.acquire(shop, max_wait=0)
    assert {first.lease[0], second.lease[0]} == {lease_key("shop", 0), lease_key("shop", 1)}  # type: ignore[index]
    with pytest.raises(Deferred, match="all 2 concurrent deliveries are in flight"):
        limiter.acquire(shop, max_wait=0)

    limiter.release(first)
    third = limiter.acquire(shop, max_wait=0)
    assert third.lease[0] == first.lease[0]  # type: ignore[index]


def test_a_lease_a_crashed_worker_never_gave_back_expires(table: Serialized, clock: Clock) -> None:
    shop = destination(concurrency=1, timeout=10)
    crashed = limiter_on(table, clock)
    crashed.acquire(shop, max_wait=0)  # and never released

    other = limiter_on(table, clock)
    with pytest.raises(Deferred):
        other.acquire(shop, max_wait=0)

    # A lease lasts the wait, twice the timeout and a margin: 25 s here.
    clock.now += 25.001
    late = other.acquire(shop, max_wait=0)
    assert late.lease is not None

    # The crashed worker's late release does not free the lease someone else now holds.
    crashed.release(type(late)("shop", 0.0, (late.lease[0], "not-the-holder")))
    with pytest.raises(Deferred):
        limiter_on(table, clock).acquire(shop, max_wait=0)


def test_a_wait_for_a_lease_polls_until_one_is_free_within_max_wait(table: Serialized, clock: Clock) -> None:
    shop = destination(concurrency=1, timeout=1)
    holder = limiter_on(table, clock)
    held = holder.acquire(shop, max_wait=0)
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        clock.now += seconds
        if len(polls) == 3:
            holder.release(held)

    waiter = limiter_on(table, clock, sleep)
    assert waiter.acquire(shop, max_wait=2).lease is not None
    assert polls == [0.05, 0.1, 0.2]


def test_concurrent_workers_never_hold_more_leases_than_the_limit(table: Serialized) -> None:
    shop = destination(concurrency=2, timeout=5)
    in_flight, most = [0], [0]
    state = threading.Condition()
    done = [0]
    workers, each = 6, 4

    def worker(seed: int) -> None:
        limiter = DeliveryLimiter(STATUS_TABLE, table, sleep=lambda seconds: None, random=random.Random(seed).random)
        for _ in range(each):
            while True:
                try:
                    permit = limiter.acquire(shop, max_wait=0)
                    break
                except Deferred:
                    continue
            with state:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
                state.notify_all()
                # Hold until the limit is reached (or everyone else is done), so holds overlap.
                state.wait_for(lambda: in_flight[0] >= 2 or done[0] >= workers - 1, timeout=5)
                in_flight[0] -= 1
            limiter.release(permit)
        with state:
            done[0] += 1
            state.notify_all()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 2


def test_with_rate_and_concurrency_the_lease_is_given_back_when_the_rate_defers(
    table: Serialized, clock: Clock
) -> None:
    shop = destination(rate=1, concurrency=1)
    limiter = limiter_on(table, clock)
    limiter.release(limiter.acquire(shop, max_wait=0))
    with pytest.raises(Deferred, match="rate"):
        limiter.acquire(shop, max_wait=0)
    # The lease taken before the rate said no was given back: only the rate is in the way.
    clock.now += 1
    assert limiter.acquire(shop, max_wait=0).lease is not None


def test_a_table_that_cannot_be_written_is_an_ordinary_failure(clock: Clock) -> None:
    class Broken:
        def update_item(self, **request: Any) -> Any:
            error = Exception("throttled")
            error.response = {"Error": {"Code": "ProvisionedThroughputExceededException"}}  # type: ignore[attr-defined]
            raise error

    with pytest.raises(LimitUnavailable, match="could not be checked"):
        DeliveryLimiter(STATUS_TABLE, Broken(), clock=clock).acquire(destination(rate=1), max_wait=0)
