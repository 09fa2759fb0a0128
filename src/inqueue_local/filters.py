"""Lambda event-filtering patterns (the EventBridge pattern subset Lambda supports) for SQS records."""

from __future__ import annotations

import json
from typing import Any

_MISSING = object()


def record_view(record: dict[str, Any]) -> dict[str, Any]:
    """What a pattern is matched against: the record, with a JSON body parsed (Lambda does the same)."""
    view = dict(record)
    try:
        view["body"] = json.loads(record.get("body", ""))
    except (TypeError, ValueError):
        view["body"] = record.get("body")
    return view


def matches_any(patterns: tuple[Any, ...], record: dict[str, Any]) -> bool:
    """No patterns: everything passes. Otherwise a record passes when any pattern matches (Lambda ORs them)."""
    if not patterns:
        return True
    view = record_view(record)
    return any(matches(pattern, view) for pattern in patterns)


def matches(pattern: dict[str, Any], data: Any) -> bool:
    for key, rule in pattern.items():
        value = data.get(key, _MISSING) if isinstance(data, dict) else _MISSING
        if isinstance(rule, dict):
            if value is _MISSING or not matches(rule, value):
                return False
        elif isinstance(rule, list):
            if not any(_matches_rule(item, value) for item in rule):
                return False
        else:
            raise TypeError(f"filter pattern values must be lists or objects, not {rule!r}")
    return True


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches_rule(rule: Any, value: Any) -> bool:  # noqa: PLR0911
    if isinstance(rule, dict):
        ((op, arg),) = rule.items()
        if op == "exists":
            return (value is not _MISSING) == bool(arg)
        if value is _MISSING:
            return False
        candidates = _values(value)
        if op == "prefix":
            return any(isinstance(v, str) and v.startswith(arg) for v in candidates)
        if op == "suffix":
            return any(isinstance(v, str) and v.endswith(arg) for v in candidates)
        if op == "equals-ignore-case":
            return any(isinstance(v, str) and v.lower() == str(arg).lower() for v in candidates)
        if op == "anything-but":
            if isinstance(arg, dict):
                return not any(_matches_rule(arg, v) for v in candidates)
            excluded = _values(arg)
            return all(v not in excluded for v in candidates)
        if op == "numeric":
            return any(_numeric(arg, v) for v in candidates)
        raise ValueError(f"unsupported filter operator {op!r}")
    if value is _MISSING:
        return False
    return any(_equal(v, rule) for v in _values(value))


def _equal(value: Any, rule: Any) -> bool:
    if isinstance(rule, bool) or isinstance(value, bool) or rule is None or value is None:
        return value is rule
    if isinstance(rule, int | float) and isinstance(value, int | float):
        return float(value) == float(rule)
    return bool(value == rule)


def _numeric(conditions: list[Any], value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    checks = {"<": float.__lt__, "<=": float.__le__, "=": float.__eq__, ">": float.__gt__, ">=": float.__ge__}
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(checks[op](float(value), float(bound)) for op, bound in pairs)
