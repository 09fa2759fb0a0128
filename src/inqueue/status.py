"""One record per event: its status for callers and its idempotency state for the worker, in one DynamoDB item.

Item (table key ``id``, a string; every timestamp ISO 8601 UTC with milliseconds, so they compare as strings)::

    {"id": "<event id>",
     "status": "queued|processing|retrying|deferred|succeeded|dead",
     "attempt": 2,                        # the latest attempt (0: not tried yet); deferrals are not attempts
     "source": "github", "type": "push",
     "received_at": "2026-11-23T12:00:00.123Z", "correlation_id": "...",   # from the envelope, never lost
     "next_try_at": "...",                # retrying, deferred: when the message is visible again
     "deferrals": 3,                      # how many times a delivery was deferred (a limit, the time left)
     "last_error": "TimeoutError: ...",   # retrying / dead: the last failure, at most 1,000 characters
     "reason": "...",                     # dead: why it was given up
     "result": "{...}",                   # succeeded: the processor's result as JSON text when it is JSON and
     "result_omitted": "too_large",       #   <= 4 KiB, else why not ("too_large" or "not_json"); get() decodes it
     "completed_at": "...",               # idempotency: the processor succeeded; duplicates get `result` back
     "lock_expires_at": 1795435230000,    # idempotency: an attempt holds the event until then (epoch ms, the
     "lock_id": "<request id>/<message id>",  # invocation's deadline); absent when nobody holds it
     "history": [                         # the timeline, oldest first, at most HISTORY_MAX entries (below)
        {"at": "...", "status": "queued"},
        {"at": "...", "status": "processing", "attempt": 1},
        {"at": "...", "status": "retrying", "attempt": 1, "error": "TimeoutError: crm slow",
         "next_try_at": "..."},
        {"at": "...", "status": "succeeded", "attempt": 2}],
     "updated_at": "...", "expires_at": 1796040000,   # expires_at: epoch seconds, the table's TTL
     "recent_key": "2026-11-23#3"}        # the recent-events index's partition (below), set once

``recent_key`` puts a record in the table's sparse index ``recent`` (partition ``recent_key``,
sort ``received_at``, projecting ``source`` and ``type``), which the console reads to list
events newest first without a scan: the day of ``received_at`` and a shard picked from the
id, so no single index partition takes every write (DynamoDB allows about 1,000 writes a
second per partition key). Whichever write creates the record sets it (``queued``, or the
worker's ``claim`` with ``if_not_exists``), from the envelope alone, so both compute the same
key; every indexed attribute is written once, so later status writes never touch the index.
Items without it (the destinations' rate and lease items) are not in the index.

A history entry is the status one write set, with what that write knew: ``attempt``,
``error`` and ``reason`` (each at most 120 characters), ``next_try_at``. Entries whose
``reason`` is ``redriven`` (an operator sent the event back), ``duplicate`` (a
redelivery of a completed event) or ``skipped`` (a FIFO group stopped at an earlier
failure) mark moves that are not attempts, and so does every ``deferred`` entry
(``reason``: which limit, or the invocation's time; ``deferrals``: the count so far). A
deferral takes the place of its claim's ``processing`` entry (nothing was attempted), and
of the ``deferred`` entry just before it, so deferring an event many times keeps one
entry. Entries are in write order; the ingress's
``queued`` entry can land after the worker's first ``processing`` one (or be written by
the worker from the envelope when the ingress wrote none), so sort by ``at`` for time.
DynamoDB cannot trim a list and append to it in one expression: every write appends one
entry, and a write that follows this worker's claim (which returns the item) replaces
the list with the first entry and the latest ``HISTORY_MAX - 1`` when it would grow
past the bound, so the item stays small (a write costs one unit per KiB of item).

The idempotency state follows Powertools' idempotency semantics in the same item:

- ``claim`` takes the event for one attempt (status ``processing``, ``lock_expires_at`` the
  invocation's deadline) unless it is completed (a duplicate: the stored result comes
  back in the same call, from ``ReturnValuesOnConditionCheckFailure=ALL_OLD``), locked
  by a live attempt elsewhere (in progress: try again after a backoff), or dead in this
  message's life. An expired lock, or an item past ``expires_at`` that DynamoDB's TTL has
  not deleted yet, is taken as if absent.
- a failed attempt releases the lock (``retrying`` or ``dead``), and only its own lock.
- ``succeeded`` stores the result and releases the lock; it is always the truth and
  replaces anything.
- ``queued`` (the ingress) creates the item and never overwrites one.
- ``dead`` never replaces a completed event. A dead event is claimed again only by a new
  life of its message (``since``: first received after it was declared dead, i.e. a
  redrive or a resend), a replay (``bypass``), or after ``redriven`` put it back to queued.

A write refused by its condition returns ``False``; any other failure raises, and the
caller decides whether it matters.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inqueue.aws import CONDITION_FAILED, error_code
from inqueue.envelope import Envelope, isoformat_ms

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

QUEUED = "queued"
PROCESSING = "processing"
RETRYING = "retrying"
DEFERRED = "deferred"
SUCCEEDED = "succeeded"
DEAD = "dead"
FINAL = frozenset({SUCCEEDED, DEAD})
STATUSES = (QUEUED, PROCESSING, RETRYING, DEFERRED, SUCCEEDED, DEAD)

# Why a claim was refused.
COMPLETED = "completed"
IN_PROGRESS = "in_progress"

# History entry reasons for moves that are not attempts.
REDRIVEN = "redriven"
DUPLICATE = "duplicate"
SKIPPED = "skipped"

DEFAULT_TTL_SECONDS = 7 * 86_400
RESULT_MAX_BYTES = 4096
ERROR_MAX_CHARS = 1000
HISTORY_MAX = 20
HISTORY_TEXT_MAX = 120

# The recent-events index (see above): its name, attributes and default shard count (the template's EventIndexShards).
RECENT_INDEX = "recent"
RECENT_KEY = "recent_key"
RECENT_SORT = "received_at"
RECENT_PROJECTED = ("source", "type")
DEFAULT_INDEX_SHARDS = 4

# A short leash: the ingress answers senders with a 3 s budget and this write is best effort.
STATUS_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 1,
    "read_timeout": 1,
    "retries": {"mode": "standard", "total_max_attempts": 2},
}

Item = dict[str, Any]  # DynamoDB's wire shape: {"name": {"S": "..."}}


def describe_error(error: BaseException) -> str:
    """``Type: message``, short enough for a status record and a DLQ attribute."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text[:ERROR_MAX_CHARS]


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim found: the lock taken (``taken``), or who holds the event (``held``) and what it stored."""

    event_id: str
    taken: bool
    token: str
    attempt: int
    held: str | None  # COMPLETED, IN_PROGRESS or DEAD when refused
    previous: Item  # the item before the call (wire shape), {} when there was none
    history: tuple[Item, ...]  # the item's entries after the call (taken) or as found (refused)

    @property
    def previous_status(self) -> str | None:
        return _text(self.previous, "status")

    @property
    def deferrals(self) -> int:
        """How many times the event's deliveries were deferred before this claim."""
        return _number(self.previous, "deferrals") or 0

    def stored_result(self) -> tuple[Any, str | None]:
        """A completed event's result (decoded) and why it is missing, as its first success stored them."""
        encoded = _text(self.previous, "result")
        return (json.loads(encoded) if encoded is not None else None), _text(self.previous, "result_omitted")


class StatusStore:
    """Every write to the one record per event; the client is built on first use."""

    def __init__(
        self,
        table_name: str,
        client: Any = None,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        client_config: Mapping[str, Any] | None = None,
        index_shards: int = DEFAULT_INDEX_SHARDS,
    ):
        self.table_name = table_name
        self._client: DynamoDBClient | None = client
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._client_config = dict(client_config or STATUS_CLIENT_CONFIG)
        self.index_shards = index_shards  # 0: records are not listed in the recent-events index

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            from inqueue.aws import client

            self._client = client("dynamodb", **self._client_config)
        return self._client

    # -- the ingress --------------------------------------------------------------------

    def queued(self, envelope: Envelope) -> bool:
        """Create the record of an event just accepted; never overwrites one (the worker may have been first)."""
        now = self.clock()
        item: Item = {
            "id": {"S": envelope.id},
            "status": {"S": QUEUED},
            "attempt": {"N": "0"},
            **self._identity(envelope),
            "history": {"L": [_entry(QUEUED, isoformat_ms(now))]},
            "updated_at": {"S": isoformat_ms(now)},
            "expires_at": {"N": str(int(now) + self.ttl_seconds)},
        }
        return self._write(
            self.client.put_item,
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(id)",
        )

    def withdraw_queued(self, event_id: str) -> bool:
        """Undo ``queued`` when the event could not be queued after all: a record must not say queued for nothing.

        Deletes only a record nothing has touched since (still queued, never attempted, one entry).
        """
        return self._write(
            self.client.delete_item,
            TableName=self.table_name,
            Key={"id": {"S": event_id}},
            ConditionExpression="#status = :queued AND #attempt = :zero AND size(#history) = :one",
            ExpressionAttributeNames={"#status": "status", "#attempt": "attempt", "#history": "history"},
            ExpressionAttributeValues={":queued": {"S": QUEUED}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
        )

    # -- the worker ---------------------------------------------------------------------

    def claim(
        self,
        envelope: Envelope,
        *,
        attempt: int,
        token: str,
        deadline_ms: int,
        since: float | None = None,
        bypass: bool = False,
    ) -> Claim:
        """Take the event for one attempt until ``deadline_ms``, in one conditional write.

        ``since``: when this message was first received (epoch seconds), which tells a new life
        of a dead event from a straggler of the old one. ``bypass``: a replay that runs the
        processor again although the event completed (a live lock still holds it off).
        """
        now = self.clock()
        entry = _entry(PROCESSING, isoformat_ms(now), attempt=attempt)
        update = _Update(now, self.ttl_seconds)
        update.set("status", {"S": PROCESSING})
        update.set("attempt", {"N": str(attempt)})
        update.set("lock_expires_at", {"N": str(deadline_ms)})
        update.set("lock_id", {"S": token})
        for name, value in self._identity(envelope).items():
            update.default(name, value)
        # A record the ingress did not write starts with its queued entry, from the envelope.
        received = {"L": [_entry(QUEUED, envelope.received_at)]}
        update.expression("#history = list_append(if_not_exists(#history, :received), :entry)", "history")
        update.values.update({":received": received, ":entry": {"L": [entry]}})
        update.remove("next_try_at", "reason")
        if bypass:  # the completed state goes; otherwise it is absent, or stale in an expired item (see retrying)
            update.remove(*_OLD_RESULT)
        # Taken when absent or expired, else when not locked by a live attempt and neither completed nor dead
        # in this message's life; a bypass (a replay) takes completed and dead events too.
        taken_unless_locked = "attribute_not_exists(#lock_expires_at) OR #lock_expires_at < :now_ms"
        if bypass:
            claimable = taken_unless_locked
        else:
            claimable = (
                f"attribute_not_exists(#completed_at) AND ({taken_unless_locked})"
                " AND (#status <> :dead OR #updated_at < :since)"
            )
            update.values.update({":dead": {"S": DEAD}, ":since": {"S": isoformat_ms(since) if since else ""}})
        condition = f"attribute_not_exists(#id) OR #expires_at < :now_s OR ({claimable})"
        update.values.update({":now_s": {"N": str(int(now))}, ":now_ms": {"N": str(int(now * 1000))}})
        request = update.request(self.table_name, envelope.id, condition)
        try:
            answer = self.client.update_item(
                **request, ReturnValues="ALL_OLD", ReturnValuesOnConditionCheckFailure="ALL_OLD"
            )
        except Exception as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            found: Item = dict(getattr(exc, "response", {}).get("Item") or {})
            return Claim(
                event_id=envelope.id,
                taken=False,
                token=token,
                attempt=attempt,
                held=_holder(found, now),
                previous=found,
                history=tuple(_list(found, "history")),
            )
        previous: Item = dict(answer.get("Attributes") or {})
        history = _list(previous, "history") if previous else [received["L"][0]]
        return Claim(
            event_id=envelope.id,
            taken=True,
            token=token,
            attempt=attempt,
            held=None,
            previous=previous,
            history=(*history, entry),
        )

    def succeeded(
        self,
        event_id: str,
        result: Any = None,
        *,
        attempt: int | None = None,
        result_omitted: str | None = None,
        claim: Claim | None = None,
        envelope: Envelope | None = None,
        at: float | None = None,
    ) -> bool:
        """Record success and store the result for duplicates; releases the lock. Always the truth: unconditional.

        ``result_omitted`` says why a result the caller could not pass is missing. After this worker's
        ``claim``, what the claim already wrote (the envelope's fields) or removed (``next_try_at``,
        ``reason``) is left alone: nothing else writes an event while its lock is held, and a smaller
        expression is cheaper to send (and much cheaper for moto to evaluate). ``at`` is when it
        succeeded (``completed_at``; default now), the time a result callback reports.
        """
        now = self.clock() if at is None else at
        attempt = claim.attempt if claim is not None and attempt is None else attempt
        update = _Update(now, self.ttl_seconds)
        update.set("status", {"S": SUCCEEDED})
        update.set("completed_at", {"S": isoformat_ms(now)})
        if attempt is not None:
            update.set("attempt", {"N": str(attempt)})
        encoded, omitted = (None, result_omitted) if result is None else encode_result(result)
        if encoded is not None:
            update.set("result", {"S": encoded})
            update.remove("result_omitted")
        elif omitted:
            update.set("result_omitted", {"S": omitted})
            update.remove("result")
        else:
            update.remove("result", "result_omitted")
        if envelope is not None:
            for name, value in self._identity(envelope).items():
                update.default(name, value)
        update.history(claim, _entry(SUCCEEDED, isoformat_ms(now), attempt=attempt))
        update.remove("lock_expires_at", "lock_id")
        if claim is None or not claim.taken:
            update.remove("next_try_at", "reason")
        return self._write(self.client.update_item, **update.request(self.table_name, event_id))

    def retrying(self, claim: Claim, *, error: BaseException | str, next_try_at: float | None = None) -> bool:
        """A failed attempt: release this claim's lock and say when the next try is due (when known)."""
        now = self.clock()
        last_error = (error if isinstance(error, str) else describe_error(error))[:ERROR_MAX_CHARS]
        update = _Update(now, self.ttl_seconds)
        update.set("status", {"S": RETRYING})
        update.set("attempt", {"N": str(claim.attempt)})
        update.set("last_error", {"S": last_error})
        due = isoformat_ms(next_try_at) if next_try_at is not None else None
        if due is not None:
            update.set("next_try_at", {"S": due})
        else:
            update.remove("next_try_at")
        update.history(
            claim, _entry(RETRYING, isoformat_ms(now), attempt=claim.attempt, error=last_error, next_try_at=due)
        )
        # A claim of an expired item (not yet deleted by TTL) leaves its old result: this attempt's failure ends it.
        update.remove("lock_expires_at", "lock_id", *_OLD_RESULT)
        return self._write(self.client.update_item, **update.request(self.table_name, claim.event_id, _OWN_LOCK, claim))

    def deferred(
        self, claim: Claim, *, reason: str, next_try_at: float | None = None, attempts: int | None = None
    ) -> bool:
        """Not an attempt after all: a delivery limit had no slot, or the invocation no time; release the lock.

        ``attempt`` goes back to the attempts made before this claim (or to ``attempts``: on FIFO,
        where a deferral spends a receive, the claim's own), ``deferrals`` counts up, and the
        history's last entries (this claim's ``processing``, a ``deferred`` just before it) give
        way to one ``deferred`` entry with the count, so repeated deferrals keep the history short.
        """
        now = self.clock()
        attempts = max(claim.attempt - 1, 0) if attempts is None else attempts
        deferrals = (_number(claim.previous, "deferrals") or 0) + 1
        due = isoformat_ms(next_try_at) if next_try_at is not None else None
        update = _Update(now, self.ttl_seconds)
        update.set("status", {"S": DEFERRED})
        update.set("attempt", {"N": str(attempts)})
        update.set("deferrals", {"N": str(deferrals)})
        if due is not None:
            update.set("next_try_at", {"S": due})
        else:
            update.remove("next_try_at")
        entry = _entry(DEFERRED, isoformat_ms(now), next_try_at=due, reason=reason)
        entry["M"]["deferrals"] = {"N": str(deferrals)}
        kept = list(claim.history[:-1]) if claim.taken else list(claim.history)
        if len(kept) > 1 and _entry_status(kept[-1]) == DEFERRED:
            kept.pop()
        update.replace_history([*kept, entry])
        update.remove("lock_expires_at", "lock_id", *_OLD_RESULT)
        return self._write(self.client.update_item, **update.request(self.table_name, claim.event_id, _OWN_LOCK, claim))

    def dead(
        self,
        event_id: str,
        reason: str,
        attempts: int | None = None,
        *,
        error: str | None = None,
        claim: Claim | None = None,
        at: float | None = None,
    ) -> bool:
        """Given up. After a claim, only that claim's lock is released; without one, anything but a completed event.

        ``at``: when (``updated_at``; default now), the time a result callback reports.
        """
        now = self.clock() if at is None else at
        update = _Update(now, self.ttl_seconds)
        update.set("status", {"S": DEAD})
        update.set("reason", {"S": reason[:ERROR_MAX_CHARS]})
        attempts = claim.attempt if claim is not None and attempts is None else attempts
        if attempts is not None:
            update.set("attempt", {"N": str(attempts)})
        if error:
            update.set("last_error", {"S": error[:ERROR_MAX_CHARS]})
        update.history(claim, _entry(DEAD, isoformat_ms(now), attempt=attempts, error=error, reason=reason))
        update.remove("next_try_at")
        if claim is not None:
            update.remove("lock_expires_at", "lock_id", *_OLD_RESULT)
            return self._write(self.client.update_item, **update.request(self.table_name, event_id, _OWN_LOCK, claim))
        return self._write(self.client.update_item, **update.request(self.table_name, event_id, _NOT_COMPLETED))

    def skipped(self, claim: Claim) -> bool:
        """Release a claim whose processor never ran (its FIFO group stopped at an earlier failure): as it was."""
        now = self.clock()
        status = claim.previous_status or QUEUED
        attempt = _number(claim.previous, "attempt") or 0
        update = _Update(now, self.ttl_seconds)
        update.set("status", {"S": status})
        update.set("attempt", {"N": str(attempt)})
        update.history(claim, _entry(status, isoformat_ms(now), attempt=claim.attempt, reason=SKIPPED))
        update.remove("lock_expires_at", "lock_id")
        return self._write(self.client.update_item, **update.request(self.table_name, claim.event_id, _OWN_LOCK, claim))

    def duplicate(self, claim: Claim) -> bool:
        """A completed event delivered again after a redrive or replay moved its status: succeeded again, as stored."""
        now = self.clock()
        update = _Update(now, self.ttl_seconds)
        update.set("status", {"S": SUCCEEDED})
        update.history(claim, _entry(SUCCEEDED, isoformat_ms(now), attempt=claim.attempt, reason=DUPLICATE))
        update.remove("next_try_at", "reason")
        condition = "attribute_exists(#completed_at)"
        return self._write(self.client.update_item, **update.request(self.table_name, claim.event_id, condition))

    # -- operators ----------------------------------------------------------------------

    def redriven(self, event_id: str) -> bool:
        """Back to ``queued`` with the attempts reset, before an operator sends the event again.

        Unconditional: a redrive or replay is the operator's decision, made before the message is
        sent, so no worker write for the new delivery can come before it. A lock and a stored
        result stay: a live attempt keeps the event, and a completed event stays completed (its
        redelivery is a duplicate unless the replay bypasses idempotency).
        """
        now = self.clock()
        update = _Update(now, self.ttl_seconds)
        update.set("status", {"S": QUEUED})
        update.set("attempt", {"N": "0"})
        update.history(None, _entry(QUEUED, isoformat_ms(now), reason=REDRIVEN))
        update.remove("next_try_at", "reason")
        return self._write(self.client.update_item, **update.request(self.table_name, event_id))

    # -- reads --------------------------------------------------------------------------

    def get(self, event_id: str, *, consistent: bool = True) -> dict[str, Any] | None:
        """The record as plain Python (numbers as int, ``result`` decoded), or None when there is none."""
        answer = self.client.get_item(TableName=self.table_name, Key={"id": {"S": event_id}}, ConsistentRead=consistent)
        item = answer.get("Item")
        if not item:
            return None
        from boto3.dynamodb.types import TypeDeserializer  # reads only: the ingress never pays for it

        deserializer = TypeDeserializer()
        record = {name: _plain(deserializer.deserialize(value)) for name, value in item.items()}
        if isinstance(record.get("result"), str):
            record["result"] = json.loads(record["result"])
        return record

    # -- plumbing -----------------------------------------------------------------------

    def _identity(self, envelope: Envelope) -> Item:
        """What the write that creates a record sets from the envelope: its identity, and its index key."""
        fields = _identity(envelope)
        if self.index_shards:
            fields[RECENT_KEY] = {"S": recent_key(envelope.id, envelope.received_at, self.index_shards)}
        return fields

    @staticmethod
    def _write(call: Callable[..., Any], **request: Any) -> bool:
        try:
            call(**request)
        except Exception as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise
        return True


# What a claim of an expired item leaves for the attempt's own failure to remove (a claim stays small).
_OLD_RESULT = ("completed_at", "result", "result_omitted")
# Conditions of the writes that follow a claim or stand alone.
_OWN_LOCK = "#lock_id = :token"
_NOT_COMPLETED = "attribute_not_exists(#completed_at)"


class _Update:
    """One UpdateItem: every attribute name aliased (``status``, ``type``, ``result`` are reserved words)."""

    def __init__(self, now: float, ttl_seconds: int):
        self.now = now
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.set("updated_at", {"S": isoformat_ms(now)})
        self.set("expires_at", {"N": str(int(now) + ttl_seconds)})

    def _name(self, name: str) -> str:
        self.names[f"#{name}"] = name
        return f"#{name}"

    def _value(self, value: Any) -> str:
        key = f":v{len(self.values)}"
        self.values[key] = value
        return key

    def set(self, name: str, value: Any) -> None:
        self.sets.append(f"{self._name(name)} = {self._value(value)}")

    def default(self, name: str, value: Any) -> None:
        alias = self._name(name)
        self.sets.append(f"{alias} = if_not_exists({alias}, {self._value(value)})")

    def expression(self, text: str, *names: str) -> None:
        for name in names:
            self._name(name)
        self.sets.append(text)

    def remove(self, *names: str) -> None:
        self.removes.extend(self._name(name) for name in names if f"#{name}" not in self.removes)

    def replace_history(self, entries: list[Item]) -> None:
        """Write the whole list (known from a claim): the first entry and the latest, HISTORY_MAX in all."""
        if len(entries) > HISTORY_MAX:
            entries = [entries[0], *entries[len(entries) - (HISTORY_MAX - 1) :]]
        self.sets.append(f"{self._name('history')} = {self._value({'L': entries})}")

    def history(self, claim: Claim | None, entry: Item) -> None:
        """Append ``entry``; after a claim that returned the list, keep the list within HISTORY_MAX."""
        alias = self._name("history")
        if claim is not None and len(claim.history) + 1 > HISTORY_MAX:
            kept = [claim.history[0], *claim.history[len(claim.history) - (HISTORY_MAX - 2) :], entry]
            self.sets.append(f"{alias} = {self._value({'L': kept})}")
            return
        empty = self._value({"L": []})
        self.sets.append(f"{alias} = list_append(if_not_exists({alias}, {empty}), {self._value({'L': [entry]})})")

    def request(
        self, table: str, event_id: str, condition: str | None = None, claim: Claim | None = None
    ) -> dict[str, Any]:
        expression = "SET " + ", ".join(self.sets)
        removes = [name for name in self.removes if not any(s.startswith(f"{name} ") for s in self.sets)]
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        request: dict[str, Any] = {"TableName": table, "Key": {"id": {"S": event_id}}, "UpdateExpression": expression}
        if condition is not None:
            for name in re.findall(r"#(\w+)", condition):
                self._name(name)
            if ":token" in condition:
                assert claim is not None
                self.values[":token"] = {"S": claim.token}
            request["ConditionExpression"] = condition
        used = expression + " " + (condition or "")
        request["ExpressionAttributeNames"] = {alias: name for alias, name in self.names.items() if alias in used}
        request["ExpressionAttributeValues"] = self.values
        return request


def recent_key(event_id: str, received_at: str, shards: int) -> str:
    """The recent-events index partition of an event: the UTC day it was received and a shard of its id."""
    return f"{received_at[:10]}#{zlib.crc32(event_id.encode('utf-8', 'surrogatepass')) % max(shards, 1)}"


def _identity(envelope: Envelope) -> Item:
    """The fields every record has from its envelope, whichever write creates it."""
    return {
        "source": {"S": envelope.source},
        "type": {"S": envelope.type},
        "received_at": {"S": envelope.received_at},
        "correlation_id": {"S": envelope.correlation_id},
    }


def _entry(
    status: str,
    at: str,
    *,
    attempt: int | None = None,
    error: str | None = None,
    next_try_at: str | None = None,
    reason: str | None = None,
) -> Item:
    fields: Item = {"at": {"S": at}, "status": {"S": status}}
    if attempt is not None:
        fields["attempt"] = {"N": str(attempt)}
    if error:
        fields["error"] = {"S": error[:HISTORY_TEXT_MAX]}
    if next_try_at:
        fields["next_try_at"] = {"S": next_try_at}
    if reason:
        fields["reason"] = {"S": reason[:HISTORY_TEXT_MAX]}
    return {"M": fields}


def _entry_status(entry: Item) -> str | None:
    return _text(entry.get("M") or {}, "status")


def _holder(item: Item, now: float) -> str | None:
    """Why a claim was refused, from the item the refusal returned."""
    lock = _number(item, "lock_expires_at")
    if lock is not None and lock >= int(now * 1000):
        return IN_PROGRESS
    if "completed_at" in item:
        return COMPLETED
    if _text(item, "status") == DEAD:
        return DEAD
    return IN_PROGRESS  # changed between the check and the read of it: treat as taken elsewhere


def _text(item: Item, name: str) -> str | None:
    value = item.get(name) or {}
    text = value.get("S")
    return text if isinstance(text, str) else None


def _number(item: Item, name: str) -> int | None:
    value = (item.get(name) or {}).get("N")
    return int(value) if value is not None else None


def _list(item: Item, name: str) -> list[Item]:
    return list((item.get(name) or {}).get("L") or [])


def encode_result(result: Any) -> tuple[str | None, str | None]:
    """The result as JSON text when it is JSON and small enough, else None and why not."""
    try:
        text = json.dumps(result, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None, "not_json"
    if len(text.encode("utf-8")) > RESULT_MAX_BYTES:
        return None, "too_large"
    return text, None


def plain_record(item: Item) -> dict[str, Any]:
    """An item (wire shape) as plain Python, as ``get`` returns it: numbers as int, ``result`` decoded."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    record = {name: _plain(deserializer.deserialize(value)) for name, value in item.items()}
    if isinstance(record.get("result"), str):
        record["result"] = json.loads(record["result"])
    return record


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
