"""The DynamoDB tables and S3 bucket the guarantees need, shaped as in infra/template.yaml."""

from __future__ import annotations

import json
from typing import Any

import boto3

STATUS_TABLE = "inqueue-status"
IDEMPOTENCY_TABLE = "inqueue-idempotency"
PAYLOAD_BUCKET = "inqueue-payloads"


def _create_table_keyed_on_id(name: str) -> Any:
    # Both tables have the template's shape: one string hash key named "id".
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def create_status_table(name: str = STATUS_TABLE, *, index: bool = True) -> Any:
    """The status table, with the template's recent-events index (``EventIndexShards`` > 0) unless ``index`` is off."""
    if not index:
        return _create_table_keyed_on_id(name)
    from inqueue.status import RECENT_INDEX, RECENT_KEY, RECENT_PROJECTED, RECENT_SORT

    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in ("id", RECENT_KEY, RECENT_SORT)],
        GlobalSecondaryIndexes=[
            {
                "IndexName": RECENT_INDEX,
                "KeySchema": [
                    {"AttributeName": RECENT_KEY, "KeyType": "HASH"},
                    {"AttributeName": RECENT_SORT, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(RECENT_PROJECTED)},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def create_idempotency_table(name: str = IDEMPOTENCY_TABLE) -> Any:
    return _create_table_keyed_on_id(name)


def create_payload_bucket(name: str = PAYLOAD_BUCKET) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return client


def create_queues(
    sqs: Any, name: str = "inqueue-events", *, fifo: bool = False, max_receives: int = 3
) -> tuple[str, str]:
    """The events queue and its dead-letter queue, as the template makes them: (queue URL, DLQ URL)."""
    suffix = ".fifo" if fifo else ""
    fifo_attributes = {"FifoQueue": "true"} if fifo else {}
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=fifo_attributes)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})
    queue_url = sqs.create_queue(
        QueueName=f"{name}{suffix}",
        Attributes={"VisibilityTimeout": "180", "RedrivePolicy": policy, **fifo_attributes},
    )["QueueUrl"]
    return str(queue_url), str(dlq_url)


def queue_arn(sqs: Any, queue_url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def receive_event(sqs: Any, queue_url: str, max_messages: int = 10) -> dict[str, Any]:
    """One receive, shaped as the Lambda event source mapping delivers it (see LOCAL-EMULATION.md section 2)."""
    arn = queue_arn(sqs, queue_url)
    messages = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max_messages,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    records = []
    for message in messages:
        attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        }
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message["Attributes"]),
            "messageAttributes": attributes,
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": "us-east-1",
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        records.append(record)
    return {"Records": records}


def visible_count(sqs: Any, queue_url: str) -> int:
    answer = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(answer["Attributes"]["ApproximateNumberOfMessages"])


def settle(sqs: Any, queue_url: str, event: dict[str, Any], response: Any) -> None:
    """What the event source mapping does after the invocation: delete every record not reported."""
    failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
    for record in event["Records"]:
        if record["messageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])
