"""Dead letters against moto's in-process SQS and DynamoDB: list, show, redrive, replay, purge, status.

Calls are counted with botocore's own events: each operation must make its calls per batch
of ten, never per message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from inqueue.attributes import REPLAY_FLAG
from inqueue.status import StatusStore
from inqueue_ops.dlq import DeadLetters, MoveTaskRunning, Progress
from tests.factories import make_envelope
from tests.ops.conftest import MAX_RECEIVES, NOW, Calls, FakeStatus, envelope, kill, run, visible
from tests.tables import STATUS_TABLE, create_status_table

# -- list and show -------------------------------------------------------------------------


def test_list_shows_each_dead_letter_with_source_type_receives_and_age(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN two events that failed maxReceiveCount times, one with a recorded reason
    kill(sqs, queues, envelope(1), envelope(2, source="github"))
    status = FakeStatus()
    status.records["evt-1"] = {"status": "dead", "attempt": 3, "last_error": "RuntimeError: downstream said no"}

    # WHEN the operator lists the DLQ as JSON
    code, output, _ = run("dlq", "list", "--json", status=status, queues=queues)

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


def test_list_as_a_table_names_the_columns_one_line_per_dead_letter(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))
    status = FakeStatus()
    status.records["evt-1"] = {"status": "dead", "attempt": 3, "reason": "poison: " + "x" * 300}

    code, output, _ = run("dlq", "list", status=status, queues=queues)

    assert code == 0
    header, row, total = output.splitlines()
    assert header.split() == ["ID", "SOURCE", "TYPE", "RECEIVES", "ATTEMPTS", "AGE", "REASON"]
    assert row.split()[:6] == ["evt-1", "demo", "order.created", str(MAX_RECEIVES), "3", "60m"]
    assert row.endswith("x" * 300)  # piped output is never cut or wrapped
    assert total == "1 dead letter(s)"


def test_an_empty_dlq_says_so(queues: dict[str, str]) -> None:
    code, output, _ = run("dlq", "list", queues=queues)

    assert (code, output) == (0, "the dead-letter queue is empty\n")


def test_listing_300_reads_and_releases_them_in_batches(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN 300 dead letters
    kill(sqs, queues, *(envelope(n) for n in range(300)))
    calls = Calls(sqs)
    seen: list[Progress] = []

    # WHEN they are inspected
    letters = DeadLetters(sqs, queue_url=queues["queue"], dlq_url=queues["dlq"], wait_seconds=0).inspect(seen.append)

    # THEN 30 receives of ten read them, 30 batch calls release them, and progress counted up to 300
    assert len(letters) == 300
    assert calls.counts["ReceiveMessage"] == 31  # the last one finds nothing new
    assert calls.counts["ChangeMessageVisibilityBatch"] == 30
    assert calls.counts.get("ChangeMessageVisibility", 0) == 0
    assert [p.done for p in seen][-1] == 300
    assert seen[-1].total == 300
    assert len(visible(sqs, queues["dlq"])) == 300


def test_show_prints_a_table_of_the_dead_letter_and_its_body(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1), envelope(2))

    code, output, _ = run("dlq", "show", "evt-2", queues=queues)

    assert code == 0
    lines = output.splitlines()
    assert lines[0].split() == ["FIELD", "VALUE"]
    assert lines[1].split() == ["event", "id", "evt-2"]
    assert any(line.split()[:3] == ["attribute", "event_id", "evt-2"] for line in lines)
    assert output.split("body:\n", 1)[1] == json.dumps({"n": 2}, indent=2) + "\n"


def test_show_json_holds_the_full_envelope(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1), envelope(2))

    code, output, _ = run("dlq", "show", "evt-2", "--json", queues=queues)

    shown = json.loads(output)
    assert code == 0
    assert shown["envelope"]["body"] == {"n": 2}
    assert shown["message_attributes"]["event_id"] == "evt-2"


def test_show_of_an_unknown_id_fails_with_one_line(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))

    code, _, err = run("dlq", "show", "evt-404", queues=queues)

    assert code == 1
    assert err.count("\n") == 1
    assert "evt-404" in err


# -- redrive -------------------------------------------------------------------------------


def test_redrive_all_on_moto_sends_new_messages_in_batches_and_resets_the_status(
    sqs: Any, queues: dict[str, str]
) -> None:
    # GIVEN 25 dead events whose status says dead (moto has no StartMessageMoveTask)
    kill(sqs, queues, *(envelope(n) for n in range(25)))
    status = FakeStatus()
    status.records = {f"evt-{n}": {"status": "dead", "attempt": 3} for n in range(25)}
    calls = Calls(sqs)

    # WHEN the operator redrives everything
    code, output, _ = run("dlq", "redrive", "--all", "--json", status=status, queues=queues, client=sqs)

    # THEN they are back in the events queue as new messages (first receive), with their attributes,
    # the status says queued, and the calls were per batch of ten
    result = json.loads(output)
    assert code == 0
    assert (result["method"], result["moved"], result["failed"]) == ("SendMessageBatch", 25, 0)
    assert visible(sqs, queues["dlq"]) == []
    back = visible(sqs, queues["queue"])
    assert sorted(json.loads(m["Body"])["id"] for m in back) == sorted(f"evt-{n}" for n in range(25))
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in back} == {"1"}
    assert {m["MessageAttributes"]["source"]["StringValue"] for m in back} == {"demo"}
    assert status.records["evt-1"] == {"status": "queued", "attempt": 0}
    assert calls.counts["SendMessageBatch"] == 3
    assert calls.counts["DeleteMessageBatch"] == 3
    assert calls.counts.get("SendMessage", 0) == calls.counts.get("DeleteMessage", 0) == 0


def test_redrive_of_300_makes_a_dozen_times_fewer_calls_than_one_per_message(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN 300 dead letters (the per-message redrive made 3 calls each: 900, plus the receives)
    kill(sqs, queues, *(envelope(n) for n in range(300)))
    calls = Calls(sqs)
    seen: list[Progress] = []
    dead = DeadLetters(sqs, queue_url=queues["queue"], dlq_url=queues["dlq"], wait_seconds=0)

    # WHEN they are redriven by batches
    outcome = dead.redrive_all(progress=seen.append)

    # THEN 300 moved in 30 receives, 30 sends and 30 deletes (plus a few attribute reads), with progress
    assert (outcome.done, outcome.failed, outcome.summary()) == (300, 0, "moved 300, failed 0")
    assert calls.counts["ReceiveMessage"] == 31
    assert calls.counts["SendMessageBatch"] == calls.counts["DeleteMessageBatch"] == 30
    assert calls.total() <= 96
    assert [p.done for p in seen] == list(range(10, 301, 10))
    assert {p.total for p in seen} == {300}
    assert len(visible(sqs, queues["queue"])) == 300


class FailingAgainSqs:
    """moto's SQS where every redriven message fails again at once: the worker sends it straight back to
    the DLQ with ``failed_message_id``, as it does for a PermanentError."""

    def __init__(self, sqs: Any, dlq_url: str):
        self._sqs = sqs
        self.dlq_url = dlq_url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        answer = dict(self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=Entries))
        for entry, sent in zip(Entries, answer["Successful"], strict=True):
            failed = {"DataType": "String", "StringValue": sent["MessageId"]}
            attributes = {**entry["MessageAttributes"], "failed_message_id": failed}
            self._sqs.send_message(
                QueueUrl=self.dlq_url, MessageBody=entry["MessageBody"], MessageAttributes=attributes
            )
        return answer


def test_redrive_all_does_not_chase_what_fails_again_while_it_runs(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN 30 dead letters whose every redrive fails again at once, back into the DLQ
    kill(sqs, queues, *(envelope(n) for n in range(30)))
    backend = FailingAgainSqs(sqs, queues["dlq"])

    # WHEN everything is redriven
    outcome = DeadLetters(backend, queue_url=queues["queue"], dlq_url=queues["dlq"], wait_seconds=0).redrive_all()

    # THEN the 30 moved once each, and the 30 new dead letters wait in the DLQ for the operator
    assert outcome.summary() == "moved 30, failed 0"
    assert len(visible(sqs, queues["dlq"])) == 30


def test_a_redriven_event_gets_the_full_max_receive_count_again(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN a redriven event
    kill(sqs, queues, envelope(1))
    run("dlq", "redrive", "evt-1", queues=queues)

    # WHEN it is received maxReceiveCount times more
    counts = []
    for _ in range(MAX_RECEIVES):
        message = sqs.receive_message(QueueUrl=queues["queue"], AttributeNames=["All"])["Messages"][0]
        counts.append(message["Attributes"]["ApproximateReceiveCount"])

    # THEN every one of those receives delivered it: it starts at 1, it did not go straight back to the DLQ
    assert counts == ["1", "2", "3"]


def test_redrive_by_id_moves_only_those_and_reports_unknown_ids(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1), envelope(2), envelope(3))

    code, output, _ = run("dlq", "redrive", "evt-1", "evt-3", "evt-9", "--json", queues=queues)

    result = json.loads(output)
    assert code == 1  # one id was not found
    assert sorted(m["id"] for m in result["ids"]) == ["evt-1", "evt-3"]
    assert result["missing"] == ["evt-9"]
    assert [json.loads(m["Body"])["id"] for m in visible(sqs, queues["dlq"])] == ["evt-2"]


def test_redrive_human_output_is_a_count_not_a_list_of_ids(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, *(envelope(n) for n in range(12)))

    code, output, _ = run("dlq", "redrive", "--all", queues=queues)

    assert code == 0
    assert output == "moved 12, failed 0 (by SendMessageBatch)\n"


class FlakySqs:
    """moto's SQS, whose batch calls fail chosen entries the way SQS reports them (Failed, SenderFault)."""

    def __init__(self, sqs: Any, send_failures: list[dict[str, dict[str, Any]]], delete_failures: int = 0):
        self._sqs = sqs
        self.send_failures = send_failures  # per call: entry position -> the Failed entry's fields
        self.delete_failures = delete_failures
        self.sent_entries: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.sent_entries.append([entry["Id"] for entry in Entries])
        failing = self.send_failures.pop(0) if self.send_failures else {}
        failed_ids = {Entries[int(position)]["Id"]: fields for position, fields in failing.items()}
        kept = [entry for entry in Entries if entry["Id"] not in failed_ids]
        answer = self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=kept) if kept else {"Successful": []}
        answer["Failed"] = [{"Id": entry_id, **fields} for entry_id, fields in failed_ids.items()]
        return dict(answer)

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        if self.delete_failures:
            self.delete_failures -= 1
            first, rest = Entries[0], Entries[1:]
            answer = self._sqs.delete_message_batch(QueueUrl=QueueUrl, Entries=rest) if rest else {"Successful": []}
            answer["Failed"] = [{"Id": first["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try"}]
            return dict(answer)
        return dict(self._sqs.delete_message_batch(QueueUrl=QueueUrl, Entries=Entries))


SQS_FAULT = {"SenderFault": False, "Code": "InternalError", "Message": "We encountered an internal error."}
SENDER_FAULT = {"SenderFault": True, "Code": "InvalidParameterValue", "Message": "attribute too long"}


def test_entries_sqs_failed_on_its_side_are_sent_again_and_only_they(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN a batch where SQS fails two entries on its side, once
    kill(sqs, queues, *(envelope(n) for n in range(5)))
    flaky = FlakySqs(sqs, [{"1": SQS_FAULT, "3": SQS_FAULT}])
    dead = DeadLetters(flaky, queue_url=queues["queue"], dlq_url=queues["dlq"], wait_seconds=0, sleep=lambda _: None)

    # WHEN everything is redriven
    outcome = dead.redrive_all()

    # THEN the second call carried only those two, and all five moved, each once
    assert flaky.sent_entries[1] == [flaky.sent_entries[0][1], flaky.sent_entries[0][3]]
    assert (outcome.done, outcome.failed) == (5, 0)
    assert sorted(json.loads(m["Body"])["id"] for m in visible(sqs, queues["queue"])) == [f"evt-{n}" for n in range(5)]
    assert visible(sqs, queues["dlq"]) == []


def test_an_entry_refused_as_the_senders_fault_stays_in_the_dlq_and_is_counted(
    sqs: Any, queues: dict[str, str]
) -> None:
    # GIVEN a batch where SQS refuses one entry as the sender's fault (retrying cannot help)
    kill(sqs, queues, *(envelope(n) for n in range(3)))
    flaky = FlakySqs(sqs, [{"0": SENDER_FAULT}])
    dead = DeadLetters(flaky, queue_url=queues["queue"], dlq_url=queues["dlq"], wait_seconds=0, sleep=lambda _: None)

    # WHEN everything is redriven
    outcome = dead.redrive_all()

    # THEN it is not sent again, it is still in the DLQ (visible at once), and the count says so
    assert len(flaky.sent_entries) == 1
    assert outcome.summary() == "moved 2, failed 1"
    (failure,) = outcome.failures
    assert failure.code == "InvalidParameterValue"
    assert [json.loads(m["Body"])["id"] for m in visible(sqs, queues["dlq"])] == [failure.id]
    assert len(visible(sqs, queues["queue"])) == 2


def test_the_cli_lists_failed_entries_and_exits_1(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, *(envelope(n) for n in range(3)))
    flaky = FlakySqs(sqs, [{"2": SENDER_FAULT}])

    code, output, _ = run("dlq", "redrive", "--all", queues=queues, client=flaky)

    assert code == 1
    header, row, count = output.splitlines()
    assert header.split() == ["ID", "MESSAGE", "ID", "CODE", "MESSAGE"]
    assert row.split()[2] == "InvalidParameterValue"
    assert count == "moved 2, failed 1 (by SendMessageBatch)"


def test_a_failed_delete_is_retried_so_nothing_is_left_to_be_sent_twice(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, *(envelope(n) for n in range(4)))
    flaky = FlakySqs(sqs, [], delete_failures=1)
    dead = DeadLetters(flaky, queue_url=queues["queue"], dlq_url=queues["dlq"], wait_seconds=0, sleep=lambda _: None)

    outcome = dead.redrive_all()

    assert (outcome.done, outcome.failed, outcome.notes) == (4, 0, [])
    assert visible(sqs, queues["dlq"]) == []


def test_batches_fit_the_events_queues_payload_limit(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN ten dead letters of 60 KB each, and an events queue that takes 256 KiB a message (and a batch)
    limit = 262_144
    big = [make_envelope(f"evt-{n}", body={"pad": "x" * 60_000}) for n in range(10)]
    for start in range(0, 10, 4):
        kill(sqs, queues, *big[start : start + 4])
    sqs.set_queue_attributes(QueueUrl=queues["queue"], Attributes={"MaximumMessageSize": str(limit)})
    sizes: list[int] = []
    sqs.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch",
        lambda params, **_: sizes.append(sum(len(entry["MessageBody"]) + 200 for entry in params["Entries"])),
    )

    # WHEN they are redriven
    outcome = DeadLetters(sqs, queue_url=queues["queue"], dlq_url=queues["dlq"], wait_seconds=0).redrive_all()

    # THEN every one moved, and no batch was over the limit
    assert (outcome.done, outcome.failed) == (10, 0)
    assert len(sizes) >= 3
    assert max(sizes) <= limit


def test_redrive_to_a_fifo_queue_keeps_each_message_group(sqs: Any) -> None:
    # GIVEN a FIFO events queue and its FIFO DLQ holding two groups' events
    dlq = sqs.create_queue(QueueName="events-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue = sqs.create_queue(
        QueueName="events.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    )["QueueUrl"]
    for n, group in enumerate(["portal-a", "portal-b", "portal-a"]):
        item = envelope(n)
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=item.to_json(),
            MessageAttributes=item.message_attributes(),
            MessageGroupId=group,
            MessageDeduplicationId=f"d{n}",
        )

    # WHEN they are redriven
    outcome = DeadLetters(sqs, queue_url=queue, dlq_url=dlq, wait_seconds=0).redrive_all()

    # THEN all three are in the events queue, each in its own group, in order within the group
    assert (outcome.done, outcome.failed) == (3, 0)
    back = visible(sqs, queue)
    groups = {json.loads(m["Body"])["id"]: m["Attributes"]["MessageGroupId"] for m in back}
    assert groups == {"evt-0": "portal-a", "evt-1": "portal-b", "evt-2": "portal-a"}


class MoveTaskSqs:
    """moto's SQS plus the move-task calls it lacks, answered as AWS documents them (one task, moving 10 a poll)."""

    def __init__(self, sqs: Any, tasks: list[dict[str, Any]], *, fail_after: int | None = None):
        self._sqs = sqs
        self.tasks = tasks
        self.started: list[dict[str, str]] = []
        self.fail_after = fail_after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def list_message_move_tasks(self, SourceArn: str, MaxResults: int) -> dict[str, Any]:  # noqa: N803
        for task in self.tasks:
            if task["Status"] == "RUNNING" and task.get("TaskHandle") == "handle-1":
                task["ApproximateNumberOfMessagesMoved"] += 10
                if self.fail_after is not None and task["ApproximateNumberOfMessagesMoved"] >= self.fail_after:
                    task.update(Status="FAILED", FailureReason="AWS.SimpleQueueService.KmsAccessDenied")
                elif task["ApproximateNumberOfMessagesMoved"] >= task["ApproximateNumberOfMessagesToMove"]:
                    task["ApproximateNumberOfMessagesMoved"] = task["ApproximateNumberOfMessagesToMove"]
                    task["Status"] = "COMPLETED"
                if task["Status"] != "RUNNING":
                    del task["TaskHandle"]  # AWS gives handles of running tasks only
        return {"Results": [dict(task) for task in reversed(self.tasks) if task["SourceArn"] == SourceArn]}

    def start_message_move_task(self, SourceArn: str, DestinationArn: str) -> dict[str, Any]:  # noqa: N803
        self.started.append({"source": SourceArn, "destination": DestinationArn})
        count = self._sqs.get_queue_attributes(
            QueueUrl=self._url(SourceArn), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        self.tasks.append(
            {
                "SourceArn": SourceArn,
                "Status": "RUNNING",
                "TaskHandle": "handle-1",
                "StartedTimestamp": int(NOW * 1000),
                "ApproximateNumberOfMessagesMoved": 0,
                "ApproximateNumberOfMessagesToMove": int(count),
            }
        )
        return {"TaskHandle": "handle-1"}

    def _url(self, arn: str) -> str:
        return str(self._sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"])


def arn_of(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def move_task_dead_letters(backend: Any, queues: dict[str, str], status: FakeStatus | None = None) -> DeadLetters:
    return DeadLetters(
        backend,
        queue_url=queues["queue"],
        dlq_url=queues["dlq"],
        status=status,
        wait_seconds=0,
        clock=lambda: NOW,
        sleep=lambda _: None,
    )


def test_redrive_all_uses_a_move_task_to_the_events_queue_and_follows_its_progress(
    sqs: Any, queues: dict[str, str]
) -> None:
    # GIVEN a backend with StartMessageMoveTask, a finished earlier task, and 25 dead letters
    kill(sqs, queues, *(envelope(n) for n in range(25)))
    backend = MoveTaskSqs(sqs, [{"SourceArn": arn_of(sqs, queues["dlq"]), "Status": "COMPLETED"}])
    status = FakeStatus()
    seen: list[Progress] = []

    # WHEN everything is redriven
    outcome = move_task_dead_letters(backend, queues, status).redrive_all(progress=seen.append)

    # THEN one task moves them to the events queue (named: a message the worker dead-lettered itself has
    # no source to go back to), the statuses went back to queued first, and progress follows the task
    assert backend.started == [{"source": arn_of(sqs, queues["dlq"]), "destination": arn_of(sqs, queues["queue"])}]
    assert sorted(status.writes) == sorted(f"evt-{n}" for n in range(25))
    assert (outcome.method, outcome.done, outcome.failed) == ("StartMessageMoveTask", 25, 0)
    assert [p.done for p in seen if p.action == "redriving"] == [10, 20, 25]
    assert len(visible(sqs, queues["dlq"])) == 25  # released for the task to move


def test_a_failed_move_task_is_counted_with_its_reason(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, *(envelope(n) for n in range(25)))
    backend = MoveTaskSqs(sqs, [], fail_after=20)

    outcome = move_task_dead_letters(backend, queues).redrive_all()

    assert outcome.summary() == "moved 20, failed 5"
    assert outcome.notes == ["move task FAILED: AWS.SimpleQueueService.KmsAccessDenied"]
    assert not outcome.ok


def test_redrive_all_without_waiting_returns_once_the_task_started(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))
    backend = MoveTaskSqs(sqs, [])

    outcome = move_task_dead_letters(backend, queues).redrive_all(wait=False)

    assert (outcome.task_handle, outcome.pending, outcome.summary()) == (
        "handle-1",
        1,
        "moving 1 (started, not waited for)",
    )


def test_redrive_all_refuses_while_a_move_task_is_running(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))
    arn = arn_of(sqs, queues["dlq"])
    backend = MoveTaskSqs(sqs, [{"SourceArn": arn, "Status": "RUNNING", "TaskHandle": "busy"}])

    with pytest.raises(MoveTaskRunning, match="busy"):
        move_task_dead_letters(backend, queues).redrive_all()
    assert backend.started == []


def test_no_move_task_redrives_by_batches_where_the_backend_has_one(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))
    backend = MoveTaskSqs(sqs, [])

    code, output, _ = run("dlq", "redrive", "--all", "--no-move-task", queues=queues, client=backend)

    assert (code, backend.started) == (0, [])
    assert output.endswith("(by SendMessageBatch)\n")


def test_status_writes_of_a_batch_go_at_once_and_a_failed_one_does_not_stop_the_redrive(
    sqs: Any, queues: dict[str, str]
) -> None:
    # GIVEN a status store that fails for one event
    class Refusing(FakeStatus):
        def mark_queued(self, event_id: str) -> None:
            if event_id == "evt-2":
                raise RuntimeError("ProvisionedThroughputExceededException")
            super().mark_queued(event_id)

    kill(sqs, queues, *(envelope(n) for n in range(4)))
    status = Refusing()

    # WHEN everything is redriven
    outcome = DeadLetters(
        sqs, queue_url=queues["queue"], dlq_url=queues["dlq"], status=status, wait_seconds=0
    ).redrive_all()

    # THEN all four moved (the queue is the promise), and the note says which status was not reset
    assert (outcome.done, outcome.failed) == (4, 0)
    assert sorted(status.writes) == ["evt-0", "evt-1", "evt-3"]
    assert outcome.notes == [
        "status not reset to queued for 1 event(s): RuntimeError: ProvisionedThroughputExceededException"
    ]


# -- replay --------------------------------------------------------------------------------


def test_replay_of_a_dead_event_requeues_it_marked_as_a_replay(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))

    code, output, _ = run("replay", "evt-1", "--bypass-idempotency", "--json", queues=queues)

    assert code == 0
    assert json.loads(output)["notes"][0] == "from the DLQ"
    (message,) = visible(sqs, queues["queue"])
    body = json.loads(message["Body"])
    assert body["id"] == "evt-1"
    assert body["meta"][REPLAY_FLAG] is True
    assert message["MessageAttributes"]["replay"]["StringValue"] == "true"


def test_replay_of_a_succeeded_event_uses_the_envelope_its_status_record_keeps(
    sqs: Any, queues: dict[str, str]
) -> None:
    # GIVEN an event that succeeded, whose status record kept the envelope
    status = FakeStatus()
    status.records["evt-7"] = {"status": "succeeded", "envelope": envelope(7).to_json()}

    # WHEN it is replayed without bypassing idempotency
    code, output, _ = run("replay", "evt-7", status=status, queues=queues)

    # THEN the same event id is queued again, without the bypass flag, and shows queued
    (message,) = visible(sqs, queues["queue"])
    assert code == 0
    assert output.splitlines()[-1] == "replayed 1, failed 0 (by SendMessage)"
    assert json.loads(message["Body"])["id"] == "evt-7"
    assert message["MessageAttributes"]["event_id"]["StringValue"] == "evt-7"
    assert REPLAY_FLAG not in json.loads(message["Body"])["meta"]
    assert status.records["evt-7"]["status"] == "queued"


def test_replay_from_an_envelope_file_queues_that_event(sqs: Any, queues: dict[str, str], tmp_path: Path) -> None:
    # GIVEN the envelope of a succeeded event, saved earlier (e.g. from `inqueue dlq show --json`)
    saved = tmp_path / "evt-9.json"
    saved.write_text(json.dumps({"envelope": json.loads(envelope(9).to_json())}))

    # WHEN it is replayed from that file, bypassing idempotency
    code, output, _ = run("replay", "evt-9", "--envelope", str(saved), "--bypass-idempotency", queues=queues)

    # THEN the same event id is queued, flagged for the worker to process it again
    (message,) = visible(sqs, queues["queue"])
    assert code == 0
    assert "note: from the envelope file" in output
    assert json.loads(message["Body"])["meta"] == {REPLAY_FLAG: True}


def test_replay_refuses_an_envelope_of_another_event(queues: dict[str, str], tmp_path: Path) -> None:
    saved = tmp_path / "other.json"
    saved.write_text(envelope(1).to_json())

    code, _, err = run("replay", "evt-2", "--envelope", str(saved), queues=queues)

    assert code == 1
    assert "not 'evt-2'" in err


def test_replay_without_a_kept_envelope_says_why(queues: dict[str, str]) -> None:
    status = FakeStatus()
    status.records["evt-8"] = {"status": "succeeded"}

    code, _, err = run("replay", "evt-8", status=status, queues=queues)

    assert code == 1
    assert "envelope is not kept" in err


# -- purge ---------------------------------------------------------------------------------


def test_purge_needs_yes(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))

    refused, _, err = run("dlq", "purge", "--all", queues=queues)

    assert refused == 1
    assert "--yes" in err
    assert len(visible(sqs, queues["dlq"])) == 1


def test_purge_all_deletes_in_batches_what_was_there_when_it_began(
    sqs: Any, queues: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN moto's SQS on a clock the test moves, 25 dead letters, and one more sent after the purge began
    import moto.sqs.models as sqs_models

    now = [NOW]
    monkeypatch.setattr(sqs_models, "unix_time", lambda *_: now[0])
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda *_: now[0] * 1000)
    kill(sqs, queues, *(envelope(n) for n in range(25)))
    now[0] = NOW + 10
    sqs.send_message(QueueUrl=queues["dlq"], MessageBody=envelope(99).to_json())
    calls = Calls(sqs)
    dead = DeadLetters(sqs, queue_url=queues["queue"], dlq_url=queues["dlq"], wait_seconds=0, clock=lambda: NOW + 5)

    # WHEN the DLQ is purged
    outcome = dead.purge()

    # THEN the 25 are deleted in batches of ten, and the late one is still there, visible
    now[0] += 1
    assert outcome.summary() == "deleted 25, failed 0"
    assert calls.counts["DeleteMessageBatch"] == 3
    assert calls.counts.get("PurgeQueue", 0) == calls.counts.get("DeleteMessage", 0) == 0
    assert [json.loads(m["Body"])["id"] for m in visible(sqs, queues["dlq"])] == ["evt-99"]


def test_purge_by_id_deletes_only_those(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1), envelope(2), envelope(3))

    code, output, _ = run("dlq", "purge", "evt-2", "evt-404", "--yes", queues=queues)

    assert code == 1  # evt-404 was not there
    assert output.splitlines() == [
        "not in the DLQ: evt-404",
        "deleted 1, failed 0, not in the DLQ 1 (by DeleteMessageBatch)",
    ]
    assert sorted(json.loads(m["Body"])["id"] for m in visible(sqs, queues["dlq"])) == ["evt-1", "evt-3"]


# -- status --------------------------------------------------------------------------------


def test_status_prints_the_record_as_a_table(queues: dict[str, str]) -> None:
    status = FakeStatus()
    status.records["evt-1"] = {"status": "succeeded", "attempt": 2, "result": {"invoice": "INV-1"}}

    code, output, _ = run("status", "evt-1", status=status, queues=queues)

    assert code == 0
    assert [line.split(None, 1) for line in output.splitlines()] == [
        ["FIELD", "VALUE"],
        ["status", "succeeded"],
        ["attempt", "2"],
        ["result", '{"invoice": "INV-1"}'],
    ]


def test_status_json_is_the_record(queues: dict[str, str]) -> None:
    status = FakeStatus()
    status.records["evt-1"] = {"status": "succeeded", "attempts": 2}

    code, output, _ = run("status", "evt-1", "--json", status=status, queues=queues)

    assert (code, json.loads(output)) == (0, {"status": "succeeded", "attempts": 2})


# -- over the real StatusStore on moto's DynamoDB ------------------------------------------


@pytest.fixture
def store(aws: None) -> StatusStore:
    return StatusStore(STATUS_TABLE, create_status_table())


def run_cli(*argv: str, queues: dict[str, str]) -> tuple[int, str, str]:
    import io

    from inqueue_ops import cli

    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        [*argv, "--queue-url", queues["queue"], "--dlq-url", queues["dlq"], "--status-table", STATUS_TABLE],
        env={"AWS_DEFAULT_REGION": "us-east-1"},
        clients=lambda service, targets: boto3.client(service, region_name="us-east-1"),
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


def test_a_redriven_dead_event_shows_queued_with_its_attempts_reset(
    sqs: Any, queues: dict[str, str], store: StatusStore
) -> None:
    # GIVEN an event the worker declared dead after maxReceiveCount attempts
    item = envelope(1)
    store.queued(item)
    store.dead(item.id, reason="max receives reached", attempts=MAX_RECEIVES, error="RuntimeError: no")
    kill(sqs, queues, item)

    # WHEN the operator redrives it
    code, _, _ = run_cli("dlq", "redrive", item.id, "--poll-wait", "0", queues=queues)

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

    code, output, _ = run_cli("dlq", "list", "--json", "--poll-wait", "0", queues=queues)

    (row,) = json.loads(output)
    assert code == 0
    assert (row["reason"], row["attempts"]) == ("poison: ValueError", MAX_RECEIVES)


def test_status_command_prints_the_record(queues: dict[str, str], store: StatusStore) -> None:
    store.queued(envelope(3))
    store.succeeded("evt-3", {"order": 3})

    code, output, _ = run_cli("status", "evt-3", "--json", queues=queues)

    record = json.loads(output)
    assert code == 0
    assert (record["status"], record["result"]) == ("succeeded", {"order": 3})


def test_status_of_an_unknown_event_explains_the_failed_status_write_case(
    queues: dict[str, str], store: StatusStore
) -> None:
    code, _, err = run_cli("status", "evt-404", queues=queues)

    assert code == 1
    assert "status write failed" in err
