"""The ingress writes queued while SendMessage is in flight, best effort, and never leaves a record that lies."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from tests.conftest import drain
from tests.factories import LambdaContext, http_event
from tests.tables import STATUS_TABLE, create_status_table

from inqueue.envelope import Envelope, event_id_for
from inqueue.ingress import Ingress
from inqueue.status import StatusStore

NOW = 1_795_435_200.0


@pytest.fixture
def table(ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    client = create_status_table()
    monkeypatch.setenv("INQUEUE_STATUS_TABLE", STATUS_TABLE)
    return client


def on_call(client: Any, operation: str, handler: Any) -> None:
    """Run ``handler`` in the transport when ``client`` calls ``operation`` (before the call goes out)."""
    service = client.meta.service_model.service_name
    client.meta.events.register(f"before-parameter-build.{service}.{operation}", handler)


def test_an_accepted_event_is_recorded_as_queued(table: Any, sqs: Any, queue_url: str) -> None:
    # GIVEN an ingress with a status table
    ingress = Ingress.from_environment(clock=lambda: NOW)

    # WHEN it accepts an event
    response = ingress.handle(http_event(headers={"idempotency-key": "d-1", "x-event-type": "order.created"}))

    # THEN the 202's id has a queued record with its timeline's first entry, and the queued message is that event
    event_id = json.loads(response["body"])["id"]
    record = StatusStore(STATUS_TABLE, table).get(event_id)
    assert record is not None
    assert (record["status"], record["source"], record["type"]) == ("queued", "demo", "order.created")
    assert record["updated_at"] == "2026-11-23T12:00:00.000Z"
    assert record["history"] == [{"at": "2026-11-23T12:00:00.000Z", "status": "queued"}]
    [message] = drain(sqs, queue_url)
    assert Envelope.from_json(message["Body"]).id == event_id


def test_the_queued_write_and_the_send_are_in_flight_together(table: Any, sqs: Any) -> None:
    # GIVEN a transport where PutItem and SendMessage each wait until the other has started:
    # done one after the other, the first would wait for ever (here: fail after 10 s)
    put_started, send_started = threading.Event(), threading.Event()
    ingress = Ingress.from_environment(sqs=sqs, clock=lambda: NOW)
    assert ingress.status is not None
    dynamodb = ingress.status.client

    def put(**_: Any) -> None:
        put_started.set()
        assert send_started.wait(10), "SendMessage never started while PutItem was in flight"

    def send(**_: Any) -> None:
        send_started.set()
        assert put_started.wait(10), "PutItem never started while SendMessage was in flight"

    on_call(dynamodb, "PutItem", put)
    on_call(sqs, "SendMessage", send)

    # WHEN an event arrives, THEN both calls ran at once and the event is accepted and recorded
    response = ingress.handle(http_event())
    assert response["statusCode"] == 202
    assert StatusStore(STATUS_TABLE, table).get(json.loads(response["body"])["id"]) is not None


def test_a_failed_status_write_still_answers_202_with_the_event_queued(
    ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, sqs: Any, queue_url: str, capsys: Any
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
    metric_lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [line["StatusWriteFailed"] for line in metric_lines if "StatusWriteFailed" in line] == [[1.0]]


def test_when_the_send_fails_after_the_queued_write_the_record_is_withdrawn(
    table: Any, sqs: Any, queue_url: str
) -> None:
    # GIVEN SQS unreachable, while DynamoDB takes the queued write
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com")

    on_call(sqs, "SendMessage", unreachable)
    ingress = Ingress.from_environment(sqs=sqs, clock=lambda: NOW)
    event = http_event(headers={"idempotency-key": "d-503"})

    # WHEN an event arrives
    response = ingress.handle(event)

    # THEN the sender gets 503, nothing is queued, and no record says it was
    assert response["statusCode"] == 503
    assert drain(sqs, queue_url) == []
    assert StatusStore(STATUS_TABLE, table).get(event_id_for("demo", "d-503")) is None


def test_a_failed_send_never_touches_a_record_an_earlier_delivery_made(table: Any, sqs: Any) -> None:
    # GIVEN an event the worker is processing, and a sender retry of it that SQS refuses
    ingress = Ingress.from_environment(sqs=sqs, clock=lambda: NOW)
    event = http_event(headers={"idempotency-key": "d-8"})
    event_id = json.loads(ingress.handle(event)["body"])["id"]
    store = StatusStore(STATUS_TABLE, table)
    [message] = drain(sqs, "https://sqs.us-east-1.amazonaws.com/123456789012/inqueue-events")
    store.claim(Envelope.from_json(message["Body"]), attempt=1, token="req-1/m1", deadline_ms=int(NOW * 1000) + 30_000)

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com")

    on_call(sqs, "SendMessage", unreachable)

    # WHEN the retry is refused
    assert ingress.handle(event)["statusCode"] == 503

    # THEN the record the first delivery made is as the worker left it
    record = store.get(event_id)
    assert record is not None
    assert record["status"] == "processing"


def test_without_the_queued_write_no_status_client_is_made_and_the_worker_creates_the_record(
    table: Any, monkeypatch: pytest.MonkeyPatch, sqs: Any, queue_url: str
) -> None:
    # GIVEN the ingress's status write switched off (QueuedStatus=false)
    monkeypatch.setenv("INQUEUE_QUEUED_STATUS", "false")
    ingress = Ingress.from_environment(clock=lambda: NOW)

    # WHEN an event is accepted, THEN nothing is written at accept time
    response = ingress.handle(http_event(headers={"x-correlation-id": "corr-42"}))
    event_id = json.loads(response["body"])["id"]
    assert response["statusCode"] == 202
    assert ingress.status is None
    store = StatusStore(STATUS_TABLE, table)
    assert store.get(event_id) is None

    # AND the worker's claim creates the record with every field the ingress would have written
    [message] = drain(sqs, queue_url)
    store.claim(Envelope.from_json(message["Body"]), attempt=1, token="req-1/m1", deadline_ms=int(NOW * 1000) + 30_000)
    record = store.get(event_id)
    assert record is not None
    assert (record["received_at"], record["correlation_id"], record["source"]) == (
        "2026-11-23T12:00:00.000Z",
        "corr-42",
        "demo",
    )
    assert [entry["status"] for entry in record["history"]] == ["queued", "processing"]


def test_without_a_status_table_no_status_client_is_made(ingress_env: dict[str, str]) -> None:
    ingress = Ingress.from_environment(clock=lambda: NOW)

    assert ingress.handle(http_event())["statusCode"] == 202
    assert ingress.status is None


def test_a_sender_retry_keeps_the_record_the_worker_moved_on(table: Any) -> None:
    # GIVEN an event the worker already finished
    ingress = Ingress.from_environment(clock=lambda: NOW)
    event = http_event(headers={"idempotency-key": "d-7"})
    event_id = json.loads(ingress.handle(event, LambdaContext())["body"])["id"]
    StatusStore(STATUS_TABLE, table).succeeded(event_id, {"ok": True})

    # WHEN the sender retries the same delivery
    assert ingress.handle(event)["statusCode"] == 202

    # THEN the record still says succeeded
    record = StatusStore(STATUS_TABLE, table).get(event_id)
    assert record is not None
    assert record["status"] == "succeeded"
