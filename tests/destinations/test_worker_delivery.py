"""Routed events through the worker: real HTTP to an app on 127.0.0.1, moto's SQS and DynamoDB behind it.

Every answer class ends where docs/destinations.md says; a deferral is never an attempt and never
dead-letters an event however often it comes back; a delivery that cannot finish in the
invocation's time is not started; result callbacks go out at the final transitions, and
one that fails is queued as a job without touching its event. Time is frozen and stepped
(freezegun moves moto's visibility clock and the record store's together); the app's
answers are real.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from standardwebhooks import Webhook

from inqueue.destinations import Deliverer, DeliveryLimiter, DestinationsConfigError
from inqueue.destinations.ratelimit import rate_key
from inqueue.envelope import Envelope
from inqueue.retry import Backoff
from inqueue.settings import WorkerSettings
from inqueue.status import StatusStore
from inqueue.worker import DEAD_REASON_ATTRIBUTE, Router, Worker
from inqueue.worker.sqs import ATTEMPTS_ATTRIBUTE, JOB_ATTRIBUTE, Queues
from inqueue_ops import cli
from tests.conftest import drain
from tests.factories import LambdaContext, make_envelope
from tests.tables import STATUS_TABLE, create_queues, create_status_table, receive_event, settle, visible_count

from .conftest import SECRET, SECRET_REF, App, Reply

pytestmark = pytest.mark.enable_socket

MAX_RECEIVES = 3
EVENT_ID = "3f0c8a8e-8f4b-5c1e-a8d1-6b7e2f9c0d11"


@dataclass
class World:
    sqs: Any
    dynamodb: Any
    queue_url: str
    dlq_url: str
    status: StatusStore
    clock: FrozenDateTimeFactory
    make_deliverer: Callable[..., Deliverer]
    processed: list[str] = field(default_factory=list)

    def send(self, envelope: Envelope) -> None:
        self.sqs.send_message(
            QueueUrl=self.queue_url, MessageBody=envelope.to_json(), MessageAttributes=envelope.message_attributes()
        )

    def worker(self, config: dict[str, Any], *, router: Router | None = None, fifo: bool = False, **env: str) -> Worker:
        settings = WorkerSettings.from_env(
            {
                "INQUEUE_STATUS_TABLE": STATUS_TABLE,
                "INQUEUE_QUEUE_URL": self.queue_url,
                "INQUEUE_DLQ_URL": self.dlq_url,
                "INQUEUE_MAX_RECEIVE_COUNT": str(MAX_RECEIVES),
                "INQUEUE_RETRY_BASE_SECONDS": "10",
                "INQUEUE_RETRY_MAX_SECONDS": "300",
                **env,
            }
        )
        # time.time here is freezegun's: the limiter reads the stepped clock (a default argument would not).
        limiter = DeliveryLimiter(STATUS_TABLE, self.dynamodb, clock=time.time, sleep=lambda seconds: None)
        return Worker(
            router or self.router(),
            settings,
            store=self.status,
            queues=Queues(self.queue_url, self.dlq_url, self.sqs),
            backoff=Backoff(10, 300, random=lambda: 0.5),
            clock=time.time,
            deliverer=self.make_deliverer(config, limiter=limiter, clock=time.time),
        )

    def router(self) -> Router:
        router = Router()

        @router.on("demo")
        def process(event: Envelope) -> dict[str, str]:
            self.processed.append(event.id)
            return {"invoice": "INV-1"}

        return router

    def deliver(self, worker: Worker, context: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """One receive, one invocation, then what the event source mapping does with the answer."""
        event = receive_event(self.sqs, self.queue_url)
        try:
            response = worker.handle(event, context or LambdaContext(timeout_ms=30_000))
        except BatchProcessingError:  # every record failed: the invocation fails and nothing is deleted
            response = {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
        settle(self.sqs, self.queue_url, event, response)
        return event, dict(response)

    def record(self, event_id: str = EVENT_ID) -> dict[str, Any]:
        record = self.status.get(event_id)
        assert record is not None
        return record

    def messages(self) -> list[dict[str, Any]]:
        """Every message in the events queue, delayed ones included (time moves past any delay), left in place."""
        self.clock.tick(901)
        found = drain(self.sqs, self.queue_url)
        for message in found:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        self.clock.tick(1)
        return found


@pytest.fixture
def world(deliverer: Callable[..., Deliverer]) -> Iterator[World]:
    # Real time, frozen: the example receiver checks a signature's timestamp against the clock.
    with freeze_time(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())) as clock:
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url, dlq_url = create_queues(sqs, max_receives=MAX_RECEIVES)
        dynamodb = create_status_table()
        yield World(sqs, dynamodb, queue_url, dlq_url, StatusStore(STATUS_TABLE, dynamodb), clock, deliverer)


def bitrix_event(event_id: str = EVENT_ID) -> Envelope:
    return make_envelope(
        event_id,
        source="bitrix24",
        type="ONCRMDEALADD",
        content_type="application/x-www-form-urlencoded",
        body={"event": "ONCRMDEALADD", "data": {"FIELDS": {"ID": "42"}}},
    )


def routed(app: App, **settings: Any) -> dict[str, Any]:
    return {
        "destinations": {"shop": {"url": f"http://127.0.0.1:{app.port}/hooks", "secret": SECRET_REF, **settings}},
        "routes": {"bitrix24": "shop"},
    }


def with_callbacks(config: dict[str, Any], results: App, source: str = "*") -> dict[str, Any]:
    config["destinations"]["results"] = {"url": f"http://127.0.0.1:{results.port}/results", "secret": SECRET_REF}
    config["callbacks"] = {source: "results"}
    return config


@pytest.fixture
def results() -> Iterator[App]:
    server = App()
    yield server
    server.close()


def statuses(record: dict[str, Any]) -> list[str]:
    return [entry["status"] for entry in record["history"]]


# ---------------------------------------------------------------- every answer class


def test_a_2xx_succeeds_and_the_apps_json_becomes_the_result(world: World, app: App) -> None:
    # GIVEN bitrix24 routed to an app that answers JSON
    worker = world.worker(routed(app))
    app.reply(Reply(200, b'{"deal": 42, "status": "created"}'))
    world.send(bitrix_event())

    # WHEN the worker takes the batch
    _, response = world.deliver(worker)

    # THEN the app got the signed event, the message is gone and the record holds the app's answer
    [seen] = app.seen
    payload = Webhook(SECRET).verify(seen.body, seen.headers)
    assert (payload["id"], payload["source"], payload["data"]["data"]["FIELDS"]["ID"]) == (EVENT_ID, "bitrix24", "42")
    assert (seen.headers["webhook-id"], seen.headers["inqueue-attempt"]) == (EVENT_ID, "1")
    assert response == {"batchItemFailures": []}
    assert visible_count(world.sqs, world.queue_url) == 0
    record = world.record()
    assert (record["status"], record["result"], record["attempt"]) == (
        "succeeded",
        {"deal": 42, "status": "created"},
        1,
    )
    assert statuses(record) == ["queued", "processing", "succeeded"]


@pytest.mark.parametrize(
    ("reply", "omitted"),
    [
        (Reply(200, b"OK", {"content-type": "text/plain"}), "not_json"),
        (Reply(200, b'["' + b"x" * 5000 + b'"]'), "too_large"),
    ],
)
def test_a_2xx_without_a_keepable_result_says_why(world: World, app: App, reply: Reply, omitted: str) -> None:
    worker = world.worker(routed(app))
    app.reply(reply)
    world.send(bitrix_event())
    world.deliver(worker)
    record = world.record()
    assert (record["status"], record.get("result"), record["result_omitted"]) == ("succeeded", None, omitted)


def test_a_503_with_retry_after_comes_back_then(world: World, app: App) -> None:
    worker = world.worker(routed(app))
    app.reply(Reply(503, b"busy", {"retry-after": "42"}), Reply(200, b'{"ok": true}'))
    world.send(bitrix_event())
    _, response = world.deliver(worker)

    record = world.record()
    assert record["status"] == "retrying"
    assert "Retry-After 42 s" in record["last_error"]
    assert len(response["batchItemFailures"]) == 1
    world.clock.tick(41)
    assert visible_count(world.sqs, world.queue_url) == 0
    world.clock.tick(2)
    world.deliver(worker)
    assert world.record()["status"] == "succeeded"
    assert [seen.headers["inqueue-attempt"] for seen in app.seen] == ["1", "2"]


def test_a_500_is_retried_with_backoff_then_dead_lettered_by_sqs(world: World, app: App) -> None:
    # GIVEN an app that always answers 500 (the backoff's random is 0.5: 5 s, then 10 s)
    worker = world.worker(routed(app))
    app.reply(*[Reply(500, b'{"error": "down"}')] * MAX_RECEIVES)
    world.send(bitrix_event())

    # WHEN it is delivered until its receives run out
    world.deliver(worker)
    first = world.record()
    world.clock.tick(6)
    world.deliver(worker)
    world.clock.tick(11)
    world.deliver(worker)

    # THEN each try was an attempt after a backoff, the last made it dead, and SQS moved it
    assert first["status"] == "retrying"
    assert "answered 500" in first["last_error"]
    assert [seen.headers["inqueue-attempt"] for seen in app.seen] == ["1", "2", "3"]
    record = world.record()
    assert (record["status"], record["attempt"]) == ("dead", 3)
    assert record["reason"] == "failed 3 times (maxReceiveCount 3)"
    assert statuses(record).count("retrying") == 2
    world.clock.tick(1)
    receive_event(world.sqs, world.queue_url)  # the receive at which SQS moves it
    assert len(drain(world.sqs, world.dlq_url)) == 1


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            Reply(400, b'{"error": "no such deal"}'),
            'destination \'shop\' answered 400 Bad Request: {"error": "no such deal"}',
        ),
        (Reply(301, b"", {"location": "https://new.example.com/"}), "answered 301"),
    ],
)
def test_a_4xx_is_dead_lettered_at_once_with_the_status_and_an_excerpt(
    world: World, app: App, reply: Reply, reason: str
) -> None:
    worker = world.worker(routed(app))
    app.reply(reply)
    world.send(bitrix_event())
    _, response = world.deliver(worker)

    assert response == {"batchItemFailures": []}
    record = world.record()
    assert record["status"] == "dead"
    assert reason in record["reason"]
    [letter] = drain(world.sqs, world.dlq_url)
    assert reason in letter["MessageAttributes"][DEAD_REASON_ATTRIBUTE]["StringValue"]


def test_an_address_deliveries_may_not_reach_is_dead_lettered(
    world: World, deliverer: Callable[..., Deliverer]
) -> None:
    # GIVEN a deliverer that, as in Lambda, may not reach loopback
    world.make_deliverer = lambda config, **kw: deliverer(config, allow_loopback=False, **kw)
    worker = world.worker(routed_to_url("http://127.0.0.1:9/hooks"))
    world.send(bitrix_event())
    world.deliver(worker)
    record = world.record()
    assert (record["status"], "loopback address, refused" in record["reason"]) == ("dead", True)


def test_no_answer_is_retried(world: World) -> None:
    worker = world.worker(routed_to_url("http://127.0.0.1:9/hooks", timeout=1))  # nothing listens on port 9
    world.send(bitrix_event())
    _, response = world.deliver(worker)
    record = world.record()
    assert (record["status"], "could not connect" in record["last_error"]) == ("retrying", True)
    assert len(response["batchItemFailures"]) == 1


def routed_to_url(url: str, **settings: Any) -> dict[str, Any]:
    return {"destinations": {"shop": {"url": url, "secret": SECRET_REF, **settings}}, "routes": {"bitrix24": "shop"}}


def test_a_source_with_processors_keeps_them_beside_a_routed_one(world: World, app: App) -> None:
    worker = world.worker(routed(app))
    world.send(make_envelope("evt-demo", source="demo"))
    world.send(bitrix_event())
    world.deliver(worker)
    assert world.processed == ["evt-demo"]
    assert len(app.seen) == 1
    assert world.record("evt-demo")["result"] == {"invoice": "INV-1"}


def test_routing_a_source_that_has_named_processors_is_refused_at_start(world: World, app: App) -> None:
    config = routed(app)
    config["routes"]["demo"] = "shop"
    with pytest.raises(DestinationsConfigError, match="demo are routed"):
        world.worker(config)


def test_a_catch_all_route_leaves_sources_with_processors_to_them(world: World, app: App) -> None:
    config = routed(app)
    config["routes"] = {"*": "shop"}
    worker = world.worker(config)
    world.send(make_envelope("evt-demo", source="demo"))
    world.send(bitrix_event())
    world.deliver(worker)
    assert world.processed == ["evt-demo"]
    assert [json.loads(seen.body)["source"] for seen in app.seen] == ["bitrix24"]


# ---------------------------------------------------------------- deferrals


def hold_the_rate(world: World, seconds: float) -> None:
    """The destination's next free slot is this far ahead (as if other workers had taken every one before it)."""
    world.dynamodb.put_item(
        TableName=STATUS_TABLE,
        Item={"id": {"S": rate_key("shop")}, "tat": {"N": f"{time.time() + seconds:.6f}"}, "kind": {"S": "rate"}},
    )


def test_a_deferred_event_outlives_max_receive_count_receives_and_is_delivered_when_a_slot_frees(
    world: World, app: App
) -> None:
    # GIVEN a rate-limited destination whose slots are taken until just after the 6th receive below
    receives = 2 * MAX_RECEIVES
    worker = world.worker(routed(app, rate=1))
    hold_the_rate(world, receives * 901 - 1)
    world.send(bitrix_event())

    # WHEN the event is received twice as many times as maxReceiveCount allows
    for _ in range(receives):
        _, response = world.deliver(worker)
        assert response == {"batchItemFailures": []}  # the original is acknowledged: its copy carries on
        world.clock.tick(901)

    # THEN nothing was sent, it is not dead, and its record says deferred (no attempt) with one history entry for it
    assert app.seen == []
    assert drain(world.sqs, world.dlq_url) == []
    record = world.record()
    assert (record["status"], record["attempt"], record["deferrals"]) == ("deferred", 0, 2 * MAX_RECEIVES)
    assert statuses(record) == ["queued", "deferred"]
    assert "rate has no free slot" in record["history"][-1]["reason"]
    assert record["history"][-1]["deferrals"] == 2 * MAX_RECEIVES

    # WHEN the slots free up, THEN it is delivered as its first attempt, from a copy SQS has counted once
    event, _ = world.deliver(worker)
    [copy] = event["Records"]
    assert copy["messageAttributes"][ATTEMPTS_ATTRIBUTE]["stringValue"] == "0"
    assert copy["attributes"]["ApproximateReceiveCount"] == "1"
    assert [seen.headers["inqueue-attempt"] for seen in app.seen] == ["1"]
    record = world.record()
    assert (record["status"], record["attempt"], record["deferrals"]) == ("succeeded", 1, 2 * MAX_RECEIVES)
    assert statuses(record) == ["queued", "deferred", "processing", "succeeded"]


def test_a_copy_counts_the_attempts_made_before_it_and_is_dead_lettered_by_the_worker_when_they_run_out(
    world: World, app: App
) -> None:
    # GIVEN an app that fails, and a rate limit that defers the second try
    worker = world.worker(routed(app, rate=1))
    app.reply(*[Reply(500, b"down")] * MAX_RECEIVES)
    world.send(bitrix_event())
    world.deliver(worker)  # attempt 1: 500
    world.clock.tick(6)
    hold_the_rate(world, 30)
    world.deliver(worker)  # deferred: a copy carrying 1 attempt
    world.dynamodb.delete_item(TableName=STATUS_TABLE, Key={"id": {"S": rate_key("shop")}})
    world.clock.tick(901)

    # WHEN the copy is tried until the attempts run out (its own receive count is still below maxReceiveCount)
    world.deliver(worker)  # attempt 2: 500
    world.clock.tick(11)
    _, response = world.deliver(worker)  # attempt 3: 500, the last

    # THEN the attempts were counted across the copy, and the worker itself dead-lettered it
    assert [seen.headers["inqueue-attempt"] for seen in app.seen] == ["1", "2", "3"]
    assert response == {"batchItemFailures": []}
    record = world.record()
    assert (record["status"], record["attempt"], record["reason"]) == ("dead", 3, "failed 3 times (maxReceiveCount 3)")
    assert "answered 500" in record["last_error"]
    [letter] = drain(world.sqs, world.dlq_url)
    assert ATTEMPTS_ATTRIBUTE not in letter["MessageAttributes"]  # a redrive starts the attempts again
    assert letter["MessageAttributes"]["dead_attempts"]["StringValue"] == "3"
    assert world.messages() == []


def test_the_batchs_later_records_for_a_full_destination_are_deferred_without_asking_again_and_spread_out(
    world: World, app: App
) -> None:
    worker = world.worker(routed(app, rate=1))
    hold_the_rate(world, 10)
    for n in range(4):
        world.send(bitrix_event(f"evt-{n}"))
    calls: Counter[str] = Counter()
    world.dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", lambda **kw: calls.update(["UpdateItem"]))

    world.deliver(worker)

    delays = sorted(
        int(world.record(f"evt-{n}")["history"][-1]["next_try_at"][17:19]) for n in range(4)
    )  # seconds past the minute: enough to see the spread
    assert app.seen == []
    # 4 claims + 4 deferral writes + 1 limiter write (the first record's); the other three asked nobody
    assert calls["UpdateItem"] == 9
    assert len(set(delays)) == 4, delays


def test_a_fifo_deferral_is_a_visibility_change_the_group_waits_on(
    aws: None, deliverer: Callable[..., Deliverer], app: App
) -> None:
    with freeze_time(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())) as clock:
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url, dlq_url = create_queues(sqs, fifo=True, max_receives=MAX_RECEIVES)
        dynamodb = create_status_table()
        world = World(sqs, dynamodb, queue_url, dlq_url, StatusStore(STATUS_TABLE, dynamodb), clock, deliverer)
        worker = world.worker(routed(app, rate=1, timeout=2))
        hold_the_rate(world, 60)
        for n in range(2):
            envelope = bitrix_event(f"evt-{n}")
            sqs.send_message(
                QueueUrl=queue_url, MessageBody=envelope.to_json(), MessageAttributes=envelope.message_attributes(),
                MessageGroupId="portal-1", MessageDeduplicationId=envelope.id,
            )  # fmt: skip

        _, response = world.deliver(worker, LambdaContext(timeout_ms=10_000))

        # THEN the first is deferred in place (its group's second is skipped behind it), both reported, and
        # the first's receive counts (SQS will count it towards maxReceiveCount)
        assert len(response["batchItemFailures"]) == 2
        first = world.record("evt-0")
        assert (first["status"], first["attempt"], first["deferrals"]) == ("deferred", 1, 1)
        assert world.record("evt-1")["status"] == "queued"
        assert app.seen == []


# ---------------------------------------------------------------- the invocation's time


class Deadline:
    """A Lambda context whose remaining time drops by ``per_request`` ms each time the app answers."""

    def __init__(self, app: App, start_ms: int, per_request_ms: int):
        self.app, self.start_ms, self.per_request_ms = app, start_ms, per_request_ms
        self.aws_request_id = "req-deadline"

    def get_remaining_time_in_millis(self) -> int:
        return self.start_ms - self.per_request_ms * len(self.app.seen)


def test_a_delivery_that_cannot_finish_before_the_deadline_is_not_started_but_deferred(world: World, app: App) -> None:
    # GIVEN deliveries that may take 2 x 2 s + 2 s, 20 s left, and an app whose answers take 8 s each
    worker = world.worker(routed(app, timeout=2))
    for n in range(3):
        world.send(bitrix_event(f"evt-{n}"))

    # WHEN the batch runs
    _, response = world.deliver(worker, Deadline(app, 20_000, 8_000))

    # THEN two were delivered and the third, with 4 s left, was not started: deferred, not an attempt
    assert response == {"batchItemFailures": []}
    assert len(app.seen) == 2
    done = [world.record(f"evt-{n}")["status"] for n in range(3)]
    assert sorted(done) == ["deferred", "succeeded", "succeeded"]
    [late] = [f"evt-{n}" for n in range(3) if done[n] == "deferred"]
    record = world.record(late)
    assert (record["attempt"], "4.0 s left" in record["history"][-1]["reason"]) == (0, True)
    # AND its copy is due at once, for an invocation with time
    world.clock.tick(1)
    event, _ = world.deliver(worker)
    assert [json.loads(r["body"])["id"] for r in event["Records"]] == [late]
    assert world.record(late)["status"] == "succeeded"
    assert app.seen[-1].headers["inqueue-attempt"] == "1"


def test_a_delivery_that_could_never_fit_in_an_invocation_is_an_attempt_not_a_deferral(world: World, app: App) -> None:
    worker = world.worker(routed(app, timeout=5))
    world.send(bitrix_event())
    world.deliver(worker, LambdaContext(timeout_ms=10_000))
    record = world.record()
    assert (record["status"], record["attempt"]) == ("retrying", 1)
    assert "may take 12 s" in record["last_error"]
    assert app.seen == []


def test_a_destination_that_cannot_fit_in_the_workers_timeout_is_refused_at_start(world: World, app: App) -> None:
    with pytest.raises(DestinationsConfigError, match=r"'shop': a delivery may take 22 s .* worker's 22 s timeout"):
        world.worker(routed(app), INQUEUE_WORKER_TIMEOUT_SECONDS="22")
    world.worker(routed(app), INQUEUE_WORKER_TIMEOUT_SECONDS="23")


# ---------------------------------------------------------------- result callbacks


def test_a_success_is_called_back_signed_with_the_apps_answer(world: World, app: App, results: App) -> None:
    worker = world.worker(with_callbacks(routed(app), results))
    app.reply(Reply(200, b'{"deal": 42}'))
    world.send(bitrix_event())

    world.deliver(worker)

    [seen] = results.seen
    callback = Webhook(SECRET).verify(seen.body, seen.headers)
    assert seen.headers["webhook-id"] == f"{EVENT_ID}.succeeded.1"
    assert callback["type"] == "inqueue.event.succeeded"
    assert callback["timestamp"] == world.record()["completed_at"]
    assert callback["data"] == {
        "id": EVENT_ID, "source": "bitrix24", "type": "ONCRMDEALADD", "status": "succeeded", "attempts": 1,
        "correlation_id": "corr-1", "result": {"deal": 42}, "result_omitted": None, "reason": None,
    }  # fmt: skip


def test_a_dead_event_and_a_processor_sources_success_are_called_back_too(world: World, app: App, results: App) -> None:
    worker = world.worker(with_callbacks(routed(app), results))
    app.reply(Reply(400, b"no such deal"))
    world.send(bitrix_event())
    world.send(make_envelope("evt-demo", source="demo"))

    world.deliver(worker)

    by_id = {json.loads(seen.body)["data"]["id"]: json.loads(seen.body) for seen in results.seen}
    assert by_id[EVENT_ID]["type"] == "inqueue.event.dead"
    assert "answered 400" in by_id[EVENT_ID]["data"]["reason"]
    assert by_id["evt-demo"]["data"]["result"] == {"invoice": "INV-1"}


def test_a_failed_callback_is_queued_as_a_job_and_never_changes_its_event(world: World, app: App, results: App) -> None:
    # GIVEN a callback endpoint that fails its first try
    worker = world.worker(with_callbacks(routed(app), results))
    results.reply(Reply(500, b"down"), Reply(200, b"{}"))
    world.send(bitrix_event())

    # WHEN the event succeeds
    world.deliver(worker)

    # THEN the event is succeeded regardless
    record = world.record()
    assert record["status"] == "succeeded"

    # WHEN the callback job queued for it is received
    world.clock.tick(1)
    event, response = world.deliver(worker)

    # THEN the callback goes out again: the same id and body, a fresh signature; the event is untouched
    [job] = event["Records"]
    assert job["messageAttributes"][JOB_ATTRIBUTE]["stringValue"] == "callback"
    assert "event_id" not in job["messageAttributes"]  # an operator's redrive of it never touches the event
    assert response == {"batchItemFailures": []}
    first, second = results.seen
    assert second.headers["webhook-id"] == first.headers["webhook-id"] == f"{EVENT_ID}.succeeded.1"
    assert second.body == first.body
    Webhook(SECRET).verify(second.body, second.headers)
    assert world.record() == record
    assert world.messages() == []


def test_a_callback_the_endpoint_refuses_is_not_retried(world: World, app: App, results: App) -> None:
    worker = world.worker(with_callbacks(routed(app), results))
    results.reply(Reply(404, b"no such route"))
    world.send(bitrix_event())
    world.deliver(worker)
    assert world.record()["status"] == "succeeded"
    assert len(results.seen) == 1
    assert world.messages() == []


def test_a_redelivery_of_a_completed_event_repeats_its_callback_identically(
    world: World, app: App, results: App
) -> None:
    # GIVEN an event that succeeded and was called back (an invocation may die right after its final write)
    worker = world.worker(with_callbacks(routed(app), results))
    world.send(bitrix_event())
    world.deliver(worker)

    # WHEN the same event is delivered again
    world.clock.tick(60)
    world.send(bitrix_event())
    world.deliver(worker)

    # THEN the app was not called again and the callback was repeated byte for byte (the receiver dedups on its id)
    assert len(app.seen) == 1
    first, second = results.seen
    assert (second.headers["webhook-id"], second.body) == (first.headers["webhook-id"], first.body)


def test_a_deferral_shows_in_get_events_and_in_the_cli(world: World, app: App) -> None:
    # GIVEN an event deferred by its destination's rate
    worker = world.worker(routed(app, rate=1))
    hold_the_rate(world, 3600)
    world.send(bitrix_event())
    world.deliver(worker)

    # WHEN a caller asks GET /events/{id}, and an operator runs inqueue status
    from inqueue.status_api import StatusApi
    from tests.unit.test_status_api import status_event

    answer = StatusApi(world.status).handle(status_event(EVENT_ID), LambdaContext())
    out = io.StringIO()
    where = ["--status-table", STATUS_TABLE, "--queue-url", world.queue_url, "--dlq-url", world.dlq_url]
    code = cli.main(
        ["status", EVENT_ID, *where], env={}, out=out, err=io.StringIO(),
        clients=lambda service, targets: boto3.client(service, region_name="us-east-1"),
    )  # fmt: skip

    # THEN both say deferred: not final, when it comes back, how often, and why
    view = json.loads(answer["body"])
    assert (answer["statusCode"], view["status"], view["final"], view["deferrals"]) == (200, "deferred", False, 1)
    assert view["next_try_at"] == view["history"][-1]["next_try_at"]
    assert "rate has no free slot" in view["history"][-1]["reason"]
    shown = out.getvalue()
    assert code == 0
    assert "deferred" in shown
    assert "deferrals" in shown
