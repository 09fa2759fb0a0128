"""Request bodies: strict JSON (RFC 8259) and ``application/x-www-form-urlencoded`` with PHP-style bracket keys.

JSON is what is queued, so it is held to RFC 8259 whatever Python's own parser lets
through: UTF-8 decoded strictly (a leading byte order mark is ignored, as the RFC
allows), no lone surrogates (``"\\ud800"``), no ``NaN``/``Infinity`` and no number
beyond an IEEE 754 double's range (``1e999``, a 400-digit integer: RFC 8259 section 6
advises that range for interoperability, and every double-based parser reads them as
infinity or refuses them), at most ``MAX_DEPTH`` levels of arrays and objects and
``MAX_MEMBERS`` object members. The checks ride on the one parse (decoder hooks, a
bracket count); the walk over the parsed document runs only when the count or the
length says the document might be out of bounds.

Bitrix24 posts ``data[FIELDS][ID]=42&auth[domain]=x.bitrix24.com``; those become nested
objects. ``a[]=1&a[]=2`` becomes a list. A key that is both a value and an object
(``a=1&a[b]=2``) is ambiguous and rejected rather than guessed at; a repeated
plain key keeps its last value, as PHP (and so Bitrix24's own code) does.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn
from urllib.parse import parse_qsl

from inqueue.errors import BadRequest, UnsupportedMediaType

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# Far beyond any sender's payload (GitHub, Stripe, Slack Block Kit and Shopify orders stay
# under 15 levels), and low enough that every mainstream parser reads the envelope (one
# level more) without raising its own recursion limit.
MAX_DEPTH = 64
# Object members in one document: a 1 MB body of realistic records holds well under this
# (a Shopify order with 250 line items is about 15,000).
MAX_MEMBERS = 100_000
MAX_FORM_FIELDS = 10_000
MAX_FORM_KEY_DEPTH = 16

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
# application/json, or application/<subtype>+json (RFC 6838: a subtype name is at most 127 characters).
_JSON_SUBTYPE = re.compile(r"^application/[a-z0-9][a-z0-9!#$&^_.+-]{0,121}\+json$")
# A \u escape of a surrogate half: only then can the parsed document hold a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonSyntaxError(BadRequest):
    """The text is not JSON at all, as opposed to JSON outside the limits above."""


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_json_type(media: str) -> bool:
    return media == JSON or _JSON_SUBTYPE.match(media) is not None


def parse_body(body: bytes, media: str) -> Any:
    """Parse a body by its media type; raise 415 for other types and 400 for broken bodies."""
    if is_json_type(media):
        return parse_json(body)
    if media == FORM:
        return parse_form(body)
    raise UnsupportedMediaType(
        f"content type {shown(media) if media else '(none)'} is not accepted; send {JSON} or {FORM}",
    )


def parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body is not valid UTF-8: {_bad_bytes(body, exc)}") from None
    return loads_strict(text.removeprefix("\ufeff"))


def loads_strict(text: str, what: str = "body") -> Any:
    """One RFC 8259 JSON document from text, within the limits; ``BadRequest`` says which rule it broke."""
    if not text.strip(" \t\r\n"):
        raise JsonSyntaxError(f"{what} is empty; a JSON document is expected")
    try:
        value = _DECODER.decode(text)
    except _NotStrict as exc:
        raise BadRequest(f"{what} is not strict JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        _too_deep(what)
    except ValueError as exc:  # an integer of more digits than Python converts (4300)
        raise BadRequest(f"{what} holds a number that is too long: {exc}") from None
    # Cheap upper bounds first: every level needs a bracket, every member at least five characters.
    if text.count("[") + text.count("{") > MAX_DEPTH or len(text) > 5 * MAX_MEMBERS:
        _check_shape(value, what)
    if "\\" in text and _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(
                f"{what} is not strict JSON: a string holds a lone surrogate"
                " (a \\ud800-\\udfff escape without its pair)"
            ) from None
    return value


class _NotStrict(ValueError):
    pass


def _no_constant(name: str) -> NoReturn:
    raise _NotStrict(f"{name} is not a JSON number")


def _finite(literal: str) -> float:
    number = float(literal)
    if number in (float("inf"), float("-inf")):
        raise _NotStrict(f"the number {shown(literal, 40)} is out of range (it overflows to infinity)")
    return number


def _in_range(literal: str) -> int:
    # Below 308 digits an integer is always within a double's range (about 1.8e308); above 309, never.
    digits = len(literal) - literal.startswith("-")
    if digits > 309:
        raise _NotStrict(f"the integer {shown(literal, 40)} is out of range (beyond a double's)")
    number = int(literal)
    if digits >= 308:
        try:
            float(number)
        except OverflowError:
            raise _NotStrict(f"the integer {shown(literal, 40)} is out of range (beyond a double's)") from None
    return number


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite, parse_int=_in_range)


def _too_deep(what: str) -> NoReturn:
    raise BadRequest(f"{what} nests deeper than {MAX_DEPTH} levels of arrays and objects") from None


def _check_shape(value: Any, what: str) -> None:
    """Depth and member count, walked without recursion."""
    members = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            _too_deep(what)
        if type(node) is dict:
            members += len(node)
            children: Any = node.values()
        elif type(node) is list:
            children = node
        else:
            continue
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    if members > MAX_MEMBERS:
        raise BadRequest(f"{what} has {members} object members; at most {MAX_MEMBERS} are accepted")


def parse_form(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"form body is not valid UTF-8: {_bad_bytes(body, exc)}") from None
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FORM_FIELDS, errors="strict"
        )
    except UnicodeDecodeError:
        raise BadRequest("form body is not valid UTF-8: a %-escaped key or value does not decode") from None
    except ValueError as exc:
        raise BadRequest(f"form body is malformed: {shown(str(exc), 80)}") from None
    result: dict[str, Any] = {}
    for key, value in pairs:
        _assign(result, _split_key(key), value, key)
    return result


def shown(text: str, limit: int = 60) -> str:
    """A sender's text quoted in an error message, cut so the message stays short."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _bad_bytes(body: bytes, exc: UnicodeDecodeError) -> str:
    return f"{exc.reason} at byte {exc.start} ({body[exc.start : exc.start + 4].hex(' ')})"


def _split_key(key: str) -> list[str]:
    match = _KEY.match(key)
    if not match:
        raise BadRequest(f"form key {shown(key)} is malformed")
    parts = [match.group(1), *_PART.findall(match.group(2))]
    if len(parts) > MAX_FORM_KEY_DEPTH:
        raise BadRequest(f"form key {shown(key)} nests deeper than {MAX_FORM_KEY_DEPTH}")
    return parts


def _assign(root: dict[str, Any], parts: list[str], value: str, key: str) -> None:
    node = root
    for index, part in enumerate(parts[:-1]):
        if parts[index + 1] == "":
            if index + 2 != len(parts):
                raise BadRequest(f"form key {shown(key)} nests inside a list, which is ambiguous")
            items = node.setdefault(part, [])
            if not isinstance(items, list):
                raise BadRequest(f"form key {shown(key)} conflicts with another key")
            items.append(value)
            return
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise BadRequest(f"form key {shown(key)} conflicts with another key")
        node = child
    if isinstance(node.get(parts[-1]), dict | list):
        raise BadRequest(f"form key {shown(key)} conflicts with another key")
    node[parts[-1]] = value  # a repeated plain key keeps its last value, as PHP does
