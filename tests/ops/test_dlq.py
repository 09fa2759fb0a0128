"""The ``inqueue`` CLI against moto's in-process SQS and DynamoDB: list, show, redrive, replay, purge, status."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from inqueue.envelope import Envelope
from inqueue.status import StatusStore
from inqueue_ops import cli
from inqueue_ops.dlq import DeadLetters, MoveTaskRunning
from tests.factories import make_envelope
from tests.tables import STATUS_TABLE, create_status_table

MAX_RECEIVES = 3
NOW = 1_795_420_800.0  # 2026-11-23T08:00:00Z, an hour after the envelopes below were received


class FakeStatus:
    """A dict standing in for the DynamoDB status store behind the same two calls."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def get(self, event_id: str) -> Mapping[str, Any] | None:
        return self.records.get(event_id)

    def mark_queued(self, event_id: str) -> None:
        self.records[event_id] = {**self.records.get(event_id, {}), "status": "queued", "attempt": 0}


@pytest.fixture
def queues(sqs: Any) -> dict[str, str]:
    dlq_url = sqs.create_queue(QueueName="inqueue-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})
    queue_url = sqs.create_queue(
        QueueName="inqueue-events", Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "0"}
    )["QueueUrl"]
    return {"queue": queue_url, "dlq": dlq_url}


def envelope(n: int, source: str = "demo") -> Envelope:
    return make_envelope(
        f"evt-{n}", source=source, received_at="2026-11-23T07:00:00.000Z", body={"n": n}, correlation_id=f"corr-{n}"
    )


def kill(sqs: Any, queues: dict[str, str], *envelopes: Envelope) -> None:
    """Send each envelope and receive it past maxReceiveCount, so SQS moves it to the DLQ as in production."""
    for item in envelopes:
        sqs.send_message(
            QueueUrl=queues["queue"], MessageBody=item.to_json(), MessageAttributes=item.message_attributes()
        )
    for _ in range(MAX_RECEIVES + 1):
        sqs.receive_message(QueueUrl=queues["queue"], MaxNumberOfMessages=10, VisibilityTimeout=0)


def visible(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    ).get("Messages", [])
    return list(messages)


def run(*argv: str, status: FakeStatus | None = None, queues: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()

    def clients(service: str, targets: cli.Targets) -> Any:
        return boto3.client(service, region_name="us-east-1")

    code = cli.main(
        [*argv, "--queue-url", queues["queue"], "--dlq-url", queues["dlq"], "--poll-wait", "0"],
        env={},
        clients=clients,
        out=out,
        clock=lambda: NOW,
        stores=lambda targets, factory: status,
    )
    return code, out.getvalue()


def test_list_shows_each_dead_letter_with_source_type_receives_and_age(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN two events that failed maxReceiveCount times, one with a recorded reason
    kill(sqs, queues, envelope(1), envelope(2, source="github"))
    status = FakeStatus()
    status.records["evt-1"] = {"status": "dead", "attempt": 3, "last_error": "RuntimeError: downstream said no"}

    # WHEN the operator lists the DLQ as JSON
    code, output = run("dlq", "list", "--json", status=status, queues=queues)

    # THEN both are listed with what is needed to decide, and nothing was consumed
    rows = {row["id"]: row for row in json.loads(output)}
    assert code == 0
    assert set(rows) == {"evt-1", "evt-2"}
    assert rows["evt-1"]["reason"] == "RuntimeError: downstream said no"
    assert rows["evt-1"]["attempts"] == 3
    assert rows["evt-2"]["source"] == "github"
    assert rows["evt-2"]["receives"] == MAX_RECEIVES
    assert rows["evt-1"]["age_seconds"] == 3600
    assert len(visible(sqs, queues["dlq"])) == 2


def test_list_as_a_table_names_the_columns(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))

    code, output = run("dlq", "list", queues=queues)

    assert code == 0
    header, row, total = output.splitlines()
    assert header.split() == ["ID", "SOURCE", "TYPE", "RECEIVES", "ATTEMPTS", "AGE", "REASON"]
    assert row.startswith("evt-1  demo")
    assert total == "1 dead letter(s)"


def test_an_empty_dlq_says_so(queues: dict[str, str]) -> None:
    code, output = run("dlq", "list", queues=queues)

    assert (code, output) == (0, "the dead-letter queue is empty\n")


def test_show_prints_the_full_envelope_by_event_id(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1), envelope(2))

    code, output = run("dlq", "show", "evt-2", queues=queues)

    shown = json.loads(output)
    assert code == 0
    assert shown["envelope"]["body"] == {"n": 2}
    assert shown["message_attributes"]["event_id"] == "evt-2"


def test_show_of_an_unknown_id_fails_with_a_message(sqs: Any, queues: dict[str, str], capsys: Any) -> None:
    kill(sqs, queues, envelope(1))

    code, _ = run("dlq", "show", "evt-404", queues=queues)

    assert code == 1
    assert "evt-404" in capsys.readouterr().err


def test_redrive_all_falls_back_to_send_and_delete_on_moto_and_restarts_the_receive_count(
    sqs: Any, queues: dict[str, str]
) -> None:
    # GIVEN two dead events whose status says dead (moto has no StartMessageMoveTask)
    kill(sqs, queues, envelope(1), envelope(2))
    status = FakeStatus()
    status.records = {f"evt-{n}": {"status": "dead", "attempt": 3} for n in (1, 2)}

    # WHEN the operator redrives everything
    code, output = run("dlq", "redrive", "--all", "--json", status=status, queues=queues)

    # THEN the messages are back in the events queue as new messages, first receive, and the status is queued
    result = json.loads(output)
    assert code == 0
    assert result["method"] == "receive-send-delete"
    assert visible(sqs, queues["dlq"]) == []
    back = visible(sqs, queues["queue"])
    assert sorted(json.loads(m["Body"])["id"] for m in back) == ["evt-1", "evt-2"]
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in back} == {"1"}
    assert {m["MessageAttributes"]["source"]["StringValue"] for m in back} == {"demo"}
    assert status.records["evt-1"] == {"status": "queued", "attempt": 0}


def test_a_redriven_event_gets_the_full_max_receive_count_again(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN a redriven event
    kill(sqs, queues, envelope(1))
    run("dlq", "redrive", "evt-1", queues=queues)

    # WHEN it is received maxReceiveCount times more
    counts = []
    for _ in range(MAX_RECEIVES):
        counts += [m["Attributes"]["ApproximateReceiveCount"] for m in visible(sqs, queues["queue"])]

    # THEN every one of those receives delivered it: it starts at 1, it did not go straight back to the DLQ
    assert counts == ["1", "2", "3"]


def test_redrive_by_id_moves_only_those_and_reports_unknown_ids(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1), envelope(2), envelope(3))

    code, output = run("dlq", "redrive", "evt-1", "evt-3", "evt-9", "--json", queues=queues)

    result = json.loads(output)
    assert code == 1  # one id was not found
    assert sorted(m["id"] for m in result["moved"]) == ["evt-1", "evt-3"]
    assert result["missing"] == ["evt-9"]
    assert [json.loads(m["Body"])["id"] for m in visible(sqs, queues["dlq"])] == ["evt-2"]


class MoveTaskSqs:
    """moto's SQS plus the move-task calls it lacks, answered as AWS documents them."""

    def __init__(self, sqs: Any, tasks: list[dict[str, Any]]):
        self._sqs = sqs
        self.tasks = tasks
        self.started: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def list_message_move_tasks(self, SourceArn: str, MaxResults: int) -> dict[str, Any]:  # noqa: N803
        return {"Results": [task for task in self.tasks if task["SourceArn"] == SourceArn]}

    def start_message_move_task(self, SourceArn: str) -> dict[str, Any]:  # noqa: N803
        self.started.append(SourceArn)
        return {"TaskHandle": "handle-1"}


def dlq_arn(sqs: Any, queues: dict[str, str]) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=queues["dlq"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def test_redrive_all_uses_a_move_task_where_the_backend_has_one(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN a backend with StartMessageMoveTask and a finished earlier task
    kill(sqs, queues, envelope(1))
    arn = dlq_arn(sqs, queues)
    backend = MoveTaskSqs(sqs, [{"SourceArn": arn, "Status": "COMPLETED", "TaskHandle": "old"}])
    status = FakeStatus()
    dead = DeadLetters(backend, queue_url=queues["queue"], dlq_url=queues["dlq"], status=status, wait_seconds=0)

    # WHEN everything is redriven
    result = dead.redrive_all()

    # THEN a move task was started from the DLQ, and the dead letters are released for it to move
    assert result["method"] == "StartMessageMoveTask"
    assert backend.started == [arn]
    assert status.records["evt-1"]["status"] == "queued"
    assert len(visible(sqs, queues["dlq"])) == 1


def test_redrive_all_refuses_while_a_move_task_is_running(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))
    arn = dlq_arn(sqs, queues)
    backend = MoveTaskSqs(sqs, [{"SourceArn": arn, "Status": "RUNNING", "TaskHandle": "busy"}])
    dead = DeadLetters(backend, queue_url=queues["queue"], dlq_url=queues["dlq"], wait_seconds=0)

    with pytest.raises(MoveTaskRunning, match="busy"):
        dead.redrive_all()
    assert backend.started == []


def test_replay_of_a_dead_event_requeues_it_marked_as_a_replay(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))

    code, output = run("replay", "evt-1", "--bypass-idempotency", "--json", queues=queues)

    assert code == 0
    assert json.loads(output)["from"] == "dlq"
    (message,) = visible(sqs, queues["queue"])
    body = json.loads(message["Body"])
    assert body["id"] == "evt-1"
    assert body["meta"]["replay_bypass_idempotency"] is True
    assert message["MessageAttributes"]["replay"]["StringValue"] == "true"


def test_replay_of_a_succeeded_event_uses_the_envelope_its_status_record_keeps(
    sqs: Any, queues: dict[str, str]
) -> None:
    # GIVEN an event that succeeded, whose status record kept the envelope
    status = FakeStatus()
    status.records["evt-7"] = {"status": "succeeded", "envelope": envelope(7).to_json()}

    # WHEN it is replayed without bypassing idempotency
    code, _ = run("replay", "evt-7", status=status, queues=queues)

    # THEN the same event id is queued again, without the bypass flag, and shows queued
    (message,) = visible(sqs, queues["queue"])
    assert code == 0
    assert json.loads(message["Body"])["id"] == "evt-7"
    assert message["MessageAttributes"]["event_id"]["StringValue"] == "evt-7"
    assert "replay_bypass_idempotency" not in json.loads(message["Body"])["meta"]
    assert status.records["evt-7"]["status"] == "queued"


def test_replay_from_an_envelope_file_queues_that_event(sqs: Any, queues: dict[str, str], tmp_path: Path) -> None:
    # GIVEN the envelope of a succeeded event, saved earlier (e.g. from `inqueue dlq show --json`)
    saved = tmp_path / "evt-9.json"
    saved.write_text(json.dumps({"envelope": json.loads(envelope(9).to_json())}))

    # WHEN it is replayed from that file, bypassing idempotency
    code, output = run("replay", "evt-9", "--envelope", str(saved), "--bypass-idempotency", queues=queues)

    # THEN the same event id is queued, flagged for the worker to process it again
    (message,) = visible(sqs, queues["queue"])
    assert code == 0
    assert "from: file" in output
    assert json.loads(message["Body"])["meta"] == {"replay_bypass_idempotency": True}


def test_replay_refuses_an_envelope_of_another_event(queues: dict[str, str], tmp_path: Path, capsys: Any) -> None:
    saved = tmp_path / "other.json"
    saved.write_text(envelope(1).to_json())

    code, _ = run("replay", "evt-2", "--envelope", str(saved), queues=queues)

    assert code == 1
    assert "not 'evt-2'" in capsys.readouterr().err


def test_replay_without_a_kept_envelope_says_why(queues: dict[str, str], capsys: Any) -> None:
    status = FakeStatus()
    status.records["evt-8"] = {"status": "succeeded"}

    code, _ = run("replay", "evt-8", status=status, queues=queues)

    assert code == 1
    assert "envelope is not kept" in capsys.readouterr().err


def test_purge_needs_yes(sqs: Any, queues: dict[str, str], capsys: Any) -> None:
    kill(sqs, queues, envelope(1))

    refused, _ = run("dlq", "purge", queues=queues)
    purged, _ = run("dlq", "purge", "--yes", queues=queues)

    assert (refused, purged) == (1, 0)
    assert "--yes" in capsys.readouterr().err
    assert visible(sqs, queues["dlq"]) == []


def test_status_prints_the_record(queues: dict[str, str]) -> None:
    status = FakeStatus()
    status.records["evt-1"] = {"status": "succeeded", "attempts": 2}

    code, output = run("status", "evt-1", "--json", status=status, queues=queues)

    assert (code, json.loads(output)) == (0, {"status": "succeeded", "attempts": 2})


def test_targets_come_from_the_local_runner_state_file(tmp_path: Path) -> None:
    # GIVEN the file the local runner writes
    state = tmp_path / "endpoints.json"
    state.write_text(
        json.dumps(
            {
                "endpoint_url": "http://127.0.0.1:5123",
                "region": "eu-west-1",
                "outputs": {"EventsQueueUrl": "q", "DeadLetterQueueUrl": "d", "StatusTableName": "t"},
            }
        )
    )

    # WHEN the CLI is told --local
    args = cli.parser().parse_args(["dlq", "list", "--local", "--local-state", str(state)])
    targets = cli.resolve_targets(args, env={})

    # THEN it talks to the runner's endpoint
    assert targets == cli.Targets("q", "d", "t", "http://127.0.0.1:5123", "eu-west-1")


def test_targets_come_from_the_stack_outputs(aws: None) -> None:
    # GIVEN a deployed stack (moto's CloudFormation) with the template's outputs
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    template = {
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "EventsQueueUrl": {"Value": "https://sqs/events"},
            "DeadLetterQueueUrl": {"Value": "https://sqs/dlq"},
            "StatusTableName": {"Value": "inqueue-status"},
        },
    }
    cfn.create_stack(StackName="inqueue", TemplateBody=json.dumps(template))

    # WHEN the stack is named by AWS_SAM_STACK_NAME
    args = cli.parser().parse_args(["status", "x", "--region", "us-east-1"])
    targets = cli.resolve_targets(args, env={"AWS_SAM_STACK_NAME": "inqueue"})

    # THEN the queues and table come from its outputs
    assert (targets.queue_url, targets.dlq_url, targets.status_table) == (
        "https://sqs/events",
        "https://sqs/dlq",
        "inqueue-status",
    )


def test_without_any_target_the_cli_says_how_to_name_one(capsys: Any) -> None:
    code = cli.main(["dlq", "list"], env={})

    assert code == 1
    assert "--stack" in capsys.readouterr().err


# -- over the real StatusStore on moto's DynamoDB ------------------------------------------


@pytest.fixture
def store(aws: None) -> StatusStore:
    return StatusStore(STATUS_TABLE, create_status_table())


def run_cli(*argv: str, queues: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(
        [
            *argv,
            "--queue-url",
            queues["queue"],
            "--dlq-url",
            queues["dlq"],
            "--status-table",
            STATUS_TABLE,
            "--poll-wait",
            "0",
        ],
        env={"AWS_DEFAULT_REGION": "us-east-1"},
        clients=lambda service, targets: boto3.client(service, region_name="us-east-1"),
        out=out,
    )
    return code, out.getvalue()


def test_a_redriven_dead_event_shows_queued_with_its_attempts_reset(
    sqs: Any, queues: dict[str, str], store: StatusStore
) -> None:
    # GIVEN an event the worker declared dead after maxReceiveCount attempts
    item = envelope(1)
    store.queued(item)
    store.dead(item.id, reason="max receives reached", attempts=MAX_RECEIVES, error="RuntimeError: no")
    kill(sqs, queues, item)

    # WHEN the operator redrives it
    code, _ = run_cli("dlq", "redrive", item.id, queues=queues)

    # THEN the status store says queued again, attempt 0, no reason, and the message is back
    record = store.get(item.id)
    assert code == 0
    assert record is not None
    assert (record["status"], record["attempt"]) == ("queued", 0)
    assert "reason" not in record
    assert len(visible(sqs, queues["queue"])) == 1


def test_list_reads_the_reason_and_attempts_from_the_status_record(
    sqs: Any, queues: dict[str, str], store: StatusStore
) -> None:
    item = envelope(2)
    store.queued(item)
    store.dead(item.id, reason="poison: ValueError", attempts=MAX_RECEIVES)
    kill(sqs, queues, item)

    code, output = run_cli("dlq", "list", "--json", queues=queues)

    (row,) = json.loads(output)
    assert code == 0
    assert (row["reason"], row["attempts"]) == ("poison: ValueError", MAX_RECEIVES)


def test_status_command_prints_the_record(queues: dict[str, str], store: StatusStore) -> None:
    store.queued(envelope(3))
    store.succeeded("evt-3", {"order": 3})

    code, output = run_cli("status", "evt-3", "--json", queues=queues)

    record = json.loads(output)
    assert code == 0
    assert (record["status"], record["result"]) == ("succeeded", {"order": 3})


def test_status_of_an_unknown_event_explains_the_failed_status_write_case(
    queues: dict[str, str], store: StatusStore, capsys: Any
) -> None:
    code, _ = run_cli("status", "evt-404", queues=queues)

    assert code == 1
    assert "status write failed" in capsys.readouterr().err


def test_an_aws_error_is_one_line_not_a_traceback(aws: None, capsys: Any) -> None:
    # GIVEN a stack name that does not exist (moto's CloudFormation answers ValidationError)
    code = cli.main(["dlq", "list", "--stack", "nope", "--region", "us-east-1"], env={})

    assert code == 1
    assert capsys.readouterr().err.startswith("inqueue: AWS refused or could not be reached:")
