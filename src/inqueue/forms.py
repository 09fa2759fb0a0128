"""Request bodies: JSON and ``application/x-www-form-urlencoded`` with PHP-style bracket keys.

Bitrix24 posts ``data[FIELDS][ID]=42&auth[domain]=x.bitrix24.com``; those become nested
objects. ``a[]=1&a[]=2`` becomes a list. A key that is both a value and an object
(``a=1&a[b]=2``) is ambiguous and rejected rather than guessed at; a repeated
plain key keeps its last value, as PHP (and so Bitrix24's own code) does.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from inqueue.errors import BadRequest, UnsupportedMediaType

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
_MAX_DEPTH = 16


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_json_type(media: str) -> bool:
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


def parse_body(body: bytes, media: str) -> Any:
    """Parse a body by its media type; raise 415 for other types and 400 for broken bodies."""
    if is_json_type(media):
        return parse_json(body)
    if media == FORM:
        return parse_form(body)
    raise UnsupportedMediaType(
        f"content type {media or '(none)'!r} is not accepted; send {JSON} or {FORM}",
    )


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest("body is empty; a JSON document is expected")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise BadRequest("body is not valid UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None


def parse_form(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("form body is not valid UTF-8") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=10_000)
    except ValueError as exc:
        raise BadRequest(f"form body is malformed: {exc}") from None
    result: dict[str, Any] = {}
    for key, value in pairs:
        _assign(result, _split_key(key), value, key)
    return result


def _split_key(key: str) -> list[str]:
    match = _KEY.match(key)
    if not match:
        raise BadRequest(f"form key {key!r} is malformed")
    parts = [match.group(1), *_PART.findall(match.group(2))]
    if len(parts) > _MAX_DEPTH:
        raise BadRequest(f"form key {key!r} nests deeper than {_MAX_DEPTH}")
    return parts


def _assign(root: dict[str, Any], parts: list[str], value: str, key: str) -> None:
    node = root
    for index, part in enumerate(parts[:-1]):
        if parts[index + 1] == "":
            if index + 2 != len(parts):
                raise BadRequest(f"form key {key!r} nests inside a list, which is ambiguous")
            items = node.setdefault(part, [])
            if not isinstance(items, list):
                raise BadRequest(f"form key {key!r} conflicts with another key")
            items.append(value)
            return
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise BadRequest(f"form key {key!r} conflicts with another key")
        node = child
    if isinstance(node.get(parts[-1]), dict | list):
        raise BadRequest(f"form key {key!r} conflicts with another key")
    node[parts[-1]] = value  # a repeated plain key keeps its last value, as PHP does
