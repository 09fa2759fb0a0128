"""What the ingress parses is RFC 8259 JSON within documented limits, or a 400 that says which rule broke."""

from __future__ import annotations

import json

import pytest

from inqueue.errors import BadRequest, HttpError
from inqueue.forms import MAX_DEPTH, MAX_MEMBERS, JsonSyntaxError, loads_strict, parse_body, parse_form, parse_json


def nested(depth: int, kind: str = "array") -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def rejected(body: bytes) -> str:
    with pytest.raises(BadRequest) as caught:
        parse_json(body)
    assert caught.value.status == 400
    assert caught.value.code == "malformed_body"
    return caught.value.message


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 10_000, 100_000])
def test_nesting_beyond_the_limit_is_a_400_naming_the_depth(depth: int, kind: str) -> None:
    assert f"nests deeper than {MAX_DEPTH} levels" in rejected(nested(depth, kind))


@pytest.mark.parametrize("kind", ["array", "object"])
def test_nesting_at_the_limit_is_accepted(kind: str) -> None:
    value = parse_json(nested(MAX_DEPTH, kind))
    for _ in range(MAX_DEPTH - 1 if kind == "array" else MAX_DEPTH):
        value = value[0] if kind == "array" else value["a"]
    assert value == ([] if kind == "array" else 1)


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    body = json.dumps({"text": "[" * 500 + "{" * 500, "n": [[[1]]]}).encode()

    assert parse_json(body)["n"] == [[[1]]]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"a":"\\ud800"}', id="lone-high-escape"),
        pytest.param(b'{"a":"\\udc00"}', id="lone-low-escape"),
        pytest.param(b'{"a":"\\ud800\\u0041"}', id="high-then-not-low"),
        pytest.param(b'{"\\udfff":1}', id="in-a-key"),
        pytest.param(b'["ok", {"deep": ["\\uDBFF"]}]', id="upper-case-nested"),
    ],
)
def test_lone_surrogate_escapes_are_a_400(body: bytes) -> None:
    assert "lone surrogate" in rejected(body)


def test_a_surrogate_pair_is_one_character_and_accepted() -> None:
    assert parse_json(b'{"a":"\\ud83d\\ude00","b":"\\\\ud800"}') == {"a": "\U0001f600", "b": "\\ud800"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"a":"\xed\xa0\x80"}', id="encoded-surrogate-ED-A0-80"),
        pytest.param(b'{"a":"\xc0\xaf"}', id="overlong"),
        pytest.param(b'{"a":"\xff"}', id="ff"),
        pytest.param(b'{"a":"\xe2\x82"}', id="truncated"),
        pytest.param('{"a":"Zoë"}'.encode("utf-16"), id="utf-16"),
    ],
)
def test_bytes_that_are_not_utf8_are_a_400_naming_the_encoding(body: bytes) -> None:
    assert "not valid UTF-8" in rejected(body)


def test_a_utf8_byte_order_mark_is_ignored() -> None:
    assert parse_json(b'\xef\xbb\xbf{"a":1}') == {"a": 1}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"[NaN]", "NaN"),
        (b'{"a":Infinity}', "Infinity"),
        (b"[-Infinity]", "-Infinity"),
        (b"[1e999]", "out of range"),
        (b"[-1.5e400]", "out of range"),
        (b"1" + b"0" * 400 + b".0", "out of range"),
        (b"[" + b"9" * 310 + b"]", "out of range"),
        (b"[" + b"9" * 309 + b"]", "out of range"),
        (b"[-" + b"9" * 310 + b"]", "out of range"),
    ],
)
def test_non_finite_numbers_are_a_400(body: bytes, named: str) -> None:
    message = rejected(body)
    assert "not strict JSON" in message
    assert named in message


def test_finite_and_tiny_numbers_are_kept() -> None:
    assert parse_json(b"[1e308, -2.5, 1e-400, 12345678901234567890]") == [1e308, -2.5, 0.0, 12345678901234567890]
    assert parse_json(b"[" + b"9" * 308 + b"]") == [10**308 - 1]
    assert parse_json(b"[-" + b"1" + b"0" * 308 + b"]") == [-(10**308)]


def test_an_integer_too_long_for_python_is_a_400() -> None:
    assert "out of range" in rejected(b"[" + b"9" * 5000 + b"]")


def test_too_many_members_is_a_400() -> None:
    body = json.dumps([{"k": i} for i in range(MAX_MEMBERS + 1)]).encode()

    assert f"at most {MAX_MEMBERS}" in rejected(body)


def test_members_at_the_limit_are_accepted() -> None:
    assert len(parse_json(json.dumps([{"k": i} for i in range(MAX_MEMBERS)]).encode())) == MAX_MEMBERS


def test_syntax_errors_are_their_own_kind_so_a_kind_can_fall_back() -> None:
    with pytest.raises(JsonSyntaxError):
        loads_strict("not json", "payload")
    with pytest.raises(BadRequest) as caught:
        loads_strict("[NaN]", "payload")
    assert not isinstance(caught.value, JsonSyntaxError)
    assert caught.value.message.startswith("payload ")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"a=%ED%A0%80", id="escaped-surrogate"),
        pytest.param(b"a=%FF", id="escaped-ff"),
        pytest.param(b"%C0%AF=1", id="escaped-overlong-key"),
    ],
)
def test_form_escapes_that_are_not_utf8_are_a_400_not_replacement_characters(body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_form(body)
    assert "not valid UTF-8" in caught.value.message


def test_error_messages_quote_at_most_a_short_piece_of_the_input() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_form(b"a]" + b"x" * 100_000 + b"=1")
    assert len(caught.value.message) < 200


@pytest.mark.parametrize(
    "media",
    [
        "application/" + "x" * 200 + "+json",
        "application/\ud800+json",
        "application/a b+json",
        "application/+json",
    ],
)
def test_json_subtypes_must_be_media_type_names(media: str) -> None:
    with pytest.raises(HttpError) as caught:
        parse_body(b"{}", media)
    assert caught.value.status == 415
    assert len(caught.value.message) < 200


def test_a_named_json_subtype_is_json() -> None:
    assert parse_body(b'{"a":1}', "application/vnd.github.v3+json") == {"a": 1}
