"""The console's data layer without a browser: listing from the index, one event, queues, dead letters, replay."""

from __future__ import annotations

import collections
import json
import time
from datetime import datetime
from typing import Any

import pytest

from inqueue.attributes import REPLAY_FLAG
from inqueue.claimcheck import ClaimCheck
from inqueue.status import StatusStore
from inqueue_ops.console.events import Cursor, Filters, RecentEvents
from inqueue_ops.console.jobs import DONE, Busy
from tests.console.conftest import MAX_RECEIVES, NOW, Stack, envelope
from tests.tables import PAYLOAD_BUCKET, STATUS_TABLE


def operations(client: Any) -> collections.Counter[str]:
    """The DynamoDB operations a client makes from now on, by name (botocore's own before-call event)."""
    counts: collections.Counter[str] = collections.Counter()
    client.meta.events.register(
        "before-call.dynamodb.*", lambda event_name, **_: counts.update([event_name.split(".")[-1]])
    )
    return counts


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [str(row["id"]) for row in rows]


def at(minute: int, day: int = 23) -> str:
    return f"2026-11-{day:02d}T{minute // 60:02d}:{minute % 60:02d}:00.000Z"


# -- events, newest first, from the index ---------------------------------------------------


def test_events_are_listed_newest_first_across_shards_and_days_a_page_at_a_time(stack: Stack) -> None:
    # GIVEN 30 events over two days, landing in every shard of the index
    received = {f"evt-{n:03d}": at(n * 40 % 1440, day=21 + n % 2) for n in range(30)}
    for n in range(30):
        stack.store.queued(envelope(n, at=received[f"evt-{n:03d}"]))
    newest_first = sorted(received, key=lambda i: (received[i], i), reverse=True)

    # WHEN the console reads them 12 at a time, following each page's cursor
    seen: list[str] = []
    before = None
    for _ in range(5):
        page = stack.console.events(before=before, limit=12)
        seen += ids(page.rows)
        before = page.next
        if before is None:
            break

    # THEN they come newest first, each once, and every row has what the list shows
    assert seen == newest_first
    row = stack.console.events(limit=1).rows[0]
    assert {"status", "attempt", "source", "type", "received_at", "age_seconds"} <= set(row)
    received_at = datetime.fromisoformat(row["received_at"].replace("Z", "+00:00")).timestamp()
    assert row["age_seconds"] == NOW - received_at


def test_listing_reads_the_index_and_the_records_never_scans(stack: Stack) -> None:
    # GIVEN 60 events today
    for n in range(60):
        stack.store.queued(envelope(n, at=at(n)))
    calls = operations(stack.console.dynamodb)

    # WHEN a page of 50 is read
    page = stack.console.events(limit=50)

    # THEN it took one Query per shard and one BatchGetItem: no Scan, no read per row
    assert len(page.rows) == 50
    assert calls == {"Query": 4, "BatchGetItem": 1}


def test_source_and_type_filter_in_the_index_and_status_on_the_records(stack: Stack) -> None:
    # GIVEN events of two sources and types, some of which succeeded
    for n in range(12):
        source = "github" if n % 3 == 0 else "demo"
        stack.store.queued(envelope(n, at=at(n), source=source, type="push" if n % 2 else "ping"))
    for n in (0, 3, 4):
        stack.store.succeeded(f"evt-{n:03d}", {"ok": True})

    # WHEN filtered / THEN only what matches, newest first
    assert ids(stack.console.events(Filters(source="github")).rows) == ["evt-009", "evt-006", "evt-003", "evt-000"]
    assert ids(stack.console.events(Filters(source="github", type="push")).rows) == ["evt-009", "evt-003"]
    assert ids(stack.console.events(Filters(status="succeeded")).rows) == ["evt-004", "evt-003", "evt-000"]
    assert ids(stack.console.events(Filters(source="github", status="succeeded")).rows) == ["evt-003", "evt-000"]


def test_what_is_not_an_event_is_never_listed(stack: Stack) -> None:
    # GIVEN an event, its archived envelope and a destination's rate item in the same table
    stack.accept(envelope(1, at=at(5)))
    stack.dynamodb.put_item(
        TableName=STATUS_TABLE, Item={"id": {"S": "destination#shop#rate"}, "received_at": {"S": at(6)}}
    )

    # WHEN listed / THEN the event alone, and neither can be opened as an event
    assert ids(stack.console.events().rows) == ["evt-001"]
    assert stack.console.record("destination#shop#rate") is None
    assert stack.console.record("envelope#evt-001") is None


def test_a_quiet_week_ends_a_page_with_where_to_go_on(stack: Stack) -> None:
    # GIVEN one event received ten days ago, nothing since
    stack.store.queued(envelope(1, at="2026-11-13T09:00:00.000Z"))

    # WHEN the first page walks its eight days back / THEN it is empty, and says where to continue
    first = stack.console.events()
    assert (first.rows, first.days) == ([], 8)
    assert first.next is not None
    # AND the next page, from there, finds the event
    assert ids(stack.console.events(before=first.next).rows) == ["evt-001"]


def test_a_quiet_week_is_read_once_a_minute_not_on_every_view(stack: Stack) -> None:
    # GIVEN nothing received for a week, and the list open (it refreshes every second or two)
    calls = operations(stack.console.dynamodb)
    stack.console.events()
    assert calls["Query"] == 4 * 8  # every shard of each of the 8 days walked

    # WHEN it refreshes within the minute / THEN only today is asked again: past days that were empty stay so
    stack.console.events()
    assert calls["Query"] == 4 * 8 + 4
    # AND a minute later, the past days are read again
    stack.clock.now += 61
    stack.console.events()
    assert calls["Query"] == 4 * 8 + 4 + 4 * 8


def test_a_status_filter_stops_at_its_budget_and_says_where_to_go_on(stack: Stack) -> None:
    # GIVEN 40 queued events and a reader allowed 25 index entries a page
    for n in range(40):
        stack.store.queued(envelope(n, at=at(n)))
    recent = RecentEvents(stack.dynamodb, STATUS_TABLE, 4, clock=stack.clock, budget=25)

    # WHEN it looks for dead ones / THEN it stops after 25, with a cursor past the last it read
    page = recent.page(Filters(status="dead"), limit=10)
    assert (page.rows, page.examined) == ([], 25)
    assert page.next == Cursor(at(15), "evt-015")
    recent.pool.shutdown()


def test_without_the_index_nothing_is_listed_and_the_page_says_so(stack: Stack) -> None:
    recent = RecentEvents(stack.dynamodb, STATUS_TABLE, 0, clock=stack.clock)
    assert recent.page().indexed is False


def test_a_cursor_from_the_address_bar_that_is_not_one_is_ignored() -> None:
    assert Cursor.decode("not-a-cursor") is None
    assert Cursor.decode("garbage|evt") is None
    assert Cursor.decode(Cursor(at(5), "evt-1").encode()) == Cursor(at(5), "evt-1")


# -- one event ---------------------------------------------------------------------------


def test_an_event_tells_its_timeline_attempts_errors_and_backoff(stack: Stack) -> None:
    # GIVEN an event that failed once, waited its backoff, then succeeded
    event = envelope(1, at=at(0))
    stack.accept(event)
    deadline = int(NOW * 1000) + 30_000
    first = stack.store.claim(event, attempt=1, token="r/1", deadline_ms=deadline)
    stack.store.retrying(first, error="ConnectionError: crm down", next_try_at=NOW + 12.5)
    stack.clock.now += 13
    second = stack.store.claim(event, attempt=2, token="r/2", deadline_ms=deadline + 13_000)
    stack.store.succeeded(event.id, {"invoice": "INV-1"}, claim=second)

    # WHEN the console shows it
    view = stack.console.event(event.id)

    # THEN the timeline reads as what happened, in time order, with the error and the backoff
    assert view is not None
    assert [step.title for step in view.timeline] == [
        "received",
        "attempt 1 started",
        "attempt 1 failed; retrying after 12.5 s",
        "attempt 2 started",
        "succeeded on attempt 2",
    ]
    assert view.timeline[2].error == "ConnectionError: crm down"
    assert view.record["result"] == {"invoice": "INV-1"}
    # AND its envelope is the archived one, headers and body as queued
    assert view.envelope_from == "the envelope archive"
    assert view.envelope is not None
    assert view.envelope["id"] == event.id
    assert view.body == {"n": 1}
    assert view.final
    assert view.replayable


def test_a_deferral_is_told_as_a_wait_not_a_failure() -> None:
    from inqueue_ops.console.data import timeline

    # GIVEN a record whose delivery waited for its destination's rate (issue 11's deferred entries)
    record = {
        "history": [
            {"at": at(0), "status": "queued"},
            {"at": at(1), "status": "deferred", "reason": "rate: shop", "deferrals": 3, "next_try_at": at(2)},
        ]
    }
    # WHEN told / THEN it says what waited and how often, with no error
    step = timeline(record)[-1]
    assert step.title == "deferred, not attempted (3 so far): rate: shop"
    assert (step.error, step.reason, step.next_try_at) == (None, None, at(2))


def test_a_dead_event_without_an_archived_copy_shows_the_envelope_from_the_dlq(stack: Stack) -> None:
    stack.kill(envelope(2, at=at(1)))
    view = stack.console.event("evt-002")
    assert view is not None
    assert view.envelope_from == "the dead-letter queue"
    assert view.body == {"n": 2}
    assert view.timeline[-1].title == f"dead: given up after attempt {MAX_RECEIVES}"


def test_a_succeeded_event_without_an_archived_copy_says_why_it_cannot_be_replayed(stack: Stack) -> None:
    event = envelope(3, at=at(2))
    stack.accept(event, archive=False)
    stack.store.succeeded(event.id, None)
    view = stack.console.event(event.id)
    assert view is not None
    assert view.envelope is None
    assert not view.replayable
    assert view.envelope_missing is not None
    assert "expired" in view.envelope_missing


def test_a_claim_checked_body_is_read_from_the_payload_bucket(stack: Stack) -> None:
    # GIVEN an event whose body was too large to queue inline
    checked = ClaimCheck(PAYLOAD_BUCKET, stack.s3).store(envelope(4, at=at(3)))
    stack.accept(checked)

    # WHEN shown / THEN its body comes from the bucket, and the page can say where it lives
    view = stack.console.event("evt-004")
    assert view is not None
    assert view.envelope is not None
    assert view.envelope["body_ref"]["key"] == "demo/evt-004.json"
    assert view.body == {"n": 4}


def test_an_unknown_id_is_no_event(stack: Stack) -> None:
    assert stack.console.event("no-such-event") is None


# -- queues --------------------------------------------------------------------------------


def test_queue_counts_and_the_oldest_age_come_without_receiving_anything(stack: Stack) -> None:
    # GIVEN three messages: one visible, one in flight, one delayed; the console's clock 40 s after they were sent
    sent = time.time()  # moto stamps messages with the wall clock
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="a")
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="b")
    stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=1)
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="c", DelaySeconds=60)
    stack.clock.now = sent + 40

    # WHEN the console reads the queues
    events, dead = stack.console.queues()

    # THEN each count is SQS's, and the oldest age is from moto's model
    assert (events.name, events.visible, events.in_flight, events.delayed) == ("events", 1, 1, 1)
    assert events.oldest_age_seconds is not None
    assert 39 <= events.oldest_age_seconds <= 41
    assert events.oldest_from == "moto's queue model (make run)"
    assert (dead.total, dead.oldest_age_seconds) == (0, None)
    # AND nothing was received to learn it: the visible message's first receive is its first
    [message] = stack.sqs.receive_message(QueueUrl=stack.queue_url, AttributeNames=["ApproximateReceiveCount"])[
        "Messages"
    ]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"


# -- dead letters, redrive, purge, replay ------------------------------------------------------


def wait(job: Any, stack: Stack) -> Any:
    for _ in range(200):
        found = stack.console.jobs.get(job.id)
        if found is not None and found.state != "running":
            return found
        time.sleep(0.02)
    raise AssertionError(f"job {job.id} did not end")


def test_dead_letters_are_listed_with_reasons_and_attempts(stack: Stack) -> None:
    stack.kill(envelope(1), envelope(2))
    rows = {row["id"]: row for row in stack.console.dead_letters()}
    assert set(rows) == {"evt-001", "evt-002"}
    assert rows["evt-001"]["reason"] == f"failed {MAX_RECEIVES} times (maxReceiveCount {MAX_RECEIVES})"
    assert rows["evt-001"]["attempts"] == MAX_RECEIVES


def test_a_dead_callback_job_is_shown_as_the_job_it_is(stack: Stack) -> None:
    # GIVEN a result callback the worker queued as a job (no event id), which kept failing into the DLQ
    stack.sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody=json.dumps({"job": "callback", "event_id": "evt-009"}),
        MessageAttributes={
            "inqueue_job": {"DataType": "String", "StringValue": "callback"},
            "callback_for": {"DataType": "String", "StringValue": "evt-009"},
        },
    )
    stack.kill()

    # WHEN the dead letters are listed / THEN it is the callback job of its event, not an event without an id
    [row] = stack.console.dead_letters()
    assert (row["id"], row["job"], row["job_for"]) == ("", "callback", "evt-009")


def test_redrive_of_the_chosen_moves_them_back_with_progress_and_a_count(stack: Stack) -> None:
    # GIVEN three dead letters
    stack.kill(envelope(1), envelope(2), envelope(3))

    # WHEN two of them are redriven
    job = wait(stack.console.redrive(["evt-001", "evt-003"]), stack)

    # THEN the job counted two moved, those are back in the events queue as queued, the third stays
    assert (job.state, job.summary, job.done, job.total) == (DONE, "moved 2, failed 0", 2, 2)
    assert ids(stack.console.dead_letters()) == ["evt-002"]
    assert StatusStore(STATUS_TABLE, stack.dynamodb).get("evt-001")["status"] == "queued"  # type: ignore[index]
    assert stack.console.queues()[0].visible == 2


def test_one_dead_letter_job_at_a_time(stack: Stack) -> None:
    stack.kill(*(envelope(n) for n in range(15)))
    first = stack.console.redrive(None)
    with pytest.raises(Busy):
        stack.console.purge(None)
    assert wait(first, stack).summary == "moved 15, failed 0"


def test_purge_deletes_for_good(stack: Stack) -> None:
    stack.kill(envelope(1), envelope(2))
    stack.clock.now = time.time()  # a purge deletes what SQS received before it began, by SQS's (wall) clock
    job = wait(stack.console.purge(None), stack)
    assert job.summary == "deleted 2, failed 0"
    assert stack.console.dead_letters() == []
    assert stack.console.queues()[0].total == 0


def test_a_succeeded_event_is_replayed_from_its_archived_envelope_with_or_without_idempotency(stack: Stack) -> None:
    # GIVEN an event that succeeded, its message long gone
    event = envelope(5, at=at(4))
    stack.accept(event)
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)
    stack.store.succeeded(event.id, {"ok": True})

    # WHEN it is replayed, then replayed bypassing idempotency
    plain = stack.console.replay(event.id)
    bypass = stack.console.replay(event.id, bypass_idempotency=True)

    # THEN each queued a delivery of the same event id, the second flagged for the worker to run it again
    assert (plain.summary(), bypass.summary()) == ("replayed 1, failed 0", "replayed 1, failed 0")
    assert "from the envelope archive" in plain.notes
    bodies = [
        json.loads(m["Body"])
        for m in stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert sorted((body["id"], REPLAY_FLAG in body["meta"]) for body in bodies) == [(event.id, False), (event.id, True)]
    assert stack.console.record(event.id)["status"] == "queued"  # type: ignore[index]


def test_a_dead_event_is_replayed_from_the_dlq(stack: Stack) -> None:
    stack.kill(envelope(6))
    outcome = stack.console.replay("evt-006")
    assert outcome.summary() == "replayed 1, failed 0"
    assert "from the DLQ" in outcome.notes
    assert stack.console.dead_letters() == []
