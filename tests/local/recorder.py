"""What the scripted handlers saw, shared by every in-process environment (this module is not per environment)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

calls: list[dict[str, Any]] = []
during_invocation: Callable[[], None] | None = None


def reset() -> None:
    global during_invocation  # noqa: PLW0603 - a test hook, reset by every test
    calls.clear()
    during_invocation = None
