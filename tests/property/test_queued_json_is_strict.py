"""Whatever bytes arrive, the parser either refuses them (400) or returns what a strict parser reads back.

The oracle is orjson, an independent RFC 8259 parser (strict UTF-8, no lone surrogates,
no NaN/Infinity, numbers within double range).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from inqueue.errors import BadRequest
from inqueue.forms import MAX_DEPTH, parse_form, parse_json

# Pieces that are valid JSON tokens, almost-valid ones, and the classes the ingress must refuse.
TOKENS = st.sampled_from(
    [
        "[", "]", "{", "}", ",", ":", '"a"', '"\\ud800"', '"\\udc00"', '"\\ud83d\\ude00"', '"\\u0000"',
        "0", "-0", "1.5", "1e308", "1e999", "-1e999", "1E2", "NaN", "Infinity", "-Infinity", "true", "null",
        '"\\\\ud800"', " ", "\n", '"é"', "9" * 20,
    ]
)  # fmt: skip
RAW = st.sampled_from([b"\xed\xa0\x80", b"\xc0\xaf", b"\xff", b"\xe2\x82", b"\xef\xbb\xbf", b""])
JSONISH_BYTES = st.tuples(st.lists(TOKENS, max_size=40), RAW, st.integers(0, 40)).map(
    lambda parts: _splice("".join(parts[0]).encode(), parts[1], parts[2])
)
DEEP = st.tuples(st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2), st.sampled_from(["[", '{"k":'])).map(
    lambda p: (p[1] * p[0] + "0" + ("]" if p[1] == "[" else "}") * p[0]).encode()
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
PYTHON_JSON = VALUES.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"))
BODIES = st.one_of(st.binary(max_size=80), JSONISH_BYTES, DEEP, PYTHON_JSON)


def _splice(body: bytes, raw: bytes, at: int) -> bytes:
    at = min(at, len(body))
    return body[:at] + raw + body[at:]


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def comparable(value: Any) -> Any:
    """orjson reads integers beyond 64 bits as floats; compare those by value."""
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value)
    return value


def queued_form(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


@settings(max_examples=1500, deadline=None)
@given(body=BODIES)
def test_json_bodies_are_refused_or_round_trip_through_a_strict_parser(body: bytes) -> None:
    try:
        value = parse_json(body)
    except BadRequest as error:
        status = error.status
    else:
        status = 200
    if status != 200:
        assert status == 400
        return
    assert comparable(orjson.loads(queued_form(value))) == comparable(value)
    assert depth(value) <= MAX_DEPTH


@settings(max_examples=500, deadline=None)
@given(body=BODIES)
def test_whatever_a_strict_parser_accepts_within_the_limits_is_accepted(body: bytes) -> None:
    try:
        expected = orjson.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return
    if depth(expected) > MAX_DEPTH:
        return
    assert comparable(parse_json(body)) == comparable(expected)


@settings(max_examples=500, deadline=None)
@given(pairs=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=8), raw=RAW)
def test_form_bodies_are_refused_or_strict_json(pairs: list[tuple[str, str]], raw: bytes) -> None:
    from urllib.parse import quote

    body = "&".join(f"{quote(k, errors='surrogatepass')}={quote(v, errors='surrogatepass')}" for k, v in pairs).encode()
    body = body + b"&x=" + b"".join(b"%%%02X" % byte for byte in raw) if raw else body
    try:
        value = parse_form(body)
    except BadRequest:
        return
    assert orjson.loads(queued_form(value)) == value
