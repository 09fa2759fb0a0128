"""Where the oldest message's age comes from on each backend, without a receive: CloudWatch on AWS, the local
backends' own state, or nothing (said so) on an endpoint that has neither."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from inqueue_ops.console.queues import Cached, CloudWatchOldest, LocalStackOldest, MotoOldest, Unknown, probe

NOW = 1_795_435_200.0
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/inqueue-EventsQueue-AbC"


def test_on_aws_the_age_is_cloudwatchs_approximate_age_of_oldest_message() -> None:
    # GIVEN CloudWatch answering for the queue by its name
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(cloudwatch)
    query = {
        "Id": "oldest",
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": "inqueue-EventsQueue-AbC"}],
            },
            "Period": 60,
            "Stat": "Maximum",
        },
    }
    answer = {"MetricDataResults": [{"Id": "oldest", "Values": [431.0, 400.0], "Timestamps": [datetime.now(UTC)] * 2}]}
    expected = {"MetricDataQueries": [query], "StartTime": ANY, "EndTime": ANY, "ScanBy": "TimestampDescending"}
    stubber.add_response("get_metric_data", answer, expected)
    stubber.add_response("get_metric_data", {"MetricDataResults": [{"Id": "oldest", "Values": []}]}, expected)

    # WHEN read / THEN the newest point, and None when the metric has none (an empty queue)
    with stubber:
        oldest = CloudWatchOldest(cloudwatch, clock=lambda: NOW)
        assert oldest(QUEUE) == 431.0
        assert oldest(QUEUE) is None


def test_a_cached_age_is_read_once_a_period_per_queue() -> None:
    reads: list[str] = []

    class Counting:
        source = "counting"

        def __call__(self, queue_url: str) -> float | None:
            reads.append(queue_url)
            return 1.0

    now = [0.0]
    cached = Cached(Counting(), 60.0, clock=lambda: now[0])
    for _ in range(5):
        cached(QUEUE)
    now[0] = 61.0
    cached(QUEUE)
    assert reads == [QUEUE, QUEUE]


def test_localstacks_listing_gives_the_oldest_sent_time_of_every_message() -> None:
    # GIVEN what LocalStack's /_aws/sqs/messages answers (ReceiveMessage's XML shape), hidden messages included
    xml = (
        b'<?xml version="1.0"?><ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">'
        b"<ReceiveMessageResult>"
        b"<Message><MessageId>a</MessageId><Attribute><Name>SentTimestamp</Name><Value>1795435170000</Value></Attribute>"
        b"<Attribute><Name>IsVisible</Name><Value>false</Value></Attribute></Message>"
        b"<Message><MessageId>b</MessageId><Attribute><Name>SentTimestamp</Name><Value>1795435190000</Value></Attribute>"
        b"</Message></ReceiveMessageResult></ReceiveMessageResponse>"
    )
    asked: list[str] = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        return xml

    # WHEN read / THEN the age of the oldest, asked with the hidden and delayed ones shown
    assert LocalStackOldest("http://127.0.0.1:4566", fetch, clock=lambda: NOW)(QUEUE) == 30.0
    assert "ShowInvisible=true" in asked[0]
    assert "ShowDelayed=true" in asked[0]


def test_an_endpoint_with_neither_state_api_is_said_to_be_unknown() -> None:
    def refuse(url: str) -> bytes:
        raise OSError("404")

    assert isinstance(probe(None, QUEUE), Unknown)
    found = probe("http://127.0.0.1:9", QUEUE, fetch=refuse)
    assert isinstance(found, Unknown)
    assert found(QUEUE) is None
    assert found.source == "unknown on this backend"


def test_the_probe_picks_the_runners_moto_first() -> None:
    def moto(url: str) -> bytes:
        assert "/_inqueue/sqs/oldest?" in url
        return b'{"messages": 0, "oldest_sent_ms": null}'

    found: Any = probe("http://127.0.0.1:5000", QUEUE, fetch=moto)
    assert isinstance(found, Cached)
    assert isinstance(found.inner, MotoOldest)


@pytest.mark.parametrize("sent", [None, 1795435180000])
def test_motos_answer_is_an_age(sent: int | None) -> None:
    import json

    reader = MotoOldest("http://m", lambda _url: json.dumps({"oldest_sent_ms": sent}).encode(), clock=lambda: NOW)
    assert reader(QUEUE) == (None if sent is None else 20.0)
