"""Destinations: forward events to the user's own app over HTTP, signed, rate-limited, SSRF-safe.

A source (or a source and event type) can be routed to a named HTTP destination instead
of Python processors (``INQUEUE_DESTINATIONS``, see ``config``). Each delivery is signed
the Standard Webhooks way (``payload`` documents the exact bytes), sent over a client that
checks every address it connects to (``network``), paced by limits every worker shares
(``ratelimit``), and the answer decides the outcome (``outcome``). ``Deliverer`` ties
them together; the worker calls ``deliver`` for a routed event and ``notify`` when an
event becomes final.
"""

from __future__ import annotations

from inqueue.destinations.config import (
    ALLOW_LOOPBACK_ENV,
    DESTINATIONS_ENV,
    Destination,
    DestinationsConfig,
    DestinationsConfigError,
    Rate,
    parse_config,
)
from inqueue.destinations.delivery import DEFAULT_MAX_WAIT_SECONDS, Deliverer
from inqueue.destinations.network import AddressPolicy, AddressRefused, DeliveryFailed, SafeHttp, classify
from inqueue.destinations.outcome import Delivered, decide, retry_after_seconds
from inqueue.destinations.ratelimit import DeliveryLimiter, LimitUnavailable, Permit

__all__ = [
    "ALLOW_LOOPBACK_ENV",
    "DEFAULT_MAX_WAIT_SECONDS",
    "DESTINATIONS_ENV",
    "AddressPolicy",
    "AddressRefused",
    "Delivered",
    "Deliverer",
    "DeliveryFailed",
    "DeliveryLimiter",
    "Destination",
    "DestinationsConfig",
    "DestinationsConfigError",
    "LimitUnavailable",
    "Permit",
    "Rate",
    "SafeHttp",
    "classify",
    "decide",
    "parse_config",
    "retry_after_seconds",
]
