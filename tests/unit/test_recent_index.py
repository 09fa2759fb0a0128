"""The recent-events index: whichever write creates a record lists it, once, and no status write touches it again."""

from __future__ import annotations

import collections
from typing import Any

import pytest
from tests.factories import make_envelope
from tests.tables import STATUS_TABLE, create_status_table

from inqueue.status import RECENT_INDEX, RECENT_KEY, RECENT_PROJECTED, RECENT_SORT, StatusStore, recent_key

NOW = 1_795_435_200.0  # 2026-11-23T12:00:00Z
INDEXED = (RECENT_KEY, RECENT_SORT, *RECENT_PROJECTED)


@pytest.fixture
def table(aws: None) -> Any:
    return create_status_table()


def store(table: Any, shards: int = 4) -> StatusStore:
    return StatusStore(STATUS_TABLE, table, clock=lambda: NOW, index_shards=shards)


def indexed(table: Any, event_id: str) -> dict[str, Any]:
    item = table.get_item(TableName=STATUS_TABLE, Key={"id": {"S": event_id}})["Item"]
    return {name: item.get(name) for name in INDEXED}


def listed(table: Any, key: str) -> list[dict[str, Any]]:
    answer = table.query(
        TableName=STATUS_TABLE,
        IndexName=RECENT_INDEX,
        KeyConditionExpression="#k = :k",
        ExpressionAttributeNames={"#k": RECENT_KEY},
        ExpressionAttributeValues={":k": {"S": key}},
        ScanIndexForward=False,
    )
    return list(answer["Items"])


def test_the_key_is_the_day_received_and_a_stable_shard_of_the_id() -> None:
    # GIVEN ids received on one day / WHEN keyed / THEN the day leads, and each id always lands in one shard
    key = recent_key("7ae14011-aaaa", "2026-11-23T23:59:59.999Z", 4)
    assert key.startswith("2026-11-23#")
    assert key == recent_key("7ae14011-aaaa", "2026-11-23T00:00:00.000Z", 4)
    # AND a day's events spread over every shard (no partition takes every write)
    shards = collections.Counter(recent_key(f"evt-{n}", "2026-11-23T12:00:00Z", 4) for n in range(1000))
    assert len(shards) == 4
    assert min(shards.values()) > 200


@pytest.mark.parametrize("first", ["ingress", "worker"])
def test_whichever_write_creates_the_record_lists_it_with_the_same_key(table: Any, first: str) -> None:
    # GIVEN an event whose queued write (the ingress) and claim (the worker) may land in either order
    records = store(table)
    envelope = make_envelope("evt-1", received_at="2026-11-23T11:59:00.000Z")
    claim = {"attempt": 1, "token": "req/msg", "deadline_ms": int(NOW * 1000) + 30_000}

    # WHEN both are written, in this order
    if first == "ingress":
        records.queued(envelope)
        records.claim(envelope, **claim)
    else:
        records.claim(envelope, **claim)
        records.queued(envelope)  # refused: the record exists

    # THEN the record is in the index once, under the key both would compute, with what the filters need
    key = recent_key("evt-1", "2026-11-23T11:59:00.000Z", 4)
    assert indexed(table, "evt-1")[RECENT_KEY] == {"S": key}
    [entry] = listed(table, key)
    assert entry["id"] == {"S": "evt-1"}
    assert (entry["source"], entry["type"]) == ({"S": "demo"}, {"S": "order.created"})
    assert entry[RECENT_SORT] == {"S": "2026-11-23T11:59:00.000Z"}
    assert "status" not in entry, "a status in the index would make every status write an index write"


def test_no_status_write_changes_what_the_index_holds(table: Any) -> None:
    # GIVEN a record as the ingress creates it
    records = store(table)
    envelope = make_envelope("evt-2")
    records.queued(envelope)
    created = indexed(table, "evt-2")
    deadline = int(NOW * 1000) + 30_000

    # WHEN every later write of its life lands: a failed attempt, a redrive, a success, a duplicate
    first = records.claim(envelope, attempt=1, token="a/1", deadline_ms=deadline)
    records.retrying(first, error="ConnectionError: down", next_try_at=NOW + 10)
    records.redriven("evt-2")
    second = records.claim(envelope, attempt=1, token="a/2", deadline_ms=deadline)
    records.succeeded("evt-2", {"ok": True}, claim=second)
    records.dead("evt-2", "given up")  # refused: completed

    # THEN each indexed attribute is as it was written at creation: no write since has been an index write
    assert indexed(table, "evt-2") == created


def test_without_shards_records_are_not_listed(table: Any) -> None:
    # GIVEN EventIndexShards=0 / WHEN a record is created by either writer / THEN it has no index key
    records = store(table, shards=0)
    records.queued(make_envelope("evt-3"))
    records.claim(make_envelope("evt-4"), attempt=1, token="t", deadline_ms=int(NOW * 1000) + 1000)
    assert indexed(table, "evt-3")[RECENT_KEY] is None
    assert indexed(table, "evt-4")[RECENT_KEY] is None
    assert table.scan(TableName=STATUS_TABLE, IndexName=RECENT_INDEX)["Items"] == []
