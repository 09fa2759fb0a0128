"""Claim checks: large bodies go through S3 and come back to the processor as if sent inline."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from tests.conftest import drain
from tests.factories import LambdaContext, http_event, make_envelope, worker_settings
from tests.tables import PAYLOAD_BUCKET, create_payload_bucket, create_queues, receive_event

from inqueue.claimcheck import ClaimCheck
from inqueue.envelope import CLAIM_CHECK_VERSION, ENVELOPE_VERSION, Envelope
from inqueue.errors import EnvelopeError, PermanentError
from inqueue.ingress import Ingress
from inqueue.worker import DEAD_REASON_ATTRIBUTE, Router, Worker

NOW = 1_795_435_200.0


@pytest.fixture
def s3(aws: None) -> Any:
    return create_payload_bucket()


@pytest.fixture
def ingress(ingress_env: dict[str, str], s3: Any, monkeypatch: pytest.MonkeyPatch) -> Ingress:
    monkeypatch.setenv("INQUEUE_PAYLOAD_BUCKET", PAYLOAD_BUCKET)
    monkeypatch.setenv("INQUEUE_INLINE_LIMIT_BYTES", "2048")
    return Ingress.from_environment(clock=lambda: NOW)


def big_body(size: int) -> bytes:
    return json.dumps({"type": "order.created", "items": ["x" * 100] * (size // 104)}).encode()


def test_a_large_body_goes_to_s3_and_the_worker_puts_it_back(ingress: Ingress, sqs: Any, queue_url: str) -> None:
    # GIVEN a body of ~10 KB against an inline limit of 2 KiB
    body = big_body(10_000)

    # WHEN the ingress accepts it
    response = ingress.handle(http_event(body=body))

    # THEN the queued envelope refers to the S3 object instead of carrying the body
    assert response["statusCode"] == 202
    [message] = drain(sqs, queue_url)
    assert len(message["Body"]) < 2048
    queued = Envelope.from_json(message["Body"])
    assert queued.version == CLAIM_CHECK_VERSION
    assert queued.body is None
    assert queued.body_ref is not None
    assert queued.body_ref["bucket"] == PAYLOAD_BUCKET
    assert queued.body_ref["key"] == f"demo/{queued.id}.json"
    assert queued.body_ref["bytes"] == len(json.dumps(json.loads(body), separators=(",", ":")))

    # AND the worker's processor sees the original body
    seen: list[Any] = []
    router = Router()
    router.default(lambda event: seen.append(event.body))
    record_event = {"Records": [_record(message, queue_url)]}
    assert Worker(router, worker_settings()).handle(record_event, LambdaContext()) == {"batchItemFailures": []}
    assert seen == [json.loads(body)]


def _record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message["Attributes"]),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:inqueue-events",
        "awsRegion": "us-east-1",
    }


def test_a_small_body_stays_inline_as_version_1(ingress: Ingress, sqs: Any, queue_url: str, s3: Any) -> None:
    assert ingress.handle(http_event(body=b'{"type":"ping"}'))["statusCode"] == 202

    [message] = drain(sqs, queue_url)
    envelope = Envelope.from_json(message["Body"])
    assert (envelope.version, envelope.body, envelope.body_ref) == (ENVELOPE_VERSION, {"type": "ping"}, None)
    assert "body_ref" not in json.loads(message["Body"])
    assert s3.list_objects_v2(Bucket=PAYLOAD_BUCKET).get("KeyCount") == 0


def test_a_body_over_the_maximum_is_413_with_nothing_stored_or_queued(
    ingress_env: dict[str, str], s3: Any, monkeypatch: pytest.MonkeyPatch, sqs: Any, queue_url: str
) -> None:
    monkeypatch.setenv("INQUEUE_PAYLOAD_BUCKET", PAYLOAD_BUCKET)
    monkeypatch.setenv("INQUEUE_INLINE_LIMIT_BYTES", "2048")
    monkeypatch.setenv("INQUEUE_MAX_BODY_BYTES", "8192")
    ingress = Ingress.from_environment(clock=lambda: NOW)

    response = ingress.handle(http_event(body=big_body(10_000)))

    assert response["statusCode"] == 413
    assert json.loads(response["body"])["error"]["code"] == "payload_too_large"
    assert drain(sqs, queue_url) == []
    assert s3.list_objects_v2(Bucket=PAYLOAD_BUCKET).get("KeyCount") == 0


def test_an_unreachable_bucket_is_503_and_nothing_is_queued(
    ingress_env: dict[str, str], aws: None, monkeypatch: pytest.MonkeyPatch, sqs: Any, queue_url: str
) -> None:
    monkeypatch.setenv("INQUEUE_PAYLOAD_BUCKET", "no-such-bucket")
    monkeypatch.setenv("INQUEUE_INLINE_LIMIT_BYTES", "2048")
    ingress = Ingress.from_environment(clock=lambda: NOW)

    response = ingress.handle(http_event(body=big_body(10_000)))

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "payload_store_unavailable"
    assert drain(sqs, queue_url) == []


def _stored(s3: Any) -> Envelope:
    envelope = make_envelope("evt-1", type="t", body={"n": 1}, correlation_id="c")
    return ClaimCheck(PAYLOAD_BUCKET, s3).store(envelope)


def test_a_missing_object_is_permanent(s3: Any) -> None:
    envelope = _stored(s3)
    s3.delete_object(Bucket=PAYLOAD_BUCKET, Key=envelope.body_ref["key"])  # type: ignore[index]

    with pytest.raises(PermanentError, match="payload_missing"):
        ClaimCheck(client=s3).resolve(envelope)


def test_an_altered_object_is_permanent(s3: Any) -> None:
    envelope = _stored(s3)
    s3.put_object(Bucket=PAYLOAD_BUCKET, Key=envelope.body_ref["key"], Body=b'{"n":2}')  # type: ignore[index]

    with pytest.raises(PermanentError, match="payload_corrupt"):
        ClaimCheck(client=s3).resolve(envelope)


def test_a_lost_payload_is_dead_lettered_with_the_reason(s3: Any) -> None:
    # GIVEN a queued claim check whose object is gone (expired by the lifecycle rule)
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url, dlq_url = create_queues(sqs)
    envelope = _stored(s3)
    s3.delete_object(Bucket=PAYLOAD_BUCKET, Key=envelope.body_ref["key"])  # type: ignore[index]
    sqs.send_message(QueueUrl=queue_url, MessageBody=envelope.to_json())

    # WHEN the worker gets it
    settings = worker_settings(INQUEUE_QUEUE_URL=queue_url, INQUEUE_DLQ_URL=dlq_url)
    response = Worker(Router(), settings).handle(receive_event(sqs, queue_url), LambdaContext())

    # THEN it is not retried: it is in the DLQ with the reason
    assert response == {"batchItemFailures": []}
    [dead] = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert dead["MessageAttributes"][DEAD_REASON_ATTRIBUTE]["StringValue"].startswith("payload_missing")


def test_a_version_2_envelope_without_a_reference_is_refused() -> None:
    text = json.dumps(
        {
            "version": 2,
            "id": "e",
            "source": "s",
            "type": "t",
            "received_at": "2026-11-23T12:00:00.000Z",
            "content_type": "application/json",
            "correlation_id": "c",
            "body": None,
        }
    )

    with pytest.raises(EnvelopeError, match="body_ref"):
        Envelope.from_json(text)
