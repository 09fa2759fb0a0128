"""``PARAMS`` / ``--parameter-overrides``: read exactly as ``sam deploy --parameter-overrides`` reads them.

SAM splits ``Name=Value`` pairs on spaces; a value holding spaces or double quotes (a JSON
object, say) must be wrapped in single or double quotes, with ``\\"``, ``\\'`` and ``\\ ``
unescaped inside. ``ParameterKey=Name,ParameterValue=Value`` and ``file://params.json``
(or ``.yaml``) are accepted too. The regular expressions are SAM's own
(``samcli.cli.types.CfnParameterOverridesType``), so a string means the same here and on
deploy. One difference on purpose: SAM silently drops what it cannot read (given
``SourcesConfig={"a":1}`` it sets ``SourcesConfig`` to ``{`` and ignores the rest); here that
is an error that says how to quote the value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_KEY = r"""([A-Za-z0-9\"']+)"""
_VALUE = r"""("(?:\\.|[^"\\]+)*"|'(?:\\.|[^'\\]+)*'|(?:\\.|[^ "\\]+)+)"""
_LONG = re.compile(rf"ParameterKey={_KEY},ParameterValue={_VALUE}")
_SHORT = re.compile(rf" {_KEY}={_VALUE}")
QUOTING = (
    "quote a value with spaces or double quotes, as sam deploy needs too: "
    """PARAMS="SourcesConfig='{\\"demo\\": ...}'\""""
)


class OverrideError(ValueError):
    """An override that cannot be read; the message says what to write instead."""


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value.replace("\\ ", " ").replace('\\"', '"').replace("\\'", "'")


def parse(text: str | list[str] | None, *, base: Path | None = None) -> dict[str, str]:
    """``Name=Value ...`` (one string, or words that are joined with spaces) -> {name: value}."""
    if isinstance(text, list):
        text = " ".join(text)
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("file://"):
        return _from_file(Path(text.removeprefix("file://")), base)
    normalized = " " + text
    for pattern in (_LONG, _SHORT):
        matches = list(pattern.finditer(normalized))
        if not matches:
            continue
        leftover = pattern.sub("", normalized).strip()
        if leftover:
            last = matches[-1]
            raise OverrideError(
                f"cannot read {leftover[:60]!r} after {_unquote(last.group(1))}={last.group(2)[:20]}: {QUOTING}"
            )
        return {_unquote(match.group(1)): _unquote(match.group(2)) for match in matches}
    raise OverrideError(f"{text[:60]!r} must look like Name=Value (space-separated), or file://params.json")


def _from_file(path: Path, base: Path | None) -> dict[str, str]:
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OverrideError(f"file://{path}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".json":
            loaded: Any = json.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            loaded = yaml.safe_load(text)
        else:
            raise OverrideError(f"file://{path}: use a .json, .yaml or .yml file")
    except (ValueError, ImportError) as exc:
        raise OverrideError(f"file://{path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise OverrideError(f"file://{path} must hold an object of parameter name to value")
    result: dict[str, str] = {}
    for key, value in loaded.items():
        if isinstance(value, dict):
            # SAM would pass Python's repr of it; say so rather than start with a broken value.
            raise OverrideError(f"file://{path}: {key} is an object; write it as a JSON string, as sam deploy reads it")
        if isinstance(value, list):
            result[str(key)] = ",".join(str(item).strip() for item in value if item not in (None, ""))
        else:
            result[str(key)] = "" if value is None else str(value)
    return result
