"""Form bodies with bracket keys, as Bitrix24 sends them, and JSON bodies."""

from __future__ import annotations

import pytest

from inqueue.errors import BadRequest, UnsupportedMediaType
from inqueue.forms import parse_body, parse_form


def test_bracket_keys_become_nested_objects() -> None:
    body = b"event=ONCRMDEALADD&data%5BFIELDS%5D%5BID%5D=42&auth%5Bmember_id%5D=abc&auth%5Bdomain%5D=x.bitrix24.com"

    assert parse_form(body) == {
        "event": "ONCRMDEALADD",
        "data": {"FIELDS": {"ID": "42"}},
        "auth": {"member_id": "abc", "domain": "x.bitrix24.com"},
    }


def test_empty_brackets_collect_a_list() -> None:
    assert parse_form(b"ids[]=1&ids[]=2&x[y][]=3") == {"ids": ["1", "2"], "x": {"y": ["3"]}}


def test_a_repeated_plain_key_keeps_the_last_value_as_php_does() -> None:
    assert parse_form(b"a=1&a=2") == {"a": "2"}


def test_blank_values_and_an_empty_body_are_kept() -> None:
    assert parse_form(b"a=&b=1") == {"a": "", "b": "1"}
    assert parse_form(b"") == {}


@pytest.mark.parametrize(
    "body",
    [
        b"a=1&a[b]=2",
        b"a[b]=2&a=1",
        b"a[]=1&a[b]=2",
        b"a[b]=1&a[]=2",
        b"a[][b]=1",
        b"[x]=1",
        b"a[b=1",
        b"a]=1",
        b"\xff=1",
        b"a[b][c][d][e][f][g][h][i][j][k][l][m][n][o][p][q]=1",
    ],
)
def test_ambiguous_or_broken_forms_are_rejected(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_form(body)


@pytest.mark.parametrize(
    ("media", "body", "expected"),
    [
        ("application/json", b'{"a": [1, 2]}', {"a": [1, 2]}),
        ("application/cloudevents+json", b'{"specversion": "1.0"}', {"specversion": "1.0"}),
        ("application/x-www-form-urlencoded", b"a=1", {"a": "1"}),
    ],
)
def test_bodies_parse_by_media_type(media: str, body: bytes, expected: object) -> None:
    assert parse_body(body, media) == expected


def test_other_media_types_are_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_body(b"<xml/>", "application/xml")


@pytest.mark.parametrize("body", [b"", b"   ", b"{", b"\xff\xfe", b"[1,]"])
def test_broken_json_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_body(body, "application/json")
