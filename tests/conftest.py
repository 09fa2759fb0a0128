"""Shared fixtures: moto's in-process AWS (no sockets), a real queue, the demo secret."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import aws_xray_sdk.core  # noqa: F401 - its recorder opens a UDP socket on import, before sockets are blocked
import boto3
import pytest
from moto import mock_aws

from tests.factories import DEMO_SECRET

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "InqueueTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "inqueue-test")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

DEMO_SOURCES = {"demo": {"kind": "generic", "auth": "hmac", "secret": "ssm:/inqueue/demo"}}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


@pytest.fixture
def sqs(aws: None) -> Any:
    return boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def queue_url(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="inqueue-events")["QueueUrl"])


@pytest.fixture
def ssm(aws: None) -> Any:
    client = boto3.client("ssm", region_name="us-east-1")
    client.put_parameter(Name="/inqueue/demo", Value=DEMO_SECRET, Type="SecureString")
    return client


@pytest.fixture
def ingress_env(monkeypatch: pytest.MonkeyPatch, queue_url: str, ssm: Any) -> dict[str, str]:
    env = {"INQUEUE_QUEUE_URL": queue_url, "INQUEUE_SOURCES": json.dumps(DEMO_SOURCES)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message now visible in the queue, with its attributes."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)


@pytest.fixture(autouse=True)
def reset_metric_set() -> Iterator[None]:
    """Powertools keeps metrics in a per-process set; start each test with it empty, as a new invocation does."""
    from inqueue.observability import metrics

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()
