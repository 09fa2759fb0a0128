"""``inqueue dlq redrive --all`` where the backend has no move task: 300 dead letters, by batches.

Every AWS call is held ``DELAY`` seconds in botocore's ``before-call`` (moto in-process answers),
so the time is the operation's sequential round trips, whatever else the machine does. The
baseline is what the CLI did before, in the same run on the same data: per message, the status
write, ``SendMessage`` and ``DeleteMessage``, one after the other.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from moto import mock_aws

from bench.report import Report
from inqueue.envelope import Envelope
from inqueue.status import StatusStore
from inqueue_ops.dlq import DeadLetters, OperatorStatus, sendable_attributes

LETTERS = 300
DELAY = 0.02  # about a call to SQS in the same region from outside AWS
ROUNDS = 3


def _world() -> tuple[Any, Any, str, str, StatusStore]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="status",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    store = StatusStore("status", dynamodb)
    for start in range(0, LETTERS, 10):
        entries = []
        for n in range(start, start + 10):
            envelope = Envelope(
                id=f"evt-{n}",
                source="demo",
                type="order.created",
                received_at="2026-12-01T00:00:00.000Z",
                content_type="application/json",
                body={"n": n},
                correlation_id=f"c-{n}",
            )
            store.queued(envelope)
            entries.append(
                {
                    "Id": str(n - start),
                    "MessageBody": envelope.to_json(),
                    "MessageAttributes": envelope.message_attributes(),
                }
            )
        sqs.send_message_batch(QueueUrl=dlq, Entries=entries)
    return sqs, dynamodb, queue, dlq, store


def _per_message(sqs: Any, queue: str, dlq: str, status: OperatorStatus) -> None:
    """The previous redrive: read everything, then per message a status write, a send and a delete."""
    letters = []
    while batch := sqs.receive_message(
        QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageAttributeNames=["All"]
    ).get("Messages", []):
        letters += batch
    for message in letters:
        status.mark_queued(json.loads(message["Body"])["id"])
        sqs.send_message(
            QueueUrl=queue,
            MessageBody=message["Body"],
            MessageAttributes=sendable_attributes(message.get("MessageAttributes") or {}),
        )
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])


def _measure(redrive: Callable[[Any, str, str, OperatorStatus], None]) -> tuple[float, int]:
    with mock_aws():
        sqs, dynamodb, queue, dlq, store = _world()
        calls: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()

        def hold(event_name: str, **_kwargs: Any) -> None:
            with lock:
                calls[event_name] += 1
            time.sleep(DELAY)

        for client in (sqs, dynamodb):
            client.meta.events.register("before-call.*.*", hold)
        started = time.perf_counter()
        redrive(sqs, queue, dlq, OperatorStatus(store))
        elapsed = time.perf_counter() - started
        left = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        assert left["Attributes"]["ApproximateNumberOfMessages"] == "0", "not everything was redriven"
        return elapsed, sum(calls.values()) - 1  # less the check above


def _batches(sqs: Any, queue: str, dlq: str, status: OperatorStatus) -> None:
    outcome = DeadLetters(sqs, queue_url=queue, dlq_url=dlq, status=status, wait_seconds=0).redrive_all()
    assert (outcome.done, outcome.failed) == (LETTERS, 0), outcome.summary()


def run(report: Report) -> None:
    times: dict[str, list[float]] = {"batches": [], "per message": []}
    calls: dict[str, int] = {}
    for _ in range(ROUNDS):  # interleaved, so a noisy neighbour slows both
        for name, redrive in (("batches", _batches), ("per message", _per_message)):
            elapsed, count = _measure(redrive)
            times[name].append(elapsed)
            calls[name] = count
    report.add_samples(
        f"redrive --all of {LETTERS} dead letters, every call held {DELAY * 1000:.0f} ms",
        times["batches"],
        "s",
        baseline=times["per message"],
        ratio_goal=0.35,
        note=(
            "moto in-process, no move task: receive 10, ten status writes at once, SendMessageBatch, "
            "DeleteMessageBatch; baseline: the previous per-message status write, SendMessage, DeleteMessage"
        ),
    )
    report.add(
        "redrive --all: AWS calls per dead letter",
        calls["batches"] / LETTERS,
        "calls",
        baseline=calls["per message"] / LETTERS,
        note=f"{calls['batches']} calls against {calls['per message']} for {LETTERS} (status writes included)",
    )
