"""The DynamoDB tables and S3 bucket the guarantees need, shaped as in infra/template.yaml."""

from __future__ import annotations

from typing import Any

import boto3

STATUS_TABLE = "inqueue-status"
IDEMPOTENCY_TABLE = "inqueue-idempotency"
PAYLOAD_BUCKET = "inqueue-payloads"


def create_status_table(name: str = STATUS_TABLE) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def create_idempotency_table(name: str = IDEMPOTENCY_TABLE) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def create_payload_bucket(name: str = PAYLOAD_BUCKET) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return client
