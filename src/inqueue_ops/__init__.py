"""Operator tooling for Inqueue: the ``inqueue`` CLI, dead-letter tools, and (later) the console.

It imports the runtime library (``inqueue``) and is never imported by it, nor shipped in
the Lambda layer: Lambda never runs it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("inqueue")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
