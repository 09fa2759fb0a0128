"""What Python files import, read from their source: import statements anywhere (inside functions too)
and module paths in strings (``importlib.import_module("inqueue.sources.github")``)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
FUNCTIONS = sorted((ROOT / "functions").glob("*/*.py"))
MODULE_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # a submodule imported by name
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.match(node.value):
            names.add(node.value)
    return names


def module_file(name: str, src: Path = SRC) -> Path | None:
    path = src.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def reached(starts: Iterable[Path], package: str = "inqueue", src: Path = SRC) -> set[Path]:
    """Every file of ``package`` that ``starts`` import, directly or through each other (parents included)."""
    todo, seen = list(starts), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            parts = name.split(".")
            if parts[0] != package:
                continue
            for depth in range(1, len(parts) + 1):
                found = module_file(".".join(parts[:depth]), src)
                if found is not None and found not in seen:
                    todo.append(found)
    return {path for path in seen if path.is_relative_to(src / package)}
