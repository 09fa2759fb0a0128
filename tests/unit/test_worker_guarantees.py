"""Worker guarantees against moto's SQS and DynamoDB: at most once per event id, backoff, dead letters, FIFO.

Time is stepped with freezegun, which moves moto's visibility clock and the record store's
clock together; nothing sleeps. Records come from a real receive on moto's queue, shaped
as the event source mapping delivers them, so ChangeMessageVisibilityBatch and the
redrive policy act on real queue state. Faults are injected at botocore's boundary
(a handler on the client's events), never by replacing our own code.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from tests.factories import LambdaContext, make_envelope
from tests.tables import STATUS_TABLE, create_queues, create_status_table, receive_event, settle, visible_count

from inqueue.envelope import Envelope
from inqueue.errors import PermanentError, RetryLater
from inqueue.retry import Backoff
from inqueue.settings import WorkerSettings
from inqueue.status import StatusStore
from inqueue.worker import DEAD_REASON_ATTRIBUTE, REPLAY_FLAG, Router, Worker
from inqueue.worker.sqs import Queues

T0 = "2026-11-23T12:00:00Z"
MAX_RECEIVES = 3


@dataclass
class World:
    sqs: Any
    dynamodb: Any
    queue_url: str
    dlq_url: str
    status: StatusStore
    clock: FrozenDateTimeFactory
    calls: list[str] = field(default_factory=list)
    aws_calls: Counter[str] = field(default_factory=Counter)
    worker_calls: Counter[str] = field(default_factory=Counter)

    def send(self, envelope: Envelope, **extra: Any) -> None:
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=envelope.to_json(),
            MessageAttributes=envelope.message_attributes(),
            **extra,
        )

    def worker(self, router: Router, *, random: float = 0.5, env: dict[str, str] | None = None) -> Worker:
        settings = WorkerSettings.from_env(
            {
                "INQUEUE_STATUS_TABLE": STATUS_TABLE,
                "INQUEUE_QUEUE_URL": self.queue_url,
                "INQUEUE_DLQ_URL": self.dlq_url,
                "INQUEUE_MAX_RECEIVE_COUNT": str(MAX_RECEIVES),
                "INQUEUE_RETRY_BASE_SECONDS": "10",
                "INQUEUE_RETRY_MAX_SECONDS": "300",
                **(env or {}),
            }
        )
        return Worker(
            router,
            settings,
            store=self.status,
            queues=Queues(self.queue_url, self.dlq_url, self.sqs),
            backoff=Backoff(10, 300, random=lambda: random),
            clock=time.time,
        )

    def deliver(self, worker: Worker, timeout_ms: int = 30_000) -> tuple[dict[str, Any], Any]:
        """One receive, one invocation, then what the event source mapping does with the answer."""
        event = receive_event(self.sqs, self.queue_url)
        self.aws_calls.clear()
        try:
            response = worker.handle(event, LambdaContext(timeout_ms=timeout_ms))
        except BatchProcessingError:  # every record failed: the invocation fails and nothing is deleted
            response = {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
        self.worker_calls = Counter(self.aws_calls)  # the invocation's, not the event source mapping's below
        settle(self.sqs, self.queue_url, event, response)
        return event, response

    def count_calls(self) -> None:
        """From now on, every AWS call the worker's clients make is counted by operation (in ``aws_calls``)."""

        def count(event_name: str, **_: Any) -> None:
            self.aws_calls[event_name.rsplit(".", 1)[-1]] += 1

        for client in (self.sqs, self.dynamodb):
            client.meta.events.register("before-call", count)

    def fail(self, service: str, operation: str, when: Callable[[dict[str, Any]], bool]) -> None:
        """The transport fails the calls of ``operation`` whose parameters match ``when``, as a network fault would."""

        def maybe_fail(params: dict[str, Any], **_: Any) -> None:
            if when(params):
                raise EndpointConnectionError(endpoint_url=f"https://{service}.us-east-1.amazonaws.com")

        client = self.sqs if service == "sqs" else self.dynamodb
        client.meta.events.register(f"before-parameter-build.{service}.{operation}", maybe_fail)


def make_world(fifo: bool, clock: FrozenDateTimeFactory) -> World:
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url, dlq_url = create_queues(sqs, fifo=fifo, max_receives=MAX_RECEIVES)
    dynamodb = create_status_table()
    status = StatusStore(STATUS_TABLE, dynamodb, clock=time.time)
    return World(sqs, dynamodb, queue_url, dlq_url, status, clock)


@pytest.fixture
def world(aws: None) -> Iterator[World]:
    with freeze_time(T0) as clock:
        yield make_world(False, clock)


@pytest.fixture
def fifo(aws: None) -> Iterator[World]:
    with freeze_time(T0) as clock:
        yield make_world(True, clock)


def envelope(event_id: str = "evt-1", **meta: Any) -> Envelope:
    return make_envelope(event_id, body={"order": 1001}, meta=meta)


def recording_router(world: World, fail_with: BaseException | None = None, result: Any = None) -> Router:
    router = Router()

    @router.default
    def process(event: Envelope) -> Any:
        world.calls.append(event.id)
        if fail_with is not None:
            raise fail_with
        return result

    return router


def test_a_duplicate_delivery_returns_the_stored_result_without_processing_again(world: World) -> None:
    # GIVEN an event processed once, and the same event delivered again (an SQS duplicate or a sender retry)
    worker = world.worker(recording_router(world, result={"deal": 42}))
    world.send(envelope())
    _, first = world.deliver(worker)
    world.send(envelope())
    world.count_calls()

    # WHEN the duplicate is delivered
    _, second = world.deliver(worker)

    # THEN the processor ran once, both deliveries were acknowledged, and the status kept the result
    assert world.calls == ["evt-1"]
    # AND the duplicate cost one refused claim, which answered with the stored result: no read, no write
    assert world.worker_calls == Counter({"UpdateItem": 1})
    assert first == second == {"batchItemFailures": []}
    assert visible_count(world.sqs, world.queue_url) == 0
    record = world.status.get("evt-1")
    assert record is not None
    assert (record["status"], record["result"]) == ("succeeded", {"deal": 42})


def test_a_replay_flag_processes_an_event_again(world: World) -> None:
    worker = world.worker(recording_router(world))
    world.send(envelope())
    world.deliver(worker)

    world.send(envelope(**{REPLAY_FLAG: True}))
    world.deliver(worker)

    assert world.calls == ["evt-1", "evt-1"]


class LambdaTimedOut(BaseException):
    """Stands in for the runtime killing the invocation: nothing in the worker gets to clean up."""


def test_an_in_progress_lock_holds_until_the_lambda_timeout_then_expires(world: World) -> None:
    # GIVEN an invocation with 30 s left that dies while processing, leaving its lock behind
    crashing = world.worker(recording_router(world, fail_with=LambdaTimedOut()))
    world.send(envelope())
    event = receive_event(world.sqs, world.queue_url)
    with pytest.raises(LambdaTimedOut):
        crashing.handle(event, LambdaContext(timeout_ms=30_000))
    healthy = world.worker(recording_router(world, result={"ok": True}))
    world.send(envelope())  # the same event, delivered again while the lock is held

    # WHEN it is delivered 10 s later, THEN it is not processed: it is reported and retried later
    world.clock.tick(10)
    _, response = world.deliver(healthy)
    assert len(response["batchItemFailures"]) == 1
    assert world.calls == ["evt-1"]

    # WHEN it comes back after the dead invocation's timeout, THEN the expired lock no longer holds it
    world.clock.tick(300)
    _, response = world.deliver(healthy)
    assert response == {"batchItemFailures": []}
    assert world.calls == ["evt-1", "evt-1"]


def test_a_failure_backs_off_by_changing_the_visibility_and_records_retrying(world: World) -> None:
    # GIVEN a processor that fails, and a jitter draw of 0.5 (first attempt: 0..10 s -> 5 s)
    worker = world.worker(recording_router(world, fail_with=TimeoutError("crm slow")), random=0.5)
    world.send(envelope())

    # WHEN the first attempt fails
    event, response = world.deliver(worker)

    # THEN the record is reported, hidden for 5 s rather than the queue's 180 s, and the status says when
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    record = world.status.get("evt-1")
    assert record is not None
    assert record["status"] == "retrying"
    assert record["attempt"] == 1
    assert record["next_try_at"] == "2026-11-23T12:00:05.000Z"
    assert record["last_error"] == "TimeoutError: crm slow"
    world.clock.tick(4)
    assert visible_count(world.sqs, world.queue_url) == 0
    world.clock.tick(2)
    assert visible_count(world.sqs, world.queue_url) == 1

    # AND the second attempt's window doubles (0..20 s -> 10 s)
    world.deliver(worker)
    world.clock.tick(9)
    assert visible_count(world.sqs, world.queue_url) == 0
    world.clock.tick(2)
    assert visible_count(world.sqs, world.queue_url) == 1


def test_retry_later_asks_for_its_own_delay(world: World) -> None:
    # GIVEN Bitrix24 answering 503 QUERY_LIMIT_EXCEEDED, turned into RetryLater(120)
    worker = world.worker(recording_router(world, fail_with=RetryLater(120, "QUERY_LIMIT_EXCEEDED")))
    world.send(envelope())

    world.deliver(worker)

    world.clock.tick(119)
    assert visible_count(world.sqs, world.queue_url) == 0
    world.clock.tick(2)
    assert visible_count(world.sqs, world.queue_url) == 1
    record = world.status.get("evt-1")
    assert record is not None
    assert record["next_try_at"] == "2026-11-23T12:02:00.000Z"


def test_a_permanent_error_goes_to_the_dlq_at_once_with_its_reason(world: World) -> None:
    # GIVEN a processor that knows the deal will never exist
    worker = world.worker(recording_router(world, fail_with=PermanentError("unknown deal 4021")))
    world.send(envelope())

    # WHEN it is delivered the first time
    event, response = world.deliver(worker)

    # THEN it is not a batch failure (so it is deleted), it is in the DLQ with the reason, and the status is dead
    assert response == {"batchItemFailures": []}
    assert visible_count(world.sqs, world.queue_url) == 0
    [dead] = world.sqs.receive_message(QueueUrl=world.dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert dead["Body"] == event["Records"][0]["body"]
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert attributes[DEAD_REASON_ATTRIBUTE] == "unknown deal 4021"
    assert attributes["event_id"] == "evt-1"
    assert attributes["failed_message_id"] == event["Records"][0]["messageId"]
    record = world.status.get("evt-1")
    assert record is not None
    assert (record["status"], record["reason"], record["attempt"]) == ("dead", "unknown deal 4021", 1)
    assert world.calls == ["evt-1"]


def test_a_message_that_is_not_an_envelope_is_dead_lettered_not_retried(world: World) -> None:
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody="not json")

    _, response = world.deliver(world.worker(Router()))

    assert response == {"batchItemFailures": []}
    [dead] = world.sqs.receive_message(QueueUrl=world.dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert dead["Body"] == "not json"
    assert dead["MessageAttributes"][DEAD_REASON_ATTRIBUTE]["StringValue"].startswith("bad_envelope:")


def test_the_last_attempt_records_dead_and_sqs_moves_the_message(world: World) -> None:
    # GIVEN a processor that always fails, and the queue's maxReceiveCount of 3 read from its redrive policy
    worker = world.worker(recording_router(world, fail_with=ConnectionError("crm down")))
    world.send(envelope())

    # WHEN it is delivered three times, each after its backoff
    for _ in range(MAX_RECEIVES):
        world.deliver(worker)
        world.clock.tick(301)

    # THEN the status is dead with the last error, and the next receive moves it to the DLQ
    record = world.status.get("evt-1")
    assert record is not None
    assert record["status"] == "dead"
    assert record["attempt"] == MAX_RECEIVES
    assert record["last_error"] == "ConnectionError: crm down"
    assert "maxReceiveCount 3" in record["reason"]
    assert receive_event(world.sqs, world.queue_url)["Records"] == []
    assert visible_count(world.sqs, world.dlq_url) == 1
    assert world.calls == ["evt-1"] * MAX_RECEIVES


def test_fifo_stops_a_group_at_its_first_failure_and_lets_other_groups_go_on(fifo: World) -> None:
    # GIVEN two groups, interleaved, where the first record of group A fails
    router = Router()

    @router.default
    def process(event: Envelope) -> None:
        fifo.calls.append(event.id)
        if event.id == "a1":
            raise ConnectionError("crm down")

    for event_id, group in [("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B")]:
        fifo.send(envelope(event_id), MessageGroupId=group, MessageDeduplicationId=event_id)

    # WHEN the batch is processed
    event, response = fifo.deliver(fifo.worker(router))

    # THEN group B went on, group A stopped at a1 and reports a2 too (its order holds)
    by_id = {json.loads(r["body"])["id"]: r["messageId"] for r in event["Records"]}
    assert fifo.calls == ["a1", "b1", "b2"]
    failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    assert failed == [by_id["a1"], by_id["a2"]]


def test_fifo_permanent_error_goes_to_the_fifo_dlq_and_the_group_goes_on(fifo: World) -> None:
    router = Router()

    @router.default
    def process(event: Envelope) -> None:
        fifo.calls.append(event.id)
        if event.id == "a1":
            raise PermanentError("bad payload")

    for event_id in ("a1", "a2"):
        fifo.send(envelope(event_id), MessageGroupId="A", MessageDeduplicationId=event_id)

    _, response = fifo.deliver(fifo.worker(router))

    assert response == {"batchItemFailures": []}
    assert fifo.calls == ["a1", "a2"]
    [dead] = fifo.sqs.receive_message(QueueUrl=fifo.dlq_url, AttributeNames=["All"])["Messages"]
    assert dead["Attributes"]["MessageGroupId"] == "A"


# -- a batch at a time: what each batch costs -----------------------------------------------


def send_batch(world: World, count: int = 10, prefix: str = "evt") -> None:
    world.sqs.send_message_batch(
        QueueUrl=world.queue_url,
        Entries=[
            {
                "Id": str(n),
                "MessageBody": envelope(f"{prefix}-{n}").to_json(),
                "MessageAttributes": envelope(f"{prefix}-{n}").message_attributes(),
            }
            for n in range(count)
        ],
    )


def test_a_batch_of_ten_costs_a_claim_and_a_completion_per_event_and_nothing_per_record_on_sqs(world: World) -> None:
    # GIVEN ten events, the fourth of which fails
    router = Router()

    @router.default
    def process(event: Envelope) -> dict[str, str]:
        world.calls.append(event.id)
        if event.id == "evt-3":
            raise ConnectionError("crm down")
        return {"ok": event.id}

    worker = world.worker(router)
    send_batch(world)
    world.count_calls()

    # WHEN the batch is processed
    _, response = world.deliver(worker)

    # THEN 9 succeeded and 1 is reported; 2 writes per event (claim, completion) and one SQS call for the batch
    assert len(response["batchItemFailures"]) == 1
    assert sorted(world.calls) == sorted(f"evt-{n}" for n in range(10))
    assert world.worker_calls == Counter({"UpdateItem": 20, "ChangeMessageVisibilityBatch": 1})
    assert world.status.get("evt-3")["status"] == "retrying"  # type: ignore[index]
    assert {world.status.get(f"evt-{n}")["status"] for n in range(10) if n != 3} == {"succeeded"}  # type: ignore[index]


def test_a_duplicate_batch_costs_one_refused_claim_per_event(world: World) -> None:
    worker = world.worker(recording_router(world, result={"ok": True}))
    send_batch(world)
    world.deliver(worker)
    send_batch(world)
    world.count_calls()

    _, response = world.deliver(worker)

    assert response == {"batchItemFailures": []}
    assert len(world.calls) == 10
    assert world.worker_calls == Counter({"UpdateItem": 10})


def test_two_copies_of_an_event_in_one_batch_run_it_once(world: World) -> None:
    worker = world.worker(recording_router(world, result={"n": 1}))
    world.send(envelope())
    world.send(envelope())
    world.count_calls()

    _, response = world.deliver(worker)

    assert response == {"batchItemFailures": []}
    assert world.calls == ["evt-1"]
    assert world.worker_calls == Counter({"UpdateItem": 2})  # one claim and one completion for both copies


def test_a_claim_that_cannot_be_written_is_retried_and_the_processor_does_not_run(world: World) -> None:
    # GIVEN a table that refuses every claim (throttled past the retries, unreachable)
    world.fail("dynamodb", "UpdateItem", lambda params: "#lock_id = :v" in params["UpdateExpression"])
    worker = world.worker(recording_router(world))
    world.send(envelope())

    _, response = world.deliver(worker)

    # THEN the event waits for a claim: reported and retried, never run without one
    assert len(response["batchItemFailures"]) == 1
    assert world.calls == []


def test_a_failed_completion_write_never_fails_a_record_that_succeeded(world: World) -> None:
    # GIVEN a table that takes the claim but fails the success write
    world.fail("dynamodb", "UpdateItem", lambda params: "#completed_at = :v" in params["UpdateExpression"])
    worker = world.worker(recording_router(world, result={"ok": True}))
    world.send(envelope())

    _, response = world.deliver(worker)

    # THEN the record is acknowledged (the processor ran once); the record lags at processing until its lock expires
    assert response == {"batchItemFailures": []}
    assert world.calls == ["evt-1"]
    assert world.status.get("evt-1")["status"] == "processing"  # type: ignore[index]


def test_a_visibility_change_that_fails_leaves_no_false_next_try(world: World) -> None:
    world.fail("sqs", "ChangeMessageVisibilityBatch", lambda params: True)
    worker = world.worker(recording_router(world, fail_with=TimeoutError("slow")))
    world.send(envelope())

    _, response = world.deliver(worker)

    record = world.status.get("evt-1")
    assert len(response["batchItemFailures"]) == 1
    assert record is not None
    assert record["status"] == "retrying"
    assert "next_try_at" not in record  # the message comes back at the queue's visibility timeout instead
    assert "lock_expires_at" not in record


def sqs_answers_one_entry_failed(world: World, operation: str) -> None:
    """SQS accepting a batch call but failing its first entry (its documented per-entry failure)."""
    calls: list[dict[str, Any]] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    def answer(**_: Any) -> Any:
        first, *rest = calls[-1]["Entries"]
        world.sqs.meta.events.unregister(f"before-call.sqs.{operation}", answer)
        taken = world.sqs.send_message_batch(QueueUrl=calls[-1]["QueueUrl"], Entries=rest) if rest else {}
        failed = {"Id": first["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
        return AWSResponse(calls[-1]["QueueUrl"], 200, {}, None), {
            "Successful": taken.get("Successful", []),
            "Failed": [failed],
        }

    world.sqs.meta.events.register(f"before-parameter-build.sqs.{operation}", remember)
    world.sqs.meta.events.register_first(f"before-call.sqs.{operation}", answer)


def test_a_dead_letter_that_sqs_did_not_take_is_reported_not_dropped(world: World) -> None:
    # GIVEN two permanent failures, and SQS failing the first entry of the dead-letter batch
    worker = world.worker(recording_router(world, fail_with=PermanentError("unknown deal")))
    world.send(envelope("evt-1"))
    world.send(envelope("evt-2"))
    event = receive_event(world.sqs, world.queue_url)
    sqs_answers_one_entry_failed(world, "SendMessageBatch")
    first_id = json.loads(event["Records"][0]["body"])["id"]

    # WHEN the batch is processed
    response = worker.handle(event, LambdaContext())

    # THEN the one SQS took is dead and acknowledged; the other is reported, its claim released, not dead
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    statuses = {event_id: world.status.get(event_id)["status"] for event_id in ("evt-1", "evt-2")}  # type: ignore[index]
    assert statuses[first_id] == "retrying"
    assert set(statuses.values()) == {"retrying", "dead"}
    assert visible_count(world.sqs, world.dlq_url) == 1


def test_a_straggler_of_a_dead_events_own_message_is_not_run_and_goes_back_for_sqs_to_move(world: World) -> None:
    # GIVEN a permanent failure dead-lettered, in an invocation that then crashed (no answer: the batch returns)
    worker = world.worker(recording_router(world, fail_with=PermanentError("unknown deal")))
    world.send(envelope())
    event = receive_event(world.sqs, world.queue_url)
    worker.handle(event, LambdaContext())
    world.clock.tick(181)

    # WHEN the same message comes back
    _, response = world.deliver(worker)

    # THEN it is not run again; it is reported and visible at once, so SQS moves it after its last receive
    assert world.calls == ["evt-1"]
    assert len(response["batchItemFailures"]) == 1
    world.clock.tick(1)
    assert visible_count(world.sqs, world.queue_url) == 1
    assert world.status.get("evt-1")["status"] == "dead"  # type: ignore[index]


def test_fifo_releases_the_claims_of_the_records_its_group_skipped(fifo: World) -> None:
    # GIVEN a group whose first record fails
    router = Router()

    @router.default
    def process(event: Envelope) -> None:
        fifo.calls.append(event.id)
        if event.id == "a1":
            raise ConnectionError("crm down")

    for event_id in ("a1", "a2", "a3"):
        fifo.send(envelope(event_id), MessageGroupId="A", MessageDeduplicationId=event_id)

    # WHEN the batch is processed
    _, response = fifo.deliver(fifo.worker(router))

    # THEN a2 and a3 never ran, their claims are released (queued, no lock), and they are reported in order
    assert fifo.calls == ["a1"]
    assert len(response["batchItemFailures"]) == 3
    for event_id in ("a2", "a3"):
        record = fifo.status.get(event_id)
        assert record is not None
        assert (record["status"], record["attempt"]) == ("queued", 0)
        assert "lock_expires_at" not in record
        assert record["history"][-1]["reason"] == "skipped"
