"""Section 1, FilterCriteria: validated at start as AWS validates them, matched as Lambda matches SQS records.

Each case is a pattern, a message body and what Lambda does with it (from the event-pattern
language's documentation). On moto the runner's own matching (moto's event-pattern engine)
must give it; on LocalStack, LocalStack's own engine (``events:TestEventPattern``, tested by
its maintainers against AWS) must give it too, and the runner's poller must deliver or drop
the message on LocalStack's SQS accordingly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from inqueue_local.filters import FilterCriteriaError, compile_pattern, matches_any, parse_filter_criteria, record_view
from inqueue_local.pipeline import Pipeline
from inqueue_local.template import TemplateError
from tests.local import recorder
from tests.local.conftest import Lane, depth, send

MakePipeline = Callable[..., Pipeline]

IGNORE_CASE_BUT = {"body": {"kind": [{"anything-but": {"equals-ignore-case": ["order", "refund"]}}]}}
# (case, pattern, body, Lambda delivers it)
CASES: list[tuple[str, dict[str, Any], Any, bool]] = [
    ("$or: first branch", {"$or": [{"body": {"kind": ["order"]}}, {"body": {"total": [{"numeric": [">", 100]}]}}]},
     {"kind": "order", "total": 5}, True),
    ("$or: second branch", {"$or": [{"body": {"kind": ["order"]}}, {"body": {"total": [{"numeric": [">", 100]}]}}]},
     {"kind": "refund", "total": 150}, True),
    ("$or: neither", {"$or": [{"body": {"kind": ["order"]}}, {"body": {"total": [{"numeric": [">", 100]}]}}]},
     {"kind": "refund", "total": 5}, False),
    ("anything-but equals-ignore-case: excluded", IGNORE_CASE_BUT, {"kind": "ORDER"}, False),
    ("anything-but equals-ignore-case: other", IGNORE_CASE_BUT, {"kind": "invoice"}, True),
    ("prefix equals-ignore-case", {"body": {"kind": [{"prefix": {"equals-ignore-case": "ORD"}}]}},
     {"kind": "order.created"}, True),
    ("prefix equals-ignore-case: no", {"body": {"kind": [{"prefix": {"equals-ignore-case": "ORD"}}]}},
     {"kind": "refund"}, False),
    ("suffix equals-ignore-case", {"body": {"kind": [{"suffix": {"equals-ignore-case": ".CREATED"}}]}},
     {"kind": "order.created"}, True),
    ("anything-but a list", {"body": {"kind": [{"anything-but": ["order", "refund"]}]}}, {"kind": "refund"}, False),
    ("anything-but prefix", {"body": {"kind": [{"anything-but": {"prefix": "ord"}}]}}, {"kind": "invoice"}, True),
    ("numeric range: low bound in", {"body": {"n": [{"numeric": [">=", 10, "<", 20]}]}}, {"n": 10}, True),
    ("numeric range: high bound out", {"body": {"n": [{"numeric": [">=", 10, "<", 20]}]}}, {"n": 20}, False),
    ("exists false: absent", {"body": {"kind": [{"exists": False}]}}, {"other": 1}, True),
    ("exists false: present", {"body": {"kind": [{"exists": False}]}}, {"kind": "a"}, False),
    ("a value in an array", {"body": {"tags": ["b"]}}, {"tags": ["a", "b"]}, True),
    ("wildcard", {"body": {"kind": [{"wildcard": "order.*"}]}}, {"kind": "order.created"}, True),
    ("nested field", {"body": {"data": {"id": [7]}}}, {"data": {"id": 7}}, True),
    ("plain-text body, string pattern", {"body": ["hello"]}, "hello", True),
    ("JSON body, string pattern", {"body": ["hello"]}, {"hello": 1}, False),
    ("plain-text body, field pattern", {"body": {"kind": ["order"]}}, "kind=order", False),
]  # fmt: skip

INVALID: list[tuple[str, str, str]] = [
    ("not JSON", "{body: 1}", "not valid JSON"),
    ("not an object", "[1]", "must be a JSON object"),
    ("a scalar value", '{"body": {"kind": "order"}}', "must be an object or an array"),
    ("an empty array", '{"body": {"kind": []}}', "empty arrays"),
    ("an unknown operator", '{"body": {"kind": [{"prefixx": "o"}]}}', "unrecognized match type"),
    ("numeric on a string", '{"body": {"n": [{"numeric": [">", "5"]}]}}', "numbers"),
    ("a backwards range", '{"body": {"n": [{"numeric": ["<", 5, ">", 1]}]}}', "numeric range"),
    ("exists not a boolean", '{"body": {"kind": [{"exists": "yes"}]}}', "true or false"),
    ("two operators in one expression", '{"body": {"k": [{"prefix": "a", "suffix": "b"}]}}', "only one key"),
]


def _record(body: Any) -> dict[str, Any]:
    return {
        "messageId": "m-1",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
    }


def _localstack_matches(lane: Lane, pattern: str, body: Any) -> bool:
    """LocalStack's engine, through EventBridge's TestEventPattern (which wants an event's envelope fields)."""
    envelope = {"id": "1", "account": "000000000000", "source": "x", "time": "2026-11-23T12:00:00Z",
                "region": "us-east-1", "detail-type": "x"}  # fmt: skip
    events = lane.backend.client("events")
    event = {**envelope, **record_view(_record(body))}
    return bool(events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"])


@pytest.mark.parametrize(("pattern", "body", "delivered"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_filter_patterns_match_as_the_event_pattern_language_says(
    lane: Lane, pattern: dict[str, Any], body: Any, delivered: bool
) -> None:
    # GIVEN a mapping's pattern WHEN an SQS record is matched against it THEN Lambda's answer
    compiled = compile_pattern(json.dumps(pattern))
    assert matches_any((compiled,), _record(body)) is delivered
    if lane.name == "localstack":
        assert _localstack_matches(lane, json.dumps(pattern), body) is delivered


@pytest.mark.parametrize(("pattern", "reason"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_an_invalid_pattern_is_refused_with_its_reason(lane: Lane, pattern: str, reason: str) -> None:
    with pytest.raises(FilterCriteriaError, match=reason):
        compile_pattern(pattern)
    if lane.name == "localstack":
        with pytest.raises(ClientError) as refused:
            _localstack_matches(lane, pattern, {"kind": "order"})
        assert refused.value.response["Error"]["Code"] in ("InvalidEventPatternException", "ValidationException")


@pytest.mark.backends("moto")  # the mapping's settings: no queue involved
def test_an_invalid_pattern_refuses_the_start_with_a_clear_message(make_pipeline: MakePipeline) -> None:
    with pytest.raises(TemplateError) as refused:
        make_pipeline(Filter='{"body": {"kind": [{"prefixx": "o"}]}}')
    message = str(refused.value)
    assert message.startswith("FilteredWorker event Queue: FilterCriteria refused, as AWS would refuse it: filter 1")
    assert "unrecognized match type 'prefixx'" in message
    assert "Traceback" not in message


@pytest.mark.backends("moto")
def test_more_filters_than_lambda_allows_are_refused() -> None:
    criteria = {"Filters": [{"Pattern": json.dumps({"body": {"n": [i]}})} for i in range(11)]}
    with pytest.raises(FilterCriteriaError, match="at most 10"):
        parse_filter_criteria(criteria)
    assert len(parse_filter_criteria({"Filters": criteria["Filters"][:10]})) == 10


def test_the_poller_delivers_what_any_filter_matches_and_deletes_the_rest(make_pipeline: MakePipeline) -> None:
    # GIVEN a mapping filtering with $or (which the runner used to read as a field named "$or")
    pattern = {"$or": [{"body": {"kind": ["order"]}}, {"body": {"total": [{"numeric": [">", 100]}]}}]}
    pipeline = make_pipeline(Filter=json.dumps(pattern))
    send(pipeline, "FilteredQueue", {"kind": "order"}, {"kind": "refund", "total": 150}, {"kind": "refund"}, "text")

    # WHEN polled
    result = pipeline.pollers["FilteredWorker.Queue"].poll_once()

    # THEN the two matching records were invoked, the others deleted without an invocation
    assert result is not None
    assert result.filtered == 2
    bodies = [json.loads(r["body"]) for r in recorder.calls[0]["event"]["Records"]]
    assert sorted(bodies, key=json.dumps) == sorted(
        [{"kind": "order"}, {"kind": "refund", "total": 150}], key=json.dumps
    )
    assert depth(pipeline, "FilteredQueue") == (0, 0)
