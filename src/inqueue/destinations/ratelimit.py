"""Delivery limits every worker shares, kept in the status table: a rate and a concurrency per destination.

**Rate** (``"rate": {"limit": L, "per": P}``) means one delivery every ``T = P / L``
seconds, evenly spaced, with no burst: then no window of ``P`` seconds ever holds more
than ``L`` deliveries, wherever it starts. One item per destination,
``id = "destination#<name>#rate"``, holds ``tat``, the time the next slot opens (GCRA's
theoretical arrival time). A delivery reserves a slot with one conditional UpdateItem:

- idle, ``tat <= now``: ``SET tat = now + T`` if still so: send now;
- busy, ``now < tat <= now + max_wait``: ``SET tat = tat + T`` if still so: sleep until
  the old ``tat``, then send. Concurrent reservations do not conflict: DynamoDB applies
  each ``tat + T`` atomically, so each caller gets its own slot, ``T`` after the last;
- full, ``tat > now + max_wait``: nothing is written; ``Deferred`` says when a slot can
  be had (``tat - max_wait - now``).

Which write to try first is guessed from the last ``tat`` this container saw and the
write that worked last time; a wrong guess costs a second write (the refused one returns the item through
ReturnValuesOnConditionCheckFailure, so there is never a read). ``tat`` only grows, so
when the last one seen is already beyond the wait the deferral costs no write at all. A reserved slot that is
not used (the worker crashed, the request failed) is lost: the rate is then lower, never
higher. Slots are computed from each worker's clock, which Lambda keeps within about a
millisecond of true time.

**Concurrency** (``"concurrency": C``) uses C lease items, ``destination#<name>#lease#<i>``.
A delivery takes a free or expired one (a conditional write) and gives it back after the
answer (another). A lease lasts the longest a delivery may take (the wait, twice the
timeout, and a margin), so a worker that crashes holding one frees it when it expires.

Cost, on demand (1 write request unit per write, items far below 1 KB, $0.625 per million
WRU in us-east-1): a rate is one write per delivery, about $0.63 per million deliveries,
two on a wrong guess; a concurrency limit is two writes more (about $1.25 per million);
every deferral costs the write that found no slot. Every item carries ``expires_at``, so
the table's TTL removes a destination's items a day after its last delivery.
"""

from __future__ import annotations

import random as _random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from inqueue.destinations.config import Destination
from inqueue.errors import Deferred

ITEM_TTL_SECONDS = 86_400
LEASE_MARGIN_SECONDS = 5.0
# Lease slots tried per round: enough to find a free one among mostly free slots, bounded when all are held.
LEASE_TRIES = 4
LEASE_FIRST_POLL_SECONDS = 0.05
LEASE_MAX_POLL_SECONDS = 0.4
# When no lease is free the soonest expiry is only an upper bound: most are given back far sooner.
LEASE_RETRY_SECONDS = 1.0

# As short a leash as the status writes: a stuck limiter must fail the attempt, not the invocation.
LIMITER_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 1,
    "read_timeout": 1,
    "retries": {"mode": "standard", "total_max_attempts": 2},
}

_CONDITION_FAILED = "ConditionalCheckFailedException"
_MICRO = Decimal("0.000001")


class LimitUnavailable(Exception):
    """The limiter's table could not be read or written: an ordinary failure, retried with backoff."""


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to deliver at ``send_at`` (epoch seconds); ``lease`` is given back by ``release``."""

    destination: str
    send_at: float
    lease: tuple[str, str] | None = None  # (item id, holder token)


def rate_key(destination: str) -> str:
    return f"destination#{destination}#rate"


def lease_key(destination: str, index: int) -> str:
    return f"destination#{destination}#lease#{index}"


def _number(value: float | Decimal) -> dict[str, str]:
    return {"N": str(Decimal(value).quantize(_MICRO))}


class DeliveryLimiter:
    """Rate and concurrency limits over the status table; the client is built on first use."""

    def __init__(
        self,
        table_name: str,
        client: Any = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
    ):
        self.table_name = table_name
        self._client = client
        self.clock = clock
        self.sleep = sleep
        self.random = random
        # The last tat seen per destination: which of the two writes to try first.
        self._tat: dict[str, Decimal] = {}
        self._busy: dict[str, bool] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            from inqueue.aws import client

            self._client = client("dynamodb", **LIMITER_CLIENT_CONFIG)
        return self._client

    def acquire(self, destination: Destination, *, max_wait: float) -> Permit:
        """A permit within ``max_wait`` seconds (waiting for a lease here), or ``Deferred`` with when to come back.

        The caller sleeps until ``send_at`` (``wait``) and calls ``release`` after the answer.
        """
        deadline = self.clock() + max(0.0, max_wait)
        lease = self._lease(destination, deadline, max_wait) if destination.concurrency else None
        try:
            send_at = self._slot(destination, deadline) if destination.rate else self.clock()
        except BaseException:
            if lease is not None:
                self.release(Permit(destination.name, 0.0, lease))
            raise
        return Permit(destination.name, send_at, lease)

    def wait(self, permit: Permit) -> None:
        delay = permit.send_at - self.clock()
        if delay > 0:
            self.sleep(delay)

    def release(self, permit: Permit) -> None:
        """Give the lease back; a lease taken over after it expired is left to its new holder."""
        if permit.lease is None:
            return
        key, token = permit.lease
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": key}},
                UpdateExpression="REMOVE #holder, #until",
                ConditionExpression="#holder = :token",
                ExpressionAttributeNames={"#holder": "holder", "#until": "until"},
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except Exception as exc:  # noqa: BLE001 - an unreleased lease only waits for its expiry
            if _error_code(exc) != _CONDITION_FAILED:
                from inqueue.observability import logger

                logger.warning(
                    "could not give back a delivery lease; it expires by itself",
                    extra={"destination": permit.destination, "error": type(exc).__name__},
                )

    # -- rate -----------------------------------------------------------------------------

    def _slot(self, destination: Destination, deadline: float) -> float:
        assert destination.rate is not None
        name = destination.name
        interval = Decimal(str(destination.rate.interval))
        now = Decimal(self.clock()).quantize(_MICRO)
        latest = Decimal(max(deadline, float(now))).quantize(_MICRO)
        seen = self._tat.get(name, Decimal(0))
        if seen > latest:
            # tat only ever grows, so the last one seen is a floor: full for sure, and free to say so.
            raise Deferred(max(float(seen - latest), 0.001), f"destination {name!r}: its rate has no free slot yet")
        # Busy for sure when the last tat seen is ahead; else the regime that held last time probably still does.
        busy = seen > now or self._busy.get(name, False)
        for _ in range(4):
            if busy:
                reserved, tat = self._reserve_busy(name, now, latest, interval)
            else:
                reserved, tat = self._reserve_idle(name, now, interval)
            self._tat[name] = tat if tat is not None else Decimal(0)
            if reserved:
                assert tat is not None
                self._busy[name] = busy
                return float(tat - interval)
            if tat is not None and tat > latest:
                raise Deferred(
                    max(float(tat - latest), 0.001),
                    f"destination {name!r}: its rate has no free slot within the wait",
                )
            busy = tat is not None and tat > now
        # Lost every race between the two writes: the slots are being taken right now.
        raise Deferred(float(interval), f"destination {name!r}: its rate slots are contended")

    def _reserve_idle(self, name: str, now: Decimal, interval: Decimal) -> tuple[bool, Decimal | None]:
        """(True, the new tat) when a slot is reserved, else (False, the current tat, None when there is none)."""
        reserved, tat = self._write(
            rate_key(name),
            "SET #tat = :next, #expires = :expires, #kind = :kind",
            "attribute_not_exists(#tat) OR #tat <= :now",
            {":next": _number(now + interval), ":now": _number(now), ":kind": {"S": "destination_rate"}},
        )
        return reserved, now + interval if reserved else tat

    def _reserve_busy(self, name: str, now: Decimal, latest: Decimal, interval: Decimal) -> tuple[bool, Decimal | None]:
        return self._write(
            rate_key(name),
            "SET #tat = #tat + :interval, #expires = :expires",
            "#tat > :now AND #tat <= :latest",
            {":interval": _number(interval), ":now": _number(now), ":latest": _number(latest)},
        )

    def _write(self, key: str, update: str, condition: str, values: dict[str, Any]) -> tuple[bool, Decimal | None]:
        """(True, tat after the write) or (False, tat as it is): a refused write returns the item, so no read."""
        names = {"#tat": "tat", "#expires": "expires_at", "#kind": "kind"}
        values = {**values, ":expires": {"N": str(int(self.clock()) + ITEM_TTL_SECONDS)}}
        try:
            answer = self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={k: v for k, v in names.items() if k in update or k in condition},
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if _error_code(exc) != _CONDITION_FAILED:
                raise LimitUnavailable(f"the delivery rate could not be checked ({type(exc).__name__})") from exc
            item = getattr(exc, "response", {}).get("Item") or {}
            return False, Decimal(item["tat"]["N"]) if "tat" in item else None
        return True, Decimal(answer["Attributes"]["tat"]["N"])

    # -- concurrency ----------------------------------------------------------------------

    def _lease(self, destination: Destination, deadline: float, max_wait: float) -> tuple[str, str]:
        assert destination.concurrency is not None
        slots = destination.concurrency
        token = uuid.uuid4().hex
        hold = max(0.0, max_wait) + 2 * destination.timeout + LEASE_MARGIN_SECONDS
        poll = LEASE_FIRST_POLL_SECONDS
        while True:
            now = self.clock()
            start = int(self.random() * slots) % slots
            soonest: float | None = None
            for step in range(min(slots, LEASE_TRIES)):
                key = lease_key(destination.name, (start + step) % slots)
                held_until = self._take(key, token, now, now + hold, destination.name)
                if held_until is None:
                    return key, token
                soonest = held_until if soonest is None else min(soonest, held_until)
            remaining = deadline - self.clock()
            if remaining <= 0:
                wait = LEASE_RETRY_SECONDS if soonest is None else min(LEASE_RETRY_SECONDS, max(soonest - now, 0.001))
                raise Deferred(
                    wait, f"destination {destination.name!r}: all {slots} concurrent deliveries are in flight"
                )
            self.sleep(min(poll, remaining))
            poll = min(poll * 2, LEASE_MAX_POLL_SECONDS)

    def _take(self, key: str, token: str, now: float, until: float, name: str) -> float | None:
        """None when the lease is now ours, else when the current holder's lease ends."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": key}},
                UpdateExpression="SET #holder = :token, #until = :until, #expires = :expires, #kind = :kind",
                ConditionExpression="attribute_not_exists(#until) OR #until <= :now",
                ExpressionAttributeNames={
                    "#holder": "holder",
                    "#until": "until",
                    "#expires": "expires_at",
                    "#kind": "kind",
                },
                ExpressionAttributeValues={
                    ":token": {"S": token},
                    ":until": _number(until),
                    ":now": _number(now),
                    ":expires": {"N": str(int(until) + ITEM_TTL_SECONDS)},
                    ":kind": {"S": "destination_lease"},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if _error_code(exc) != _CONDITION_FAILED:
                raise LimitUnavailable(
                    f"destination {name!r}: the concurrency limit could not be checked ({type(exc).__name__})"
                ) from exc
            item = getattr(exc, "response", {}).get("Item") or {}
            return float(item["until"]["N"]) if "until" in item else until
        return None


def _error_code(error: BaseException) -> str | None:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return code if isinstance(code, str) else None
