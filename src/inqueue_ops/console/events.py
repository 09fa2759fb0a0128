"""Recent events, newest first, from the status table's ``recent`` index: Query and BatchGetItem, never a Scan.

The index (``inqueue.status``: partition ``recent_key`` = the UTC day received and a shard of
the id, sort ``received_at``, projecting ``source`` and ``type``) holds what never changes, so
a page is read in two steps:

1. the index, day by day from the newest, every shard of a day queried at once and merged
   newest first; ``source`` and ``type`` filter there (a FilterExpression on the index);
2. the records of what the index gave, by ``BatchGetItem`` (up to 100 a call), for what
   changes: status, attempts, last error. A status filter applies here, so a page with a
   status filter may have to read further back: it stops after ``budget`` index entries
   or ``days_per_page`` days and says where to go on (``Page.next``).

A page view of 50 events on the default 4 shards costs 4 Queries and 1 BatchGetItem
(about 26 read units: the index entries are ~150 bytes, a record rounds up to 4 KB at
half a unit), $0.000003 at on-demand prices.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from inqueue.status import RECENT_INDEX, RECENT_KEY, RECENT_SORT, plain_record

BATCH_GET = 100  # DynamoDB's most keys per BatchGetItem
EMPTY_DAY_SECONDS = 60.0
MAX_DAYS_BACK = 367  # a record lives at most StatusRetentionSeconds (366 days) after its last write
# What a row shows; the names are aliased (status, type are reserved words).
ROW_FIELDS = (
    "id", "status", "attempt", "source", "type", "received_at", "updated_at", "last_error", "reason",
    "next_try_at", "completed_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Filters:
    source: str | None = None
    type: str | None = None
    status: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.source or self.type or self.status)


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A position in time order: the page goes on with events received before it (``event_id`` breaks ties)."""

    received_at: str
    event_id: str = ""

    def encode(self) -> str:
        return f"{self.received_at}|{self.event_id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        if not text or "|" not in text:
            return None
        at, _, event_id = text.partition("|")
        try:
            datetime.fromisoformat(at[:10])
        except ValueError:
            return None
        return cls(at, event_id)

    def after(self, entry: Cursor) -> bool:
        """Whether ``entry`` comes after this position in newest-first order (no ``event_id``: all of its time)."""
        if not self.event_id:
            return entry.received_at <= self.received_at
        return entry < self


@dataclass(slots=True)
class Page:
    rows: list[dict[str, Any]] = field(default_factory=list)
    next: Cursor | None = None  # where the next (older) page starts; None: nothing older
    examined: int = 0  # index entries read
    days: int = 0  # days walked
    indexed: bool = True  # False: the stack has no index (EventIndexShards=0)


@dataclass(frozen=True, slots=True)
class _Entry:
    received_at: str
    event_id: str

    @property
    def position(self) -> Cursor:
        return Cursor(self.received_at, self.event_id)


class RecentEvents:
    def __init__(
        self,
        client: Any,
        table: str,
        shards: int,
        *,
        clock: Callable[[], float],
        budget: int = 1000,
        days_per_page: int = 8,
        pool: ThreadPoolExecutor | None = None,
    ):
        self.client = client
        self.table = table
        self.shards = shards
        self.clock = clock
        self.budget = budget
        self.days_per_page = days_per_page
        self.pool = pool or ThreadPoolExecutor(max_workers=max(min(shards, 16), 1), thread_name_prefix="console-index")
        # Past days' shards found empty, for a minute: a quiet week costs its Queries once a minute, not per view.
        # (A past day gains entries only when a record is created for an old event: a redrive after it expired.)
        self._empty: dict[tuple[str, Filters, Cursor | None], float] = {}

    def page(self, filters: Filters = Filters(), *, limit: int = 50, before: Cursor | None = None) -> Page:
        page = Page(indexed=self.shards > 0)
        if not self.shards:
            return page
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        day = min(datetime.fromisoformat(before.received_at[:10]).date(), today) if before else today
        oldest = today - timedelta(days=MAX_DAYS_BACK)
        pending: list[_Entry] = []
        last: Cursor | None = None
        while day >= oldest and page.days < self.days_per_page:
            page.days += 1
            for entry in self._day(day.isoformat(), filters, before, limit):
                page.examined += 1
                last = entry.position
                pending.append(entry)
                if len(pending) >= limit:
                    self._resolve(pending, filters, page)
                    pending = []
                if len(page.rows) >= limit:
                    page.rows = page.rows[:limit]
                    page.next = Cursor(page.rows[-1]["received_at"], page.rows[-1]["id"])
                    return page
                if page.examined >= self.budget:
                    self._resolve(pending, filters, page)
                    page.next = last
                    return page
            day -= timedelta(days=1)
        self._resolve(pending, filters, page)
        if day >= oldest:  # stopped by days_per_page: the next page starts with the next day to walk
            page.next = Cursor(f"{day.isoformat()}T23:59:59.999Z")
        return page

    # -- the index ---------------------------------------------------------------------

    def _day(self, day: str, filters: Filters, before: Cursor | None, limit: int) -> Iterator[_Entry]:
        """Every shard of one day, newest first, merged; the first page of each is read at once."""
        size = max(limit, 25)
        now = self.clock()
        past = day < datetime.fromtimestamp(now, UTC).date().isoformat()
        keys = [f"{day}#{shard}" for shard in range(self.shards)]
        keys = [key for key in keys if self._empty.get((key, filters, before), 0.0) < now]
        firsts = [self.pool.submit(self._query, key, filters, before, size, None) for key in keys]
        if past:
            for key, first in zip(keys, firsts, strict=True):
                if first.result() == ([], None):
                    self._empty[(key, filters, before)] = now + EMPTY_DAY_SECONDS
        streams = [self._stream(key, filters, before, size, first) for key, first in zip(keys, firsts, strict=True)]
        yield from heapq.merge(*streams, key=lambda entry: (entry.received_at, entry.event_id), reverse=True)

    def _stream(
        self, key: str, filters: Filters, before: Cursor | None, size: int, first: Future[tuple[list[_Entry], Any]]
    ) -> Iterator[_Entry]:
        entries, more = first.result()
        while True:
            yield from entries
            if not more:
                return
            entries, more = self._query(key, filters, before, size, more)

    def _query(
        self, key: str, filters: Filters, before: Cursor | None, size: int, start: Any
    ) -> tuple[list[_Entry], Any]:
        names = {"#key": RECENT_KEY}
        values: dict[str, Any] = {":key": {"S": key}}
        condition = "#key = :key"
        if before is not None:
            names["#at"] = RECENT_SORT
            values[":at"] = {"S": before.received_at}
            condition += " AND #at <= :at"
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": RECENT_INDEX,
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
            "Limit": size,
        }
        checks = []
        for name, value in (("source", filters.source), ("type", filters.type)):
            if value:
                names[f"#{name}"] = name
                values[f":{name}"] = {"S": value}
                checks.append(f"#{name} = :{name}")
        if checks:
            request["FilterExpression"] = " AND ".join(checks)
        if start is not None:
            request["ExclusiveStartKey"] = start
        answer = self.client.query(**request, ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        entries = [
            _Entry(item[RECENT_SORT]["S"], item["id"]["S"])
            for item in answer.get("Items", [])
            if RECENT_SORT in item and "id" in item
        ]
        # Equal times in any order from DynamoDB; the merge and the cursor need one total order.
        entries.sort(key=lambda entry: (entry.received_at, entry.event_id), reverse=True)
        if before is not None:
            entries = [entry for entry in entries if before.after(entry.position)]
        return entries, answer.get("LastEvaluatedKey")

    # -- the records -------------------------------------------------------------------

    def _resolve(self, entries: Sequence[_Entry], filters: Filters, page: Page) -> None:
        """Append the records of ``entries`` (in their order) that pass the status filter."""
        if not entries:
            return
        records = self.records([entry.event_id for entry in entries])
        for entry in entries:
            record = records.get(entry.event_id)
            if record is None:  # expired since the index was read (the index is eventually consistent)
                continue
            if filters.status and record.get("status") != filters.status:
                continue
            record.setdefault("received_at", entry.received_at)
            page.rows.append(record)

    def records(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The records of these ids, by id (BatchGetItem, 100 a call, unprocessed keys asked again)."""
        found: dict[str, dict[str, Any]] = {}
        names = {f"#{n}": n for n in ROW_FIELDS}
        for start in range(0, len(event_ids), BATCH_GET):
            keys = [{"id": {"S": event_id}} for event_id in dict.fromkeys(event_ids[start : start + BATCH_GET])]
            request: dict[str, Any] = {
                self.table: {"Keys": keys, "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
            }
            for _attempt in range(5):
                answer = self.client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    record = plain_record(item)
                    found[str(record["id"])] = record
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
        return found
