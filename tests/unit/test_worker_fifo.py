"""FIFO mode at the ingress: each source's ordering key becomes the MessageGroupId."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.conftest import DEMO_SOURCES
from tests.factories import load_event

from inqueue.envelope import Envelope
from inqueue.ingress import Ingress
from inqueue.ordering import message_group_id
from inqueue.sources import ConfigError, parse_config

NOW = 1_795_435_200.0
BITRIX_KEY = ["auth.member_id", "data.FIELDS.ID"]


@pytest.fixture
def fifo_url(sqs: Any) -> str:
    attributes = {"FifoQueue": "true"}
    return str(sqs.create_queue(QueueName="inqueue-events.fifo", Attributes=attributes)["QueueUrl"])


def fifo_ingress(monkeypatch: pytest.MonkeyPatch, url: str, ordering_key: Any = None) -> Ingress:
    source = dict(DEMO_SOURCES["demo"])
    if ordering_key is not None:
        source["ordering_key"] = ordering_key
    monkeypatch.setenv("INQUEUE_QUEUE_URL", url)
    monkeypatch.setenv("INQUEUE_SOURCES", json.dumps({"demo": source}))
    return Ingress.from_environment(clock=lambda: NOW)


def receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    return list(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", []))


def test_a_bitrix24_event_is_grouped_by_portal_and_entity(
    ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, sqs: Any, fifo_url: str
) -> None:
    # GIVEN a FIFO queue and a source ordered by portal and deal id
    ingress = fifo_ingress(monkeypatch, fifo_url, BITRIX_KEY)
    event = load_event("apigw-demo-form.json")
    event["headers"]["idempotency-key"] = "b24-delivery-1"  # not signed: the HMAC covers the body

    # WHEN the example Bitrix24 form event is accepted (twice: a sender retry)
    first = ingress.handle(event)
    second = ingress.handle(event)

    # THEN one message is queued, in the group of that portal's deal, deduplicated by event id
    assert first["statusCode"] == second["statusCode"] == 202
    [message] = receive(sqs, fifo_url)
    envelope = Envelope.from_json(message["Body"])
    portal = envelope.body["auth"]["member_id"]
    assert message["Attributes"]["MessageGroupId"] == f"demo:{portal}:4021"
    assert message["Attributes"]["MessageDeduplicationId"] == envelope.id


def test_without_an_ordering_key_the_source_is_one_group(
    ingress_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, sqs: Any, fifo_url: str
) -> None:
    ingress = fifo_ingress(monkeypatch, fifo_url)

    assert ingress.handle(load_event("apigw-demo-json.json"))["statusCode"] == 202

    [message] = receive(sqs, fifo_url)
    assert message["Attributes"]["MessageGroupId"] == "demo"


def _envelope(body: Any) -> Envelope:
    return Envelope(
        id="e", source="b24", type="t", received_at="r", content_type="application/json", body=body, correlation_id="c"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"auth": {"member_id": "abc"}, "data": {"FIELDS": {"ID": "42"}}}, "b24:abc:42"),
        ({"auth": {"member_id": "abc"}, "data": {"FIELDS": {"ID": 42}}}, "b24:abc:42"),
        ({"auth": {"member_id": "abc"}}, "b24"),  # a missing field: the source's single group
        ({"auth": {"member_id": ""}, "data": {"FIELDS": {"ID": "42"}}}, "b24"),
        ("not an object", "b24"),
    ],
)
def test_group_ids_follow_the_key(body: Any, expected: str) -> None:
    assert message_group_id(_envelope(body), tuple(BITRIX_KEY)) == expected


def test_group_ids_sqs_would_refuse_become_stable_digests() -> None:
    long_body = {"auth": {"member_id": "ü" * 200}, "data": {"FIELDS": {"ID": "1"}}}

    group = message_group_id(_envelope(long_body), tuple(BITRIX_KEY))

    assert group.startswith("b24:")
    assert len(group) <= 128
    assert group == message_group_id(_envelope(long_body), tuple(BITRIX_KEY))


@pytest.mark.parametrize("bad", [42, [""], [1], {"a": 1}])
def test_a_malformed_ordering_key_is_a_config_error(bad: Any) -> None:
    with pytest.raises(ConfigError, match="ordering_key"):
        parse_config(json.dumps({"b24": {"kind": "generic", "secret": "ssm:/x", "ordering_key": bad}}))
