"""The runner's moto child answers DynamoDB exactly as moto does: ``moto_dynamodb``'s changes only make it cheaper.

Every test plays one story twice, each in a fresh moto: once with moto's own code, once
with the changes, and compares what moto sent back byte for byte (status and body of
every answer, errors included) and every item it kept. The stories are the writes the
pipeline really sends: the record store's claims (taken, refused with
``ReturnValuesOnConditionCheckFailure``), completions, failures, dead letters and
redrives, the history kept within its bound, the delivery limiter's conditional writes;
and requests moto refuses, each sent twice so the second meets the caches.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from inqueue.destinations import ratelimit
from inqueue.destinations.config import Destination, Rate
from inqueue.destinations.ratelimit import DeliveryLimiter
from inqueue.errors import Deferred
from inqueue.status import COMPLETED, DEAD, HISTORY_MAX, IN_PROGRESS, StatusStore
from inqueue_local import moto_dynamodb
from tests.factories import Clock, make_envelope

TABLE = "inqueue-status"
Answer = tuple[str, int, bytes]
Story = Callable[[Any, Clock], None]


@contextmanager
def _moto(monkeypatch: pytest.MonkeyPatch, *, ours: bool) -> Iterator[tuple[Any, list[Answer]]]:
    """A fresh moto with either moto's code or the changes, and a client that records every answer."""
    with monkeypatch.context() as patch:
        for owner, name, motos, changed in moto_dynamodb.CHANGES:
            patch.setattr(owner, name, changed if ours else motos)
        moto_dynamodb.clear()
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        tokens = (uuid.UUID(int=n) for n in itertools.count(1))
        patch.setattr(ratelimit.uuid, "uuid4", lambda: next(tokens))  # lease tokens: the same in both runs
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            answers: list[Answer] = []

            def record(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
                answers.append((operation_model.name, response_dict["status_code"], response_dict["body"]))

            client.meta.events.register("before-parse.dynamodb.*", record)
            yield client, answers
            items = client.scan(TableName=TABLE, ConsistentRead=True)["Items"]
            answers.append(("items", len(items), repr(sorted(items, key=lambda item: item["id"]["S"])).encode()))


def _both(monkeypatch: pytest.MonkeyPatch, story: Story) -> tuple[list[Answer], list[Answer]]:
    runs = []
    for ours in (False, True):
        with _moto(monkeypatch, ours=ours) as (client, answers):
            story(client, Clock())
        runs.append(answers)
    return runs[0], runs[1]


def _assert_same(monkeypatch: pytest.MonkeyPatch, story: Story, *, at_least: int) -> list[Answer]:
    motos, ours = _both(monkeypatch, story)
    assert len(motos) >= at_least  # the story ran to its end (its own asserts passed on both)
    for number, (expected, got) in enumerate(zip(motos, ours, strict=True)):
        assert got == expected, f"answer {number} ({expected[0]}) differs"
    return motos


def _envelope(event_id: str) -> Any:
    return make_envelope(event_id, received_at="2026-11-23T11:59:59.500Z", correlation_id=f"corr-{event_id}")


def _deadline(clock: Clock) -> int:
    return int(clock() * 1000) + 30_000


def test_the_record_stores_writes_answer_as_motos_own(monkeypatch: pytest.MonkeyPatch) -> None:
    def story(client: Any, clock: Clock) -> None:
        store = StatusStore(TABLE, client, ttl_seconds=3600, clock=clock)
        for n in range(3):  # the same expressions three times: the later rounds meet every cache
            event = _envelope(f"evt-{n}")
            assert store.queued(event)
            assert not store.queued(event)  # never overwrites
            first = store.claim(event, attempt=1, token=f"r1/{n}", deadline_ms=_deadline(clock), since=clock())
            assert first.taken
            busy = store.claim(event, attempt=1, token=f"r2/{n}", deadline_ms=_deadline(clock), since=clock())
            assert busy.held == IN_PROGRESS  # refused, the item returned with the refusal
            clock.now += 1
            assert store.retrying(first, error=RuntimeError("crm slow"), next_try_at=clock() + 30)
            clock.now += 31
            second = store.claim(event, attempt=2, token=f"r3/{n}", deadline_ms=_deadline(clock), since=clock())
            assert second.taken
            assert store.succeeded(event.id, {"ok": n, "items": [1, 2.5, None, "x"]}, claim=second)
            again = store.claim(event, attempt=3, token=f"r4/{n}", deadline_ms=_deadline(clock), since=clock())
            assert again.held == COMPLETED
            assert again.stored_result()[0]["ok"] == n
            assert store.redriven(event.id)
            assert store.duplicate(again)
            replay = store.claim(
                event, attempt=1, token=f"r5/{n}", deadline_ms=_deadline(clock), since=clock(), bypass=True
            )
            assert replay.taken
            assert store.dead(event.id, "permanent: bad payload", error="ValueError: no", claim=replay)
            assert store.get(event.id) is not None
        # an event the ingress never recorded: the claim creates its record
        unseen = _envelope("evt-unseen")
        taken = store.claim(unseen, attempt=1, token="r/u", deadline_ms=_deadline(clock), since=clock())
        assert taken.taken
        assert taken.previous == {}
        assert store.succeeded(unseen.id, "x" * 5000, claim=taken)  # too large to keep
        assert store.succeeded(unseen.id, result_omitted="not_json", envelope=unseen)  # unconditional, no claim
        # withdrawn while untouched, refused once touched
        assert store.queued(_envelope("evt-w"))
        assert store.withdraw_queued("evt-w")
        assert store.queued(_envelope("evt-w2"))
        assert store.claim(_envelope("evt-w2"), attempt=1, token="r/w", deadline_ms=_deadline(clock)).taken
        assert not store.withdraw_queued("evt-w2")
        # dead without a claim, then refused in the same life, taken in a new one
        assert store.queued(_envelope("evt-d"))
        assert store.dead("evt-d", "max receives", 5)
        clock.now += 1
        refused = store.claim(
            _envelope("evt-d"), attempt=1, token="r/d", deadline_ms=_deadline(clock), since=clock() - 5
        )
        assert refused.held == DEAD
        assert store.claim(
            _envelope("evt-d"), attempt=1, token="r/d2", deadline_ms=_deadline(clock), since=clock()
        ).taken
        # an expired lock is taken over; a FIFO skip puts the event back as it was
        assert store.queued(_envelope("evt-x"))
        stale = store.claim(_envelope("evt-x"), attempt=1, token="r/x", deadline_ms=int(clock() * 1000) + 1000)
        clock.now += 2
        over = store.claim(_envelope("evt-x"), attempt=2, token="r/x2", deadline_ms=_deadline(clock))
        assert stale.taken
        assert over.taken
        assert not store.retrying(stale, error="late")  # not its lock any more
        assert store.skipped(over)
        # the history past its bound: the writes after a claim replace the list
        assert store.queued(_envelope("evt-h"))
        for attempt in range(1, HISTORY_MAX + 4):
            clock.now += 1
            held = store.claim(_envelope("evt-h"), attempt=attempt, token=f"r/h{attempt}", deadline_ms=_deadline(clock))
            assert held.taken
            assert store.retrying(held, error=TimeoutError(f"try {attempt}"))
        history = store.get("evt-h")
        assert history is not None
        assert len(history["history"]) == HISTORY_MAX

    _assert_same(monkeypatch, story, at_least=100)


def test_the_delivery_limiters_writes_answer_as_motos_own(monkeypatch: pytest.MonkeyPatch) -> None:
    def story(client: Any, clock: Clock) -> None:
        def sleep(seconds: float) -> None:
            clock.now += seconds

        limiter = DeliveryLimiter(TABLE, client, clock=clock, sleep=sleep, random=lambda: 0.25)
        destination = Destination(
            name="crm", url="https://crm.test/", scheme="https", host="crm.test", port=443, target="/",
            secret="s" * 32, rate=Rate(limit=2, per=1.0), concurrency=2,
        )  # fmt: skip
        permits = [limiter.acquire(destination, max_wait=2.0) for _ in range(2)]  # both leases, two rate slots
        with pytest.raises(Deferred):
            limiter.acquire(destination, max_wait=0.0)  # no slot free now
        for permit in permits:
            limiter.release(permit)
        clock.now += 5
        limiter.release(limiter.acquire(destination, max_wait=1.0))

    _assert_same(monkeypatch, story, at_least=8)


def test_every_attribute_type_comes_back_as_motos_own(monkeypatch: pytest.MonkeyPatch) -> None:
    item = {
        "id": {"S": "all-types"},
        "s": {"S": ""},
        "n": {"N": "-12.50"},
        "b": {"B": b"\x00\xffbytes"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b"x", b"y"]},
        "bool": {"BOOL": False},
        "null": {"NULL": True},
        "l": {"L": [{"S": "x"}, {"N": "1"}, {"M": {}}, {"L": []}, {"BOOL": True}]},
        "m": {"M": {"nested": {"M": {"deep": {"L": [{"S": "y"}]}}}, "bin": {"B": b"z"}}},
    }

    def story(client: Any, _clock: Clock) -> None:
        client.put_item(TableName=TABLE, Item=item)
        for consistent in (True, False):
            assert client.get_item(TableName=TABLE, Key={"id": item["id"]}, ConsistentRead=consistent)["Item"]
        for returns in ("ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"):
            client.update_item(
                TableName=TABLE, Key={"id": item["id"]}, ReturnValues=returns,
                UpdateExpression="SET #l = list_append(#l, :more), #n = #n + :one REMOVE #null",
                ExpressionAttributeNames={"#l": "l", "#n": "n", "#null": "null"},
                ExpressionAttributeValues={":more": {"L": [{"SS": ["z"]}]}, ":one": {"N": "1"}},
            )  # fmt: skip
        with pytest.raises(ClientError, match="ConditionalCheckFailed"):
            client.put_item(
                TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )  # fmt: skip

    _assert_same(monkeypatch, story, at_least=8)


def _update(expression: str, names: dict[str, str] | None = None, condition: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"UpdateExpression": expression}
    if names is not None:
        request["ExpressionAttributeNames"] = names
    if condition is not None:
        request["ConditionExpression"] = condition
    return request


A = {"#a": "a"}
REFUSED: list[dict[str, Any]] = [
    _update("SET #a = :v0,", A),  # a syntax error
    _update("SET #a = :v0, #a = :v0", A),  # the same path twice (the overlapping-paths check)
    _update("SET #a = :v0 SET #b = :v0", {**A, "#b": "b"}),  # two SET clauses (the clause-count check)
    _update("SET id = :v0"),  # the key (the key check), plainly and through a name
    _update("SET #k = :v0", {"#k": "id"}),
    _update("SET #a = :nope", A),  # an undefined value, an undefined name, a name no expression uses
    _update("SET #nope = :v0"),
    _update("SET #a = :v0", {**A, "#unused": "u"}),
    _update("SET #a = list_append(#missing, :l)", {**A, "#missing": "m"}),  # a function on a missing attribute
    _update("SET #a = #s + :v0", {**A, "#s": "s"}),  # arithmetic on a string
    # conditions: false, on a reserved word (a malformed one is a 500 from moto itself, not a refusal)
    _update("SET #a = :v0", A, "attribute_not_exists(id)"),
    _update("SET #a = :v0", A, "status = :v0"),
]


@pytest.mark.parametrize("request_", REFUSED, ids=range(len(REFUSED)))
def test_a_refused_request_is_refused_with_motos_own_error_every_time(
    monkeypatch: pytest.MonkeyPatch, request_: dict[str, Any]
) -> None:
    values = {":v0": {"S": "value"}, ":l": {"L": []}}

    def story(client: Any, _clock: Clock) -> None:
        client.put_item(TableName=TABLE, Item={"id": {"S": "k"}, "s": {"S": "text"}})
        for _ in range(3):
            with pytest.raises(ClientError):
                client.update_item(
                    TableName=TABLE, Key={"id": {"S": "k"}}, ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD", **request_,
                )  # fmt: skip

    answers = _assert_same(monkeypatch, story, at_least=5)
    assert all(status == 400 for operation, status, _ in answers if operation == "UpdateItem")


def test_moto_still_needs_the_changes_in_the_same_places() -> None:
    # GIVEN moto's own code, kept before the changes
    # THEN each change replaces an attribute that exists on moto's side (a moto upgrade that moves one fails here)
    for owner, name, motos, changed in moto_dynamodb.CHANGES:
        assert name in vars(owner) or hasattr(owner, name), f"{owner}.{name} is gone"
        assert motos is not changed


def test_an_expression_that_passed_is_still_checked_against_each_item_value_and_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    item = {"id": {"S": "k"}, "src": {"S": "s"}, "n": {"N": "2"}, "l": {"L": [{"S": "e"}]}}
    bare = {"id": {"S": "k"}}
    # (expression, names, values, then what moto refuses: names, values, item) with the same text each time
    one, two, text = {":v": {"N": "1"}}, {":v": {"S": "1"}}, {":v": {"S": "x"}}
    n, lst, empty = {"#a": "a", "#n": "n"}, {"#a": "a", "#l": "l"}, {":v": {"L": []}}
    cases = [
        ("SET #a = #src", {"#a": "a", "#src": "src"}, {}, {"#a": "a", "#src": "src"}, {}, bare),
        ("SET #a = #src", {"#a": "a", "#src": "src"}, {}, {"#a": "a", "#src": "absent"}, {}, item),
        ("SET #a = #n + :v", n, one, n, two, item),
        ("SET #a = #n + :v", n, one, n, one, bare),
        ("SET #a = list_append(#l, :v)", lst, empty, lst, text, item),
        ("SET #a = list_append(#l, :v)", lst, empty, lst, empty, bare),
        ("SET #k = :v", {"#k": "a"}, text, {"#k": "id"}, text, item),
        ("SET #a = :v, #b = :v", {"#a": "a", "#b": "b"}, text, {"#a": "a", "#b": "a"}, text, item),
    ]

    def update(client: Any, expression: str, names: dict[str, str], values: dict[str, Any]) -> None:
        client.update_item(
            TableName=TABLE, Key={"id": {"S": "k"}}, UpdateExpression=expression, ExpressionAttributeNames=names,
            **({"ExpressionAttributeValues": values} if values else {}),
        )  # fmt: skip

    def story(client: Any, _clock: Clock) -> None:
        for expression, names, values, bad_names, bad_values, bad_item in cases:
            for _ in range(2):
                client.put_item(TableName=TABLE, Item=item)
                update(client, expression, names, values)
                client.put_item(TableName=TABLE, Item=bad_item)
                with pytest.raises(ClientError):
                    update(client, expression, bad_names, bad_values)

    _assert_same(monkeypatch, story, at_least=60)
