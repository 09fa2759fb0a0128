"""The console's data layer and pages against moto's in-process AWS: the template's table (with its index),
queues and bucket, records written by the runtime library's own store, no sockets."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from inqueue.archive import EnvelopeArchive
from inqueue.envelope import Envelope
from inqueue.status import StatusStore
from inqueue_local.motoserver import oldest_message
from inqueue_ops.console.data import Console
from inqueue_ops.console.queues import MotoOldest
from inqueue_ops.targets import Targets
from tests.factories import Clock, make_envelope
from tests.tables import PAYLOAD_BUCKET, STATUS_TABLE, create_payload_bucket, create_queues, create_status_table

MAX_RECEIVES = 2
NOW = 1_795_435_200.0  # 2026-11-23T12:00:00Z


def in_process_moto(url: str) -> bytes:
    """What the runner's moto server answers at /_inqueue/sqs/oldest, from this process's moto model."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return json.dumps(oldest_message(query["QueueUrl"][0], query["Region"][0])).encode()


@dataclass
class Stack:
    console: Console
    sqs: Any
    dynamodb: Any
    s3: Any
    store: StatusStore
    archive: EnvelopeArchive
    clock: Clock
    queue_url: str
    dlq_url: str

    def accept(self, envelope: Envelope, *, archive: bool = True) -> None:
        """What the ingress does: queued record, archived envelope, the message."""
        self.store.queued(envelope)
        if archive:
            self.archive.put(envelope.id, envelope.to_json())
        self.sqs.send_message(
            QueueUrl=self.queue_url, MessageBody=envelope.to_json(), MessageAttributes=envelope.message_attributes()
        )

    def kill(self, *envelopes: Envelope) -> None:
        """Each envelope in the DLQ as SQS puts it there (received past maxReceiveCount), its record dead."""
        for envelope in envelopes:
            self.store.queued(envelope)
            self.store.dead(envelope.id, f"failed {MAX_RECEIVES} times (maxReceiveCount {MAX_RECEIVES})", MAX_RECEIVES)
            self.sqs.send_message(
                QueueUrl=self.queue_url, MessageBody=envelope.to_json(), MessageAttributes=envelope.message_attributes()
            )
        while self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages"
        ):
            pass


@pytest.fixture
def stack(aws: None) -> Iterator[Stack]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url, dlq_url = create_queues(sqs, max_receives=MAX_RECEIVES)
    dynamodb = create_status_table()
    s3 = create_payload_bucket()
    clock = Clock(NOW)
    targets = Targets(
        queue_url=queue_url,
        dlq_url=dlq_url,
        status_table=STATUS_TABLE,
        region="us-east-1",
        outputs={"EventIndexShards": "4", "EnvelopeArchive": "true", "PayloadBucketName": PAYLOAD_BUCKET},
    )
    console = Console(
        targets,
        lambda service, _targets: boto3.client(service, region_name="us-east-1"),
        clock=clock,
        oldest=MotoOldest("http://moto", in_process_moto, clock=clock),
        wait_seconds=0,
    )
    yield Stack(
        console,
        sqs,
        dynamodb,
        s3,
        StatusStore(STATUS_TABLE, dynamodb, clock=clock),
        EnvelopeArchive(STATUS_TABLE, PAYLOAD_BUCKET, client=dynamodb, s3=s3, clock=clock),
        clock,
        queue_url,
        dlq_url,
    )
    console.recent.pool.shutdown()


def envelope(n: int, *, at: str = "2026-11-23T11:00:00.000Z", **fields: Any) -> Envelope:
    return make_envelope(f"evt-{n:03d}", received_at=at, body={"n": n}, correlation_id=f"corr-{n}", **fields)
