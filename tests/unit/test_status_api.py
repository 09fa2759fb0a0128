"""GET /events/{id}[?wait=N]: the status now, or as soon as it is final, with a stepped clock."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from tests.factories import LambdaContext, load_event, make_envelope
from tests.tables import STATUS_TABLE, create_status_table

from inqueue.status import StatusStore
from inqueue.status_api import StatusApi


class SteppedClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Timeline:
    """A status store whose records change at given clock times, as the worker would write them."""

    def __init__(self, clock: SteppedClock, changes: list[tuple[float, dict[str, Any]]]):
        self.clock = clock
        self.changes = changes
        self.reads = 0

    def get(self, event_id: str) -> Mapping[str, Any] | None:
        self.reads += 1
        current = None
        for at, record in self.changes:
            if self.clock.now >= at:
                current = record
        return current


def status_event(event_id: str = "evt-1", wait: str | None = None) -> dict[str, Any]:
    event = load_event("apigw-demo-status.json")
    event["pathParameters"] = {"id": event_id}
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/events/{event_id}"
    if wait is None:
        event.pop("queryStringParameters", None)
        event["rawQueryString"] = ""
    else:
        event["queryStringParameters"] = {"wait": wait}
        event["rawQueryString"] = f"wait={wait}"
    return event


def api_with(changes: list[tuple[float, dict[str, Any]]]) -> tuple[StatusApi, SteppedClock, Timeline]:
    clock = SteppedClock()
    store = Timeline(clock, [(clock.now + at, record) for at, record in changes])
    return StatusApi(store, clock=clock, sleep=clock.sleep), clock, store


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def test_without_wait_the_current_status_is_answered_at_once() -> None:
    # GIVEN an event the worker is processing
    api, clock, _ = api_with([(0, {"status": "processing", "attempts": Decimal(1)})])

    # WHEN the caller asks without wait
    response = api.handle(status_event(), LambdaContext())

    # THEN it gets the record as it is, numbers as JSON numbers, without any sleeping
    assert response["statusCode"] == 200
    assert body(response) == {"id": "evt-1", "status": "processing", "attempts": 1, "final": False}
    assert clock.sleeps == []


def test_wait_answers_as_soon_as_the_event_succeeds_with_its_result() -> None:
    # GIVEN an event that succeeds 1.2 s after the caller asks
    api, clock, _ = api_with(
        [(0, {"status": "processing"}), (1.2, {"status": "succeeded", "result": {"order": Decimal("7")}})]
    )
    start = clock.now

    # WHEN the caller waits up to 20 s
    response = api.handle(status_event(wait="20"), LambdaContext())

    # THEN the answer comes within one poll interval of the success, with the processor's result
    assert body(response) == {"id": "evt-1", "status": "succeeded", "result": {"order": 7}, "final": True}
    assert 1.2 <= clock.now - start <= 1.2 + 1.0


def test_wait_polls_with_growing_intervals_capped_at_one_second() -> None:
    api, clock, store = api_with([(0, {"status": "retrying"})])

    response = api.handle(status_event(wait="5"), LambdaContext())

    # THEN after 5 s the current state is answered, not an error, and the polling backed off
    assert body(response)["status"] == "retrying"
    assert clock.sleeps[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(clock.sleeps) == 1.0
    assert sum(clock.sleeps) == pytest.approx(5.0)
    assert store.reads <= 10


def test_a_dead_event_is_final_too() -> None:
    api, _, _ = api_with([(0, {"status": "retrying"}), (3, {"status": "dead", "last_error": "ValueError"})])

    response = api.handle(status_event(wait="25"), LambdaContext())

    assert body(response)["status"] == "dead"
    assert body(response)["final"] is True


def test_wait_covers_an_event_whose_status_is_not_written_yet() -> None:
    # GIVEN a caller asking right after its 202, before the worker wrote anything
    api, _, _ = api_with([(0.5, {"status": "succeeded"})])

    response = api.handle(status_event(wait="3"), LambdaContext())

    assert body(response)["status"] == "succeeded"


def test_an_unknown_event_is_404_after_the_wait() -> None:
    api, clock, _ = api_with([])
    start = clock.now

    response = api.handle(status_event("evt-404", wait="2"), LambdaContext())

    assert response["statusCode"] == 404
    assert body(response)["error"]["code"] == "unknown_event"
    assert clock.now - start == pytest.approx(2.0)


@pytest.mark.parametrize("wait", ["26", "-1", "soon", "nan", "inf"])
def test_a_wait_outside_0_to_25_is_400(wait: str) -> None:
    api, clock, _ = api_with([(0, {"status": "queued"})])

    response = api.handle(status_event(wait=wait), LambdaContext())

    assert response["statusCode"] == 400
    assert body(response)["error"]["code"] == "bad_wait"
    assert clock.sleeps == []


def test_the_wait_never_outlasts_the_lambda_timeout() -> None:
    # GIVEN a function with 6 s left
    api, clock, _ = api_with([(0, {"status": "processing"})])
    start = clock.now

    response = api.handle(status_event(wait="25"), LambdaContext(timeout_ms=6000))

    # THEN it answers with the current state a second before the timeout
    assert body(response)["status"] == "processing"
    assert clock.now - start == pytest.approx(5.0)


def test_the_kept_envelope_is_never_shown_to_callers() -> None:
    api, _, _ = api_with([(0, {"status": "succeeded", "envelope": '{"body": "secret stuff"}'})])

    response = api.handle(status_event(), LambdaContext())

    assert "envelope" not in body(response)


def test_a_malformed_id_is_unknown_without_reading_the_store() -> None:
    api, _, store = api_with([])

    response = api.handle(status_event("../../etc"), LambdaContext())

    assert response["statusCode"] == 404
    assert store.reads == 0


@pytest.fixture
def store(aws: None) -> StatusStore:
    return StatusStore(STATUS_TABLE, create_status_table())


def test_the_status_api_answers_from_the_store_the_worker_writes(store: StatusStore, monkeypatch: Any) -> None:
    # GIVEN an event the worker finished, and the status function configured as deployed
    event_id = load_event("apigw-demo-status.json")["pathParameters"]["id"]
    store.queued(make_envelope(event_id))
    store.succeeded(event_id, {"invoice": "INV-1001"})
    monkeypatch.setenv("INQUEUE_STATUS_TABLE", STATUS_TABLE)

    # WHEN the fixture request (?wait=20) arrives
    response = StatusApi.from_environment().handle(load_event("apigw-demo-status.json"), LambdaContext())

    # THEN the caller gets the result at once, as from a synchronous endpoint
    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert (body["status"], body["result"], body["final"]) == ("succeeded", {"invoice": "INV-1001"}, True)
    assert "expires_at" in body
