"""Hot reload for ``make run``: a change under a function's code or its layer retires its warm environments.

``CodeWatch.check()`` compares every file's modification time and size under some
directories with the previous look (no threads here: the runner calls it once a second,
tests call it directly). Retiring means the next invocation cold-starts in a new process
that imports the edited code, as a new deployment would; an invocation in flight finishes
on the code it started with.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_SKIPPED_DIRECTORIES = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


class CodeWatch:
    def __init__(self, roots: Iterable[Path]):
        self.roots = sorted({Path(root).resolve() for root in roots})
        self._seen = self._scan()

    def _scan(self) -> dict[Path, tuple[int, int]]:
        found: dict[Path, tuple[int, int]] = {}
        for root in self.roots:
            for directory, subdirectories, files in os.walk(root):
                subdirectories[:] = [
                    d for d in subdirectories if d not in _SKIPPED_DIRECTORIES and not d.startswith(".")
                ]
                for name in files:
                    if name.endswith((".pyc", ".pyo")) or name.startswith("."):
                        continue
                    path = Path(directory, name)
                    try:
                        stat = path.stat()
                    except OSError:
                        continue
                    found[path] = (stat.st_mtime_ns, stat.st_size)
        return found

    def check(self) -> list[Path]:
        """Files added, removed or changed since the last look."""
        now = self._scan()
        changed = sorted(path for path in now.keys() | self._seen.keys() if now.get(path) != self._seen.get(path))
        self._seen = now
        return changed


def under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)
