"""The ingress writes queued, best effort: a status table failure never takes back the 202."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.conftest import drain
from tests.factories import http_event
from tests.tables import STATUS_TABLE, create_status_table

from inqueue.envelope import Envelope
from inqueue.ingress import Ingress
from inqueue.observability import metrics
from inqueue.status import StatusStore

NOW = 1_795_435_200.0


def test_an_accepted_event_is_recorded_as_queued(
    ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, sqs: Any, queue_url: str
) -> None:
    # GIVEN an ingress with a status table
    client = create_status_table()
    monkeypatch.setenv("INQUEUE_STATUS_TABLE", STATUS_TABLE)
    ingress = Ingress.from_environment(clock=lambda: NOW)

    # WHEN it accepts an event
    response = ingress.handle(http_event(headers={"idempotency-key": "d-1", "x-event-type": "order.created"}))

    # THEN the 202's id has a queued record, and the queued message is that event
    event_id = json.loads(response["body"])["id"]
    record = StatusStore(STATUS_TABLE, client).get(event_id)
    assert record is not None
    assert (record["status"], record["source"], record["type"]) == ("queued", "demo", "order.created")
    assert record["updated_at"] == "2026-11-23T12:00:00.000Z"
    [message] = drain(sqs, queue_url)
    assert Envelope.from_json(message["Body"]).id == event_id


def test_a_failed_status_write_still_answers_202_with_the_event_queued(
    ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, sqs: Any, queue_url: str
) -> None:
    # GIVEN a status table that does not exist (deleted, throttled, no permission: all the same here)
    monkeypatch.setenv("INQUEUE_STATUS_TABLE", "no-such-table")
    ingress = Ingress.from_environment(clock=lambda: NOW)

    # WHEN an event arrives
    response = ingress.handle(http_event())

    # THEN the sender gets its 202, the event is queued, and the failure is counted for an alarm
    assert response["statusCode"] == 202
    [message] = drain(sqs, queue_url)
    assert Envelope.from_json(message["Body"]).id == json.loads(response["body"])["id"]
    assert metrics.metric_set["StatusWriteFailed"]["Value"] == [1.0]


def test_without_a_status_table_no_status_client_is_made(ingress_env: dict[str, str]) -> None:
    ingress = Ingress.from_environment(clock=lambda: NOW)

    assert ingress.handle(http_event())["statusCode"] == 202
    assert ingress.status is None


def test_a_sender_retry_keeps_the_record_the_worker_moved_on(
    ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an event the worker already finished
    client = create_status_table()
    monkeypatch.setenv("INQUEUE_STATUS_TABLE", STATUS_TABLE)
    ingress = Ingress.from_environment(clock=lambda: NOW)
    event = http_event(headers={"idempotency-key": "d-7"})
    event_id = json.loads(ingress.handle(event)["body"])["id"]
    StatusStore(STATUS_TABLE, client).succeeded(event_id, {"ok": True})

    # WHEN the sender retries the same delivery
    assert ingress.handle(event)["statusCode"] == 202

    # THEN the record still says succeeded
    record = StatusStore(STATUS_TABLE, client).get(event_id)
    assert record is not None
    assert record["status"] == "succeeded"
