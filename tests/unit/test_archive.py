"""The envelope archive: the ingress keeps each envelope as queued, beside the record (or in the bucket when big)."""

from __future__ import annotations

import json
import random
import string
import threading
from typing import Any

import pytest
from tests.conftest import drain
from tests.factories import http_event
from tests.tables import PAYLOAD_BUCKET, STATUS_TABLE, create_payload_bucket, create_status_table

from inqueue.archive import ITEM_MAX_BYTES, EnvelopeArchive, item_id, object_key
from inqueue.ingress import Ingress

NOW = 1_795_435_200.0


@pytest.fixture
def archive(aws: None) -> EnvelopeArchive:
    create_status_table()
    s3 = create_payload_bucket()
    import boto3

    return EnvelopeArchive(
        STATUS_TABLE, PAYLOAD_BUCKET, client=boto3.client("dynamodb"), s3=s3, ttl_seconds=3600, clock=lambda: NOW
    )


@pytest.fixture
def archiving(ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    create_status_table()
    create_payload_bucket()
    monkeypatch.setenv("INQUEUE_STATUS_TABLE", STATUS_TABLE)
    monkeypatch.setenv("INQUEUE_PAYLOAD_BUCKET", PAYLOAD_BUCKET)
    monkeypatch.setenv("INQUEUE_ENVELOPE_ARCHIVE", "true")
    return monkeypatch


def incompressible(size: int) -> str:
    return "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=size))


def test_a_small_envelope_is_an_item_of_its_own_compressed_and_expiring(archive: EnvelopeArchive) -> None:
    # GIVEN a 2 KB envelope / WHEN it is archived
    message = json.dumps({"id": "evt-1", "body": {"items": [{"sku": f"SKU-{n}"} for n in range(100)]}})
    where = archive.put("evt-1", message)

    # THEN it is one item beside the record (not inside it), compressed, with the record's lifetime
    assert where == "table"
    item = archive.client.get_item(TableName=STATUS_TABLE, Key={"id": {"S": item_id("evt-1")}})["Item"]
    assert len(item["envelope_z"]["B"]) < len(message) / 3
    assert item["expires_at"] == {"N": str(int(NOW) + 3600)}
    assert "recent_key" not in item, "the archive is not an event: the recent-events index must not list it"
    # AND it reads back exactly as queued
    assert archive.get("evt-1") == message


def test_an_envelope_too_big_for_a_cheap_item_goes_to_the_payload_bucket(archive: EnvelopeArchive) -> None:
    # GIVEN an envelope that stays over the item bound once compressed
    message = json.dumps({"id": "evt-2", "body": incompressible(3 * ITEM_MAX_BYTES)})

    # WHEN it is archived / THEN it is an object in the bucket, not an item, and reads back the same
    assert archive.put("evt-2", message) == "bucket"
    assert "Item" not in archive.client.get_item(TableName=STATUS_TABLE, Key={"id": {"S": item_id("evt-2")}})
    archive.s3.head_object(Bucket=PAYLOAD_BUCKET, Key=object_key("evt-2"))
    assert archive.get("evt-2") == message


def test_an_event_never_archived_reads_as_none(archive: EnvelopeArchive) -> None:
    assert archive.get("evt-unknown") is None


def test_the_ingress_archives_what_it_queued_while_sendmessage_is_in_flight(archiving: Any, sqs: Any) -> None:
    # GIVEN an ingress with the archive on, where the archive's PutItem waits until SendMessage has started
    ingress = Ingress.from_environment(sqs=sqs, clock=lambda: NOW)
    assert ingress.archive is not None
    assert ingress.status is not None
    send_started = threading.Event()

    def put(params: dict[str, Any], **_: Any) -> None:
        if params["Item"]["id"]["S"].startswith("envelope#"):
            assert send_started.wait(10), "the archive write did not overlap SendMessage"

    ingress.status.client.meta.events.register("before-parameter-build.dynamodb.PutItem", put)
    sqs.meta.events.register("before-parameter-build.sqs.SendMessage", lambda **_: send_started.set())

    # WHEN an event is accepted
    response = ingress.handle(http_event(headers={"idempotency-key": "a-1", "x-event-type": "order.created"}))

    # THEN the archived copy is the very message queued, and both writes shared one client
    assert response["statusCode"] == 202
    event_id = json.loads(response["body"])["id"]
    [message] = drain(sqs, ingress.settings.queue_url)
    assert ingress.archive.get(event_id) == message["Body"]
    assert ingress.archive.client is ingress.status.client


def test_the_archive_does_not_need_the_queued_record(archiving: Any, sqs: Any) -> None:
    # GIVEN QueuedStatus=false: no record write in the ingress, the archive on
    archiving.setenv("INQUEUE_QUEUED_STATUS", "false")
    ingress = Ingress.from_environment(sqs=sqs, clock=lambda: NOW)
    assert ingress.status is None
    assert ingress.archive is not None

    # WHEN an event is accepted / THEN its envelope is kept all the same
    response = ingress.handle(http_event(headers={"idempotency-key": "a-2"}))
    assert ingress.archive.get(json.loads(response["body"])["id"]) is not None


def test_a_failed_archive_write_still_answers_202_and_queues_the_event(
    archiving: Any, sqs: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an archive whose write fails
    ingress = Ingress.from_environment(sqs=sqs, clock=lambda: NOW)
    assert ingress.archive is not None

    def refuse(*_: Any) -> None:
        raise RuntimeError("table unavailable")

    ingress.archive.put = refuse  # type: ignore[method-assign]

    # WHEN an event arrives / THEN it is accepted and queued, and the miss is logged and counted
    response = ingress.handle(http_event(headers={"idempotency-key": "a-3"}))
    assert response["statusCode"] == 202
    assert len(drain(sqs, ingress.settings.queue_url)) == 1
    assert "envelope not archived; the event is queued all the same" in caplog.text
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [line["ArchiveWriteFailed"] for line in metrics if "ArchiveWriteFailed" in line] == [[1.0]]


def test_the_archive_is_off_unless_asked_for(ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INQUEUE_STATUS_TABLE", STATUS_TABLE)
    assert Ingress.from_environment().archive is None
