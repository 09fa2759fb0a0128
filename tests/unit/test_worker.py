"""Worker: routing, per-record failures through Powertools' BatchProcessor."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from tests.factories import DLQ_URL, QUEUE_URL, LambdaContext, load_event, make_envelope, sqs_record, worker_settings

from inqueue.envelope import Envelope
from inqueue.worker import Router, Worker

ROOT = Path(__file__).resolve().parents[2]


def envelope_json(source: str = "demo", type_: str = "order.created", **body: Any) -> str:
    return make_envelope(f"evt-{source}-{type_}", source=source, type=type_, body=body).to_json()


def test_a_failing_record_is_reported_by_its_message_id_and_the_rest_succeed(aws: None) -> None:
    # GIVEN a processor that fails for one order
    router = Router()
    seen: list[int] = []

    @router.on("demo", "order.created")
    def process(event: Envelope) -> None:
        if event.body["n"] == 2:
            raise RuntimeError("downstream said no")
        seen.append(event.body["n"])

    batch = {"Records": [sqs_record(envelope_json(n=n), message_id=f"m{n}") for n in (1, 2, 3)]}

    # WHEN the batch is processed
    response = Worker(router, worker_settings()).handle(batch, LambdaContext())

    # THEN only m2 is reported, and the others were processed
    assert response == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert seen == [1, 3]


def test_an_all_failed_batch_fails_the_invocation(aws: None) -> None:
    router = Router()
    router.default(lambda event: (_ for _ in ()).throw(RuntimeError("down")))
    batch = {"Records": [sqs_record(envelope_json(n=n), message_id=f"m{n}") for n in (1, 2)]}

    with pytest.raises(BatchProcessingError):
        Worker(router, worker_settings()).handle(batch, LambdaContext())


def test_a_bad_message_is_reported_when_the_dead_letter_queue_cannot_take_it(aws: None) -> None:
    # With a dead-letter queue it goes there at once (test_worker_guarantees); when the send fails it is
    # never dropped: it stays reported until a later receive reaches the dead-letter queue.
    batch = {"Records": [sqs_record("not json", message_id="bad"), sqs_record(envelope_json(), message_id="ok")]}

    assert Worker(Router(), worker_settings()).handle(batch, LambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": "bad"}]
    }


def test_routes_prefer_the_most_specific_match() -> None:
    router = Router()
    calls: list[str] = []
    router.on("github", "push")(lambda e: calls.append("github/push"))
    router.on("github")(lambda e: calls.append("github/*"))
    router.on(type="ping")(lambda e: calls.append("*/ping"))
    router.on()(lambda e: calls.append("*/*"))

    for source, type_ in [("github", "push"), ("github", "issues"), ("stripe", "ping"), ("stripe", "charge")]:
        router.resolve(source, type_)(Envelope.from_json(envelope_json(source, type_)))

    assert calls == ["github/push", "github/*", "*/ping", "*/*"]


def test_registering_the_same_route_twice_is_refused() -> None:
    router = Router()
    router.on("demo", "x")(print)

    with pytest.raises(ValueError, match="already registered"):
        router.on("demo", "x")(print)


def test_unrouted_events_are_acknowledged_by_default() -> None:
    batch = {"Records": [sqs_record(envelope_json("nobody", "unknown"), message_id="m1")]}

    assert Worker(Router(), worker_settings()).handle(batch, LambdaContext()) == {"batchItemFailures": []}


def load_function(name: str) -> Any:
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"{name}_app", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worker_entry_point_processes_the_example_batch_twice(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The template always sets these; there is no status table here, so nothing is claimed.
    for name, value in {
        "INQUEUE_QUEUE_URL": QUEUE_URL,
        "INQUEUE_DLQ_URL": DLQ_URL,
        "INQUEUE_MAX_RECEIVE_COUNT": "5",
    }.items():
        monkeypatch.setenv(name, value)
    app = load_function("worker")
    batch = load_event("sqs-batch.json")

    # A cold call, then a warm one in the same container.
    assert app.lambda_handler(batch, LambdaContext(request_id="r1")) == {"batchItemFailures": []}
    assert app.lambda_handler(batch, LambdaContext(request_id="r2")) == {"batchItemFailures": []}

    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    # One value per batch (its Sum is the number of records processed), one EMF line per invocation.
    assert [m["Processed"] for m in metrics] == [[2.0], [2.0]]


def test_ingress_entry_point_queues_the_example_event(ingress_env: dict[str, str], sqs: Any, queue_url: str) -> None:
    app = load_function("ingress")

    first = app.lambda_handler(load_event("apigw-demo-form.json"), LambdaContext(request_id="r1"))
    second = app.lambda_handler(load_event("apigw-demo-json.json"), LambdaContext(request_id="r2"))

    assert (first["statusCode"], second["statusCode"]) == (202, 202)
    count = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert count["Attributes"]["ApproximateNumberOfMessages"] == "2"
