"""Sections 2 to 5 of LOCAL-EMULATION.md: one poll at a time, no threads, a clock the test steps.

Every row that touches a queue runs on moto and on LocalStack (see conftest.py), except the
rows about the visibility timeout itself, which need SQS time stepped: moto only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel

from inqueue_local.clock import FakeClock
from inqueue_local.pipeline import Pipeline
from inqueue_local.poller import decide
from inqueue_local.runtime import FunctionError, Invocation
from tests.local import recorder
from tests.local.conftest import Lane, depth, send

MakePipeline = Callable[..., Pipeline]
WORKER = "Worker.Queue"


# ---------------------------------------------------------------- 2. receiving and batching


def test_window_zero_invokes_at_once_with_what_is_visible_up_to_batch_size(make_pipeline: MakePipeline) -> None:
    # GIVEN 4 messages and BatchSize 3
    pipeline = make_pipeline(BatchSize=3)
    send(pipeline, "Queue", *({"n": i} for i in range(4)))

    # WHEN one poll runs
    result = pipeline.pollers[WORKER].poll_once()

    # THEN one invocation with 3 records; the fourth waits for the next poll
    assert result is not None
    assert len(recorder.calls) == 1
    assert len(recorder.calls[0]["event"]["Records"]) == 3
    assert depth(pipeline, "Queue") == (1, 0)


def test_window_keeps_collecting_until_it_closes(make_pipeline: MakePipeline, clock: FakeClock) -> None:
    # GIVEN a 2 s window and BatchSize 5, one message now and one arriving 1 s into the window
    pipeline = make_pipeline(BatchSize=5, Window=2)
    send(pipeline, "Queue", {"n": 1})
    started = clock.now()
    late = {"sent": False}
    original_sleep = clock.sleep

    def sleep_and_send(seconds: float, stop: Any = None) -> None:
        original_sleep(seconds, stop)
        if clock.now() - started >= 1 and not late["sent"]:
            late["sent"] = True
            send(pipeline, "Queue", {"n": 2})

    clock.sleep = sleep_and_send  # type: ignore[method-assign]

    # WHEN one poll runs
    pipeline.pollers[WORKER].poll_once()

    # THEN both messages are in one batch, invoked once the window closed
    assert [json.loads(r["body"])["n"] for r in recorder.calls[0]["event"]["Records"]] == [1, 2]
    assert clock.now() - started >= 2


def test_window_stops_early_when_the_batch_is_full(make_pipeline: MakePipeline, clock: FakeClock) -> None:
    pipeline = make_pipeline(BatchSize=2, Window=30)
    send(pipeline, "Queue", {"n": 1}, {"n": 2})
    started = clock.now()
    pipeline.pollers[WORKER].poll_once()
    assert len(recorder.calls[0]["event"]["Records"]) == 2
    assert clock.now() == started


def test_the_6_mb_limit_is_on_the_invocation_payload_not_the_raw_bodies(
    make_pipeline: MakePipeline, clock: FakeClock
) -> None:
    # GIVEN 20 messages of 200 KB of quotes: 4 MB of bodies, but each doubles when the event's JSON escapes it
    pipeline = make_pipeline(BatchSize=100, Window=1)
    body = '"' * 200_000
    for _ in range(2):
        send(pipeline, "Queue", *([body] * 10))

    # WHEN one poll collects a batch
    result = pipeline.pollers[WORKER].poll_once()

    # THEN the batch stopped where the event would pass 6 MB (not where the bodies would), and the
    # rest was given back at once for the next batch
    assert result is not None
    taken = len(result.records)
    assert taken < 20
    assert len(json.dumps({"Records": result.records}).encode()) <= 6 * 1024 * 1024
    assert len(json.dumps({"Records": [*result.records, result.records[0]]}).encode()) > 6 * 1024 * 1024
    assert sum(depth(pipeline, "Queue")) == 20 - taken
    clock.advance(0.01)  # moto's "visible at once" is visible from the next instant
    again = pipeline.pollers[WORKER].poll_once()
    assert again is not None
    assert taken + len(again.records) == 20
    assert depth(pipeline, "Queue") == (0, 0)


def test_an_empty_poll_invokes_nothing(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline()
    assert pipeline.pollers[WORKER].poll_once() is None
    assert recorder.calls == []


def test_record_shape_is_lambdas_and_powertools_parses_it(make_pipeline: MakePipeline) -> None:
    # GIVEN a message with string and binary attributes
    pipeline = make_pipeline()
    send(
        pipeline, "Queue", {"n": 1},
        MessageAttributes={
            "source": {"DataType": "String", "StringValue": "demo"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )  # fmt: skip

    # WHEN it is polled
    pipeline.pollers[WORKER].poll_once()

    # THEN the record has every field Lambda sends, strings where Lambda has strings
    (record,) = recorder.calls[0]["event"]["Records"]
    assert set(record) == {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
        "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion",
    }  # fmt: skip
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == pipeline.queues["Queue"].arn
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert all(isinstance(v, str) for v in record["attributes"].values())
    assert record["messageAttributes"]["source"] == {
        "stringValue": "demo", "stringListValues": [], "binaryListValues": [], "dataType": "String",
    }  # fmt: skip
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    SqsRecordModel.model_validate(record)


def test_md5_of_message_attributes_only_when_there_are_attributes(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline()
    send(pipeline, "Queue", {"n": 1})
    pipeline.pollers[WORKER].poll_once()
    (record,) = recorder.calls[0]["event"]["Records"]
    assert "md5OfMessageAttributes" not in record
    assert record["messageAttributes"] == {}
    SqsRecordModel.model_validate(record)


def test_each_receive_counts_and_gets_a_new_receipt_handle(make_pipeline: MakePipeline, lane: Lane) -> None:
    pipeline = make_pipeline(MaxReceiveCount=5)
    send(pipeline, "Queue", {"raise": True})
    first_poll = pipeline.pollers[WORKER].poll_once()
    assert first_poll is not None
    lane.expire(pipeline, "Queue", first_poll.records)
    pipeline.pollers[WORKER].poll_once()
    first, second = (call["event"]["Records"][0] for call in recorder.calls)
    assert (first["attributes"]["ApproximateReceiveCount"], second["attributes"]["ApproximateReceiveCount"]) == (
        "1",
        "2",
    )
    assert first["receiptHandle"] != second["receiptHandle"]
    assert (
        first["attributes"]["ApproximateFirstReceiveTimestamp"]
        == second["attributes"]["ApproximateFirstReceiveTimestamp"]
    )


def test_context_is_fresh_and_counts_down_from_the_template_timeout(
    make_pipeline: MakePipeline, clock: FakeClock
) -> None:
    # GIVEN a 5 s function whose invocation takes 2 s of the clock
    pipeline = make_pipeline(Timeout=5)
    recorder.during_invocation = lambda: clock.advance(2)
    send(pipeline, "Queue", {"n": 1})
    send(pipeline, "Queue", {"n": 2})

    # WHEN two batches run
    pipeline.pollers[WORKER].poll_once()
    recorder.calls.clear()
    pipeline.pollers[WORKER].poll_once()
    send(pipeline, "Queue", {"n": 3})
    pipeline.pollers[WORKER].poll_once()

    # THEN each invocation has its own request id, the template's memory and name, and a countdown
    first = recorder.calls[0]
    assert first["function_name"] == "Worker"
    assert first["memory"] == 512
    assert first["arn"].endswith(":function:Worker")
    assert first["remaining_before"] == 5000
    assert first["remaining_after"] == 3000
    assert len({call["request_id"] for call in recorder.calls}) == len(recorder.calls)


def test_overrunning_the_timeout_is_a_failure(make_pipeline: MakePipeline, clock: FakeClock) -> None:
    # GIVEN an invocation that takes longer than the 5 s timeout and would otherwise succeed
    pipeline = make_pipeline(Timeout=5)
    recorder.during_invocation = lambda: clock.advance(6)
    send(pipeline, "Queue", {"return": None})

    # WHEN it is polled
    result = pipeline.pollers[WORKER].poll_once()

    # THEN the batch failed: nothing deleted
    assert result is not None
    assert result.invocation is not None
    assert result.invocation.timed_out
    assert result.deleted == []
    assert depth(pipeline, "Queue") == (0, 1)


# ---------------------------------------------------------------- 3. after the invocation


def _invocation(result: Any = None, error: FunctionError | None = None) -> Invocation:
    return Invocation("f", "r", cold=False, duration_ms=1.0, result=result, error=error)


IDS = ["a", "b", "c"]


@pytest.mark.parametrize("result", [None, "", {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"other": 1}])
def test_reporting_success_shapes_delete_everything(result: Any) -> None:
    assert decide(IDS, _invocation(result), report_batch_item_failures=True).delete == IDS


def test_listed_failures_are_kept_and_the_rest_deleted() -> None:
    outcome = decide(
        IDS, _invocation({"batchItemFailures": [{"itemIdentifier": "b"}]}), report_batch_item_failures=True
    )
    assert (outcome.delete, outcome.keep) == (["a", "c"], ["b"])


@pytest.mark.parametrize(
    "result",
    [
        {"batchItemFailures": [{"id": "b"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": "zzz"}]},
        {"batchItemFailures": [{"ItemIdentifier": "b"}]},
        {"BatchItemFailures": [{"itemIdentifier": "b"}], "batchItemFailures": ["b"]},
        {"batchItemFailures": "b"},
        ["b"],
        "failed",
        42,
    ],
)
def test_malformed_reports_fail_the_whole_batch(result: Any) -> None:
    outcome = decide(IDS, _invocation(result), report_batch_item_failures=True)
    assert (outcome.delete, outcome.keep) == ([], IDS)


@pytest.mark.parametrize("report", [True, False])
def test_an_error_deletes_nothing(report: bool) -> None:
    outcome = decide(IDS, _invocation(error=FunctionError("RuntimeError", "x")), report_batch_item_failures=report)
    assert (outcome.delete, outcome.keep) == ([], IDS)


def test_without_report_batch_item_failures_a_return_deletes_the_whole_batch() -> None:
    outcome = decide(
        IDS, _invocation({"batchItemFailures": [{"itemIdentifier": "b"}]}), report_batch_item_failures=False
    )
    assert outcome.delete == IDS


@pytest.mark.backends("moto")  # steps SQS time
def test_failed_records_come_back_only_after_the_visibility_timeout(
    make_pipeline: MakePipeline, clock: FakeClock
) -> None:
    # GIVEN a batch of three where the handler reports the second as failed
    pipeline = make_pipeline(Visibility=30)
    send(pipeline, "Queue", {"fail_ids_of_bodies": [2], "n": 1}, {"n": 2}, {"n": 3})
    first = pipeline.pollers[WORKER].poll_once()
    assert first is not None
    assert first.outcome is not None
    assert len(first.deleted) == 2

    # WHEN polled again at once, then after the visibility timeout
    assert pipeline.pollers[WORKER].poll_once() is None
    clock.advance(29)
    assert pipeline.pollers[WORKER].poll_once() is None
    clock.advance(2)
    again = pipeline.pollers[WORKER].poll_once()

    # THEN only the failed record returns, once its visibility timeout expired
    assert again is not None
    assert [json.loads(r["body"]) for r in again.records] == [{"n": 2}]


def test_a_raising_handler_leaves_the_whole_batch_until_visibility_expires(
    make_pipeline: MakePipeline, clock: FakeClock, lane: Lane
) -> None:
    pipeline = make_pipeline()
    send(pipeline, "Queue", {"raise": True}, {"n": 2})
    result = pipeline.pollers[WORKER].poll_once()
    assert result is not None
    assert result.deleted == []
    assert depth(pipeline, "Queue") == (0, 2)
    if lane.steps_backend_time:  # the expiry itself: moto only
        clock.advance(31)
        assert depth(pipeline, "Queue") == (2, 0)


def test_report_off_a_normal_return_deletes_all_even_with_failures_listed(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(Report="false")
    send(pipeline, "Queue", {"fail_ids_of_bodies": [1], "n": 1})
    result = pipeline.pollers[WORKER].poll_once()
    assert result is not None
    assert len(result.deleted) == 1
    assert depth(pipeline, "Queue") == (0, 0)


# ---------------------------------------------------------------- 4. dead-letter queue


def test_dead_lettering_happens_at_receive_time_after_max_receive_count(
    make_pipeline: MakePipeline, lane: Lane
) -> None:
    # GIVEN maxReceiveCount 3 and a handler that always raises
    pipeline = make_pipeline(MaxReceiveCount=3)
    (message_id,) = send(pipeline, "Queue", {"raise": True})

    # WHEN it fails three times, each time after the visibility timeout
    for _ in range(3):
        result = pipeline.pollers[WORKER].poll_once()
        assert result is not None
        lane.expire(pipeline, "Queue", result.records)

    # THEN the handler saw it exactly 3 times, it is still in the source queue until the next receive...
    assert len(recorder.calls) == 3
    assert depth(pipeline, "Dlq") == (0, 0)
    # ... and that receive moves it to the DLQ instead of delivering it, with the same MessageId and body
    assert pipeline.pollers[WORKER].poll_once() is None
    assert len(recorder.calls) == 3
    sqs = pipeline.backend.client("sqs")
    (moved,) = sqs.receive_message(QueueUrl=pipeline.queues["Dlq"].url, MaxNumberOfMessages=10)["Messages"]
    assert moved["MessageId"] == message_id
    assert json.loads(moved["Body"]) == {"raise": True}


def test_the_last_failure_is_logged_as_going_to_the_dead_letter_queue(make_pipeline: MakePipeline, lane: Lane) -> None:
    pipeline = make_pipeline(MaxReceiveCount=2)
    lines: list[str] = []
    pipeline.pollers[WORKER].log = lambda name, line: lines.append(f"{name} | {line}")
    send(pipeline, "Queue", {"raise": True})
    first = pipeline.pollers[WORKER].poll_once()
    assert first is not None
    lane.expire(pipeline, "Queue", first.records)
    second = pipeline.pollers[WORKER].poll_once()
    assert second is not None
    assert any("retry:" in line and "receive 1 of 2" in line for line in lines)
    assert any("dead-letter:" in line and "Dlq" in line for line in lines)
    watch = pipeline.dead_letter_watches()[0]
    lane.expire(pipeline, "Queue", second.records)
    pipeline.pollers[WORKER].poll_once()
    assert watch.check() == 1


def test_the_dead_letter_copy_names_its_source_queue(
    make_pipeline: MakePipeline, lane: Lane, request: pytest.FixtureRequest
) -> None:
    # GIVEN a message that failed its last receive
    lane.xfail_on(request, "moto", "moto 5.2.5 does not set DeadLetterQueueSourceArn")
    pipeline = make_pipeline(MaxReceiveCount=1)
    send(pipeline, "Queue", {"raise": True})
    failed = pipeline.pollers[WORKER].poll_once()
    assert failed is not None
    lane.expire(pipeline, "Queue", failed.records)

    # WHEN the next receive moves it and the DLQ is read
    assert pipeline.pollers[WORKER].poll_once() is None
    sqs = pipeline.backend.client("sqs")
    (moved,) = sqs.receive_message(QueueUrl=pipeline.queues["Dlq"].url, AttributeNames=["All"])["Messages"]

    # THEN it carries the source queue's ARN, as SQS sets it
    assert moved["Attributes"].get("DeadLetterQueueSourceArn") == pipeline.queues["Queue"].arn


def _dead_letter_then_redrive(pipeline: Pipeline, lane: Lane) -> str:
    """Fail a message into the DLQ, then move it back with StartMessageMoveTask (no destination: its source)."""
    (message_id,) = send(pipeline, "Queue", {"raise": True})
    failed = pipeline.pollers[WORKER].poll_once()
    assert failed is not None
    lane.expire(pipeline, "Queue", failed.records)
    assert pipeline.pollers[WORKER].poll_once() is None  # moved to the DLQ at this receive
    sqs = pipeline.backend.client("sqs")
    dlq = pipeline.queues["Dlq"].arn
    sqs.start_message_move_task(SourceArn=dlq)
    # The move is SQS's own background task, on the backend's real time: wait for it as a redrive
    # tool would, bounded (a condition, not a timing: no assertion depends on how long it took).
    task: dict[str, Any] = {}
    for _ in range(200):
        task = sqs.list_message_move_tasks(SourceArn=dlq)["Results"][0]
        if task["Status"] != "RUNNING":
            break
        time.sleep(0.05)
    assert task["Status"] == "COMPLETED", task
    return message_id


def test_a_redriven_message_reaches_the_handler_again(
    make_pipeline: MakePipeline, lane: Lane, request: pytest.FixtureRequest
) -> None:
    # GIVEN a message dead-lettered after its last failure, then redriven from the DLQ
    lane.xfail_on(request, "moto", "moto 5.2.5 has no StartMessageMoveTask")
    pipeline = make_pipeline(MaxReceiveCount=1)
    message_id = _dead_letter_then_redrive(pipeline, lane)
    recorder.calls.clear()

    # WHEN the source queue is polled
    result = pipeline.pollers[WORKER].poll_once()

    # THEN the handler sees it again: same MessageId and body
    assert result is not None
    (record,) = recorder.calls[0]["event"]["Records"]
    assert (record["messageId"], json.loads(record["body"])) == (message_id, {"raise": True})
    assert depth(pipeline, "Dlq") == (0, 0)


def test_a_redriven_message_starts_with_a_fresh_receive_count(
    make_pipeline: MakePipeline, lane: Lane, request: pytest.FixtureRequest
) -> None:
    lane.xfail_on(request, "moto", "moto 5.2.5 has no StartMessageMoveTask")
    lane.xfail_on(request, "localstack", "LocalStack 2026.3.0 keeps counting receives across the move")
    pipeline = make_pipeline(MaxReceiveCount=1)
    _dead_letter_then_redrive(pipeline, lane)
    recorder.calls.clear()
    pipeline.pollers[WORKER].poll_once()
    assert recorder.calls[0]["event"]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1"


# ---------------------------------------------------------------- 1. mapping settings in action


def test_filter_criteria_drop_non_matching_messages_without_an_invocation(make_pipeline: MakePipeline) -> None:
    # GIVEN a filter on body.kind == order and body.total > 10
    pipeline = make_pipeline()
    send(
        pipeline,
        "FilteredQueue",
        {"kind": "order", "total": 50},
        {"kind": "order", "total": 5},
        {"kind": "refund"},
        "not json",
    )

    # WHEN polled
    result = pipeline.pollers["FilteredWorker.Queue"].poll_once()

    # THEN only the matching message reached the handler, and the rest were deleted
    assert result is not None
    assert result.filtered == 3
    assert [json.loads(r["body"]) for r in recorder.calls[0]["event"]["Records"]] == [{"kind": "order", "total": 50}]
    assert depth(pipeline, "FilteredQueue") == (0, 0)


def test_enabled_false_polls_nothing(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(Enabled="false")
    send(pipeline, "Queue", {"n": 1})
    assert pipeline.pollers[WORKER].poll_once() is None
    assert depth(pipeline, "Queue") == (1, 0)


@pytest.mark.backends("moto")  # the mapping's own settings: no queue involved
def test_maximum_concurrency_sets_the_number_of_pollers(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(Concurrency=3)
    sources = {s.function: s for s in pipeline.template.sqs_sources()}
    assert pipeline.poller_count(sources["Worker"]) == 3
    assert pipeline.poller_count(sources["FilteredWorker"]) == 5


def test_environment_resolves_refs_getatts_and_subs_to_local_resources(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline()
    env = pipeline.functions["Worker"].environment
    assert env["SCRIPTED_QUEUE_URL"] == pipeline.queues["Queue"].url
    assert env["QUEUE_ARN"] == pipeline.queues["Queue"].arn
    assert env["TABLE"] == pipeline.refs["Table"]["Ref"]
    assert env["LABEL"] == f"{pipeline.template.stack_name}-{env['TABLE']}"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    ttl = pipeline.backend.client("dynamodb").describe_time_to_live(TableName=env["TABLE"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    pipeline.backend.client("s3").head_bucket(Bucket=env["BUCKET"])


# ---------------------------------------------------------------- 5. FIFO


def test_fifo_keeps_group_order_and_blocks_a_group_in_flight(make_pipeline: MakePipeline, clock: FakeClock) -> None:
    # GIVEN group a: 1, 2 and group b: 3, where a's first fails (reported with every later record of a)
    pipeline = make_pipeline()
    sqs = pipeline.backend.client("sqs")
    url = pipeline.queues["FifoQueue"].url
    for n, group in ((1, "a"), (2, "a"), (3, "b")):
        body = {"n": n, "fail_ids_of_bodies": [1, 2]} if n == 1 else {"n": n}
        # An explicit deduplication id: moto assigns a SequenceNumber only then (SQS always does).
        sqs.send_message(
            QueueUrl=url, MessageBody=json.dumps(body), MessageGroupId=group, MessageDeduplicationId=f"d{n}"
        )

    # WHEN polled
    first = pipeline.pollers["FifoWorker.Queue"].poll_once()

    # THEN one batch mixing groups, in order within each; FIFO attributes are present
    assert first is not None
    assert [json.loads(r["body"])["n"] for r in first.records] == [1, 2, 3]
    assert first.records[0]["attributes"]["MessageGroupId"] == "a"
    assert {"SequenceNumber", "MessageDeduplicationId"} <= set(first.records[0]["attributes"])
    SqsRecordModel.model_validate(first.records[0])
    # group a is blocked while in flight
    assert pipeline.pollers["FifoWorker.Queue"].poll_once() is None


def test_fifo_group_comes_back_in_order_after_a_partial_failure(make_pipeline: MakePipeline, lane: Lane) -> None:
    # GIVEN a group whose first record fails and is reported with every later record of the group
    # (on moto with motoserver.keep_fifo_group_order, as `make run` runs it)
    pipeline = make_pipeline()
    sqs = pipeline.backend.client("sqs")
    url = pipeline.queues["FifoQueue"].url
    for n in (1, 2):
        body = {"n": n, "fail_ids_of_bodies": [1, 2]} if n == 1 else {"n": n}
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body), MessageGroupId="a", MessageDeduplicationId=f"d{n}")
    first = pipeline.pollers["FifoWorker.Queue"].poll_once()
    assert first is not None
    lane.expire(pipeline, "FifoQueue", first.records)
    again = pipeline.pollers["FifoWorker.Queue"].poll_once()
    assert again is not None
    assert [json.loads(r["body"])["n"] for r in again.records] == [1, 2]
