"""An event source mapping's ``FilterCriteria``: validated at start as AWS validates them, matched by moto.

Matching is moto's event-pattern engine (``moto.events.models.EventPattern``, the one its
EventBridge uses: ``$or``, ``prefix``/``suffix``/``anything-but`` with
``equals-ignore-case``, ``numeric``, ``exists``, ``cidr``, ``wildcard``), applied to the
record as Lambda applies it to an SQS record: with ``body`` parsed when it is JSON, so a
pattern on ``body`` fields never matches a plain-text body, and a plain-string pattern on
``body`` matches only a plain-text body.

moto checks only that a pattern is JSON and that its values are objects or non-empty
arrays; an operator it does not know matches everything there. So ``validate`` also
checks each match expression the way AWS's event-pattern language defines it, and an
invalid pattern refuses the runner's start with the reason, as ``CreateEventSourceMapping``
refuses it, instead of letting messages through or dropping them.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_FILTERS = 10  # Lambda's default quota is 5 per mapping; an increase allows 10
MAX_PATTERN_LENGTH = 4096  # Filter.Pattern's length constraint
_NUMERIC_OPERATORS = ("<", "<=", "=", ">", ">=")


class FilterCriteriaError(ValueError):
    """A FilterCriteria that AWS would refuse."""


@dataclass(frozen=True, eq=False)
class FilterPattern:
    text: str
    engine: Any = field(repr=False)  # moto.events.models.EventPattern

    def matches(self, view: Mapping[str, Any]) -> bool:
        return bool(self.engine.matches_event(dict(view)))


def parse_filter_criteria(criteria: Any) -> tuple[FilterPattern, ...]:
    """``FilterCriteria: {Filters: [{Pattern: "..."}]}`` as the template gives it, each pattern validated."""
    if not criteria:
        return ()
    if not isinstance(criteria, Mapping) or not isinstance(criteria.get("Filters", []), list):
        raise FilterCriteriaError("FilterCriteria must be an object with a Filters list")
    filters = criteria.get("Filters", [])
    if len(filters) > MAX_FILTERS:
        raise FilterCriteriaError(f"{len(filters)} filters; a mapping takes at most {MAX_FILTERS}")
    patterns = []
    for index, entry in enumerate(filters, 1):
        raw = entry.get("Pattern") if isinstance(entry, Mapping) else None
        text = raw if isinstance(raw, str) else json.dumps(raw)
        try:
            patterns.append(compile_pattern(text))
        except FilterCriteriaError as error:
            raise FilterCriteriaError(f"filter {index} ({text}): {error}") from None
    return tuple(patterns)


def compile_pattern(text: str) -> FilterPattern:
    if len(text) > MAX_PATTERN_LENGTH:
        raise FilterCriteriaError(f"the pattern is {len(text)} characters; at most {MAX_PATTERN_LENGTH}")
    try:
        loaded = json.loads(text)
    except ValueError:
        raise FilterCriteriaError("the pattern is not valid JSON") from None
    if not isinstance(loaded, dict):
        raise FilterCriteriaError("the pattern must be a JSON object")
    validate(loaded)
    from moto.events.exceptions import InvalidEventPatternException
    from moto.events.models import EventPattern

    try:
        engine = EventPattern.load(text)
    except InvalidEventPatternException as error:
        raise FilterCriteriaError(str(error.message)) from None
    return FilterPattern(text, engine)


def validate(pattern: Mapping[str, Any], where: str = "") -> None:
    """Every value an object (nested fields) or a non-empty array of match expressions; ``$or`` a list of patterns."""
    for key, value in pattern.items():
        path = f"{where}.{key}" if where else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, dict) for v in value):
                raise FilterCriteriaError(f'"{path}" must be an array of at least two patterns')
            for alternative in value:
                validate(alternative, where)
        elif isinstance(value, dict):
            validate(value, path)
        elif isinstance(value, list):
            if not value:
                raise FilterCriteriaError(f'"{path}": empty arrays are not allowed')
            for rule in value:
                _rule(rule, path)
        else:
            raise FilterCriteriaError(f'"{path}" must be an object or an array')


def _rule(rule: Any, path: str) -> None:  # noqa: PLR0912 - one branch per operator of the language
    if rule is None or isinstance(rule, str | bool | int | float):
        return
    if not isinstance(rule, dict):
        raise FilterCriteriaError(f'"{path}": a match value must be a string, number, true, false or null')
    if len(rule) != 1:
        raise FilterCriteriaError(f'"{path}": only one key is allowed in a match expression, not {sorted(rule)}')
    ((operator, value),) = rule.items()
    if operator in ("prefix", "suffix"):
        if isinstance(value, dict):
            _only_ignore_case(value, operator, path)
        elif not isinstance(value, str):
            raise FilterCriteriaError(f'"{path}": {operator} takes a string')
    elif operator == "equals-ignore-case":
        if not isinstance(value, str):
            raise FilterCriteriaError(f'"{path}": equals-ignore-case takes a string')
    elif operator == "anything-but":
        _anything_but(value, path)
    elif operator == "numeric":
        _numeric(value, path)
    elif operator == "exists":
        if not isinstance(value, bool):
            raise FilterCriteriaError(f'"{path}": exists takes true or false')
    elif operator == "cidr":
        try:
            ipaddress.ip_network(value if isinstance(value, str) else "", strict=False)
        except ValueError:
            raise FilterCriteriaError(f'"{path}": cidr takes an IP network such as "10.0.0.0/24"') from None
        if "/" not in value:
            raise FilterCriteriaError(f'"{path}": cidr takes an IP network such as "10.0.0.0/24"')
    elif operator == "wildcard":
        _wildcard(value, path)
    else:
        raise FilterCriteriaError(f'"{path}": unrecognized match type {operator!r}')


def _only_ignore_case(value: Mapping[str, Any], operator: str, path: str) -> None:
    if list(value) != ["equals-ignore-case"] or not isinstance(value["equals-ignore-case"], str):
        raise FilterCriteriaError(f'"{path}": {operator} takes a string or {{"equals-ignore-case": "..."}}')


def _anything_but(value: Any, path: str) -> None:
    if isinstance(value, dict):
        if len(value) != 1:
            raise FilterCriteriaError(f'"{path}": anything-but takes one nested match')
        ((inner, argument),) = value.items()
        if inner not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            raise FilterCriteriaError(f'"{path}": unsupported anything-but pattern {inner!r}')
        strings = argument if isinstance(argument, list) else [argument]
        if not strings or not all(isinstance(s, str) and s for s in strings):
            raise FilterCriteriaError(f'"{path}": anything-but/{inner} takes a non-empty string or list of strings')
        if inner == "wildcard":
            for item in strings:
                _wildcard(item, path)
        return
    values = value if isinstance(value, list) else [value]
    if not values or any(v is None or isinstance(v, bool | dict | list) for v in values):
        raise FilterCriteriaError(f'"{path}": anything-but takes a string, a number, or a list of them')


def _numeric(value: Any, path: str) -> None:
    if not isinstance(value, list) or len(value) not in (2, 4):
        raise FilterCriteriaError(f'"{path}": numeric takes [op, number] or [">"/">=", low, "<"/"<=", high]')
    operators, bounds = value[0::2], value[1::2]
    if any(op not in _NUMERIC_OPERATORS for op in operators):
        raise FilterCriteriaError(f'"{path}": numeric operators are {", ".join(_NUMERIC_OPERATORS)}')
    if any(isinstance(b, bool) or not isinstance(b, int | float) for b in bounds):
        raise FilterCriteriaError(f'"{path}": numeric bounds must be numbers')
    if len(value) == 4:
        if operators[0] not in (">", ">=") or operators[1] not in ("<", "<="):
            raise FilterCriteriaError(f'"{path}": a numeric range is [">"/">=", low, "<"/"<=", high]')
        if bounds[1] <= bounds[0]:
            raise FilterCriteriaError(f'"{path}": a numeric range needs its low bound below its high bound')


def _wildcard(value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise FilterCriteriaError(f'"{path}": wildcard takes a string')
    if "**" in value:
        raise FilterCriteriaError(f'"{path}": consecutive wildcard characters are not allowed')


def record_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a pattern is matched against: the record, with a JSON body parsed (Lambda does the same)."""
    view = dict(record)
    try:
        view["body"] = json.loads(record.get("body", ""))
    except (TypeError, ValueError):
        view["body"] = record.get("body")
    return view


def matches_any(patterns: tuple[FilterPattern, ...], record: Mapping[str, Any]) -> bool:
    """No patterns: everything passes. Otherwise a record passes when any pattern matches (Lambda ORs them)."""
    if not patterns:
        return True
    view = record_view(record)
    return any(pattern.matches(view) for pattern in patterns)
