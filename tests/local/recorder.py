"""What the scripted test handlers saw, shared across containers (this module is not per container)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

calls: list[dict[str, Any]] = []
during_invocation: Callable[[], None] | None = None


def reset() -> None:
    global during_invocation  # noqa: PLW0603 - a test hook, reset by every test
    calls.clear()
    during_invocation = None
