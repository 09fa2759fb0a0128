"""Worker: log lines carry their record's ids and none outlives its batch; counts are emitted once a batch."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from tests.factories import LambdaContext, make_envelope, sqs_record, worker_settings

from inqueue.envelope import Envelope
from inqueue.observability import logger, metrics
from inqueue.worker import Router, Worker


def envelope_json(n: int) -> str:
    return make_envelope(f"evt-{n}", body={"n": n}, correlation_id=f"corr-{n}").to_json()


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[dict[str, Any]]]:
    """The worker's log lines as written, keys included (the handler's stream, whatever stdout is now)."""
    written = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", written)
    return lambda: [json.loads(line) for line in written.getvalue().splitlines()]


def test_each_processor_log_line_carries_its_own_records_ids(
    aws: None, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN a processor that logs, and fails for the second of three records
    router = Router()

    @router.on("demo")
    def process(event: Envelope) -> None:
        logger.info("working", extra={"n": event.body["n"]})
        if event.body["n"] == 2:
            raise RuntimeError("downstream said no")

    batch = {"Records": [sqs_record(envelope_json(n), message_id=f"m{n}", receive_count=n) for n in (1, 2, 3)]}

    # WHEN the batch is processed
    response = Worker(router, worker_settings()).handle(batch, LambdaContext())

    # THEN each line has its record's correlation id, event id, message id and attempt, the failure's too
    assert response == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    lines = [line for line in log_lines() if "n" in line or line["message"] == "processing failed; retrying"]
    assert [
        (line["message"], line["correlation_id"], line["event_id"], line["message_id"], line["attempt"])
        for line in lines
    ] == [
        ("working", "corr-1", "evt-1", "m1", 1),
        ("working", "corr-2", "evt-2", "m2", 2),
        ("processing failed; retrying", "corr-2", "evt-2", "m2", 2),
        ("working", "corr-3", "evt-3", "m3", 3),
    ]
    # AND once the batch is done, no record's keys remain on the logger
    assert not {"correlation_id", "event_id", "message_id", "attempt"} & set(logger.get_current_keys())


def test_a_bad_envelope_line_does_not_carry_the_previous_records_ids(
    aws: None, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN a good record followed by a message that is not an envelope
    batch = {"Records": [sqs_record(envelope_json(1), message_id="m1"), sqs_record("not json", message_id="m2")]}

    # WHEN the batch is processed (no dead-letter queue is known, so the bad one is reported)
    response = Worker(Router(), worker_settings()).handle(batch, LambdaContext())

    # THEN the line about the bad message names it, and not the good record before it
    assert response == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    [bad] = [line for line in log_lines() if line["message"] == "not an envelope"]
    assert bad["message_id"] == "m2"
    assert "correlation_id" not in bad
    assert bad.get("event_id") is None


def test_outcomes_are_counted_once_a_batch_even_when_every_record_failed(aws: None) -> None:
    # GIVEN a processor that fails for one order in three, then for every order
    router = Router()

    @router.on("demo")
    def process(event: Envelope) -> None:
        if event.body["n"] == 2 or event.body["n"] > 3:
            raise RuntimeError("downstream said no")

    worker = Worker(router, worker_settings())

    # WHEN a mixed batch, then an all-failed batch (which fails the invocation), are processed
    worker.handle({"Records": [sqs_record(envelope_json(n), message_id=f"m{n}") for n in (1, 2, 3)]}, LambdaContext())
    with pytest.raises(BatchProcessingError):
        worker.handle({"Records": [sqs_record(envelope_json(n), message_id=f"m{n}") for n in (4, 5)]}, LambdaContext())

    # THEN each batch added one value per outcome, whose sum is the number of records
    assert metrics.metric_set["Processed"]["Value"] == [2.0]
    assert metrics.metric_set["Failed"]["Value"] == [1.0, 2.0]
