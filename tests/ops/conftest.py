"""Shared pieces of the operator tool tests: moto's in-process SQS with an events queue and its DLQ."""

from __future__ import annotations

import collections
import io
import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest

from inqueue.envelope import Envelope
from inqueue_ops import cli
from tests.factories import make_envelope

MAX_RECEIVES = 3
NOW = 1_795_420_800.0  # 2026-11-23T08:00:00Z, an hour after the envelopes below were received


class FakeStatus:
    """A dict standing in for the DynamoDB status store behind the same two calls."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.writes: list[str] = []

    def get(self, event_id: str) -> Mapping[str, Any] | None:
        return self.records.get(event_id)

    def mark_queued(self, event_id: str) -> None:
        self.writes.append(event_id)
        self.records[event_id] = {**self.records.get(event_id, {}), "status": "queued", "attempt": 0}


class Calls:
    """The AWS operations a client made, counted by name, from botocore's own before-call event."""

    def __init__(self, client: Any):
        self.counts: collections.Counter[str] = collections.Counter()
        client.meta.events.register("before-call.*.*", self._count)

    def _count(self, event_name: str, **_kwargs: Any) -> None:
        self.counts[event_name.rsplit(".", 1)[-1]] += 1

    def total(self) -> int:
        return sum(self.counts.values())


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
    for start in range(0, len(envelopes), 10):
        sqs.send_message_batch(
            QueueUrl=queues["queue"],
            Entries=[
                {"Id": str(n), "MessageBody": item.to_json(), "MessageAttributes": item.message_attributes()}
                for n, item in enumerate(envelopes[start : start + 10])
            ],
        )
    # Each receive counts; a message received past maxReceiveCount moves to the DLQ instead of coming back.
    while sqs.receive_message(QueueUrl=queues["queue"], MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages"):
        pass


def visible(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message visible now (each one received once, and hidden for a minute)."""
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        VisibilityTimeout=60,
    ).get("Messages", []):
        messages += batch
    return messages


def run(
    *argv: str,
    status: FakeStatus | None = None,
    queues: dict[str, str],
    client: Any = None,
    terminal: bool | None = None,
) -> tuple[int, str, str]:
    """The CLI against moto's in-process AWS: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()

    def clients(service: str, targets: cli.Targets) -> Any:
        if service == "sqs" and client is not None:
            return client
        return boto3.client(service, region_name="us-east-1")

    code = cli.main(
        [*argv, "--queue-url", queues["queue"], "--dlq-url", queues["dlq"], "--poll-wait", "0"],
        env={},
        clients=clients,
        out=out,
        err=err,
        clock=lambda: NOW,
        sleep=lambda _seconds: None,
        stores=lambda targets, factory: status,
        terminal=terminal,
    )
    return code, out.getvalue(), err.getvalue()
