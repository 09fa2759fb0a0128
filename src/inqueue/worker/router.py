"""What processors import: ``Router.on(source, type)`` registers the user's processing.

A processor receives an ``Envelope`` and knows nothing of SQS, batches or retries: it
returns (done), raises ``RetryLater(seconds)`` or ``PermanentError(reason)``, or raises
anything else (retried after a backoff). See ``inqueue.worker``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inqueue.envelope import Envelope
from inqueue.observability import logger

Processor = Callable[[Envelope], Any]

ANY = "*"


def acknowledge_unrouted(event: Envelope) -> None:
    """The default processor: senders such as GitHub send many types nobody asked to handle."""
    logger.info("unrouted: no processor for this source and type; acknowledged", extra={"type": event.type})


class Router:
    """Processors by (source, type); ``"*"`` matches any source or any type."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Processor] = {}
        self._default: Processor = acknowledge_unrouted

    def on(self, source: str = ANY, type: str = ANY) -> Callable[[Processor], Processor]:  # noqa: A002
        def register(processor: Processor) -> Processor:
            key = (source, type)
            if key in self._routes:
                raise ValueError(f"a processor is already registered for source={source!r} type={type!r}")
            self._routes[key] = processor
            return processor

        return register

    def default(self, processor: Processor) -> Processor:
        self._default = processor
        return processor

    def named_sources(self) -> frozenset[str]:
        """The sources with a processor registered for them by name (not ``"*"``): a destination may not take them."""
        return frozenset(source for source, _ in self._routes if source != ANY)

    def resolve(self, source: str, type: str) -> Processor:  # noqa: A002
        routes = self._routes
        return (
            routes.get((source, type))
            or routes.get((source, ANY))
            or routes.get((ANY, type))
            or routes.get((ANY, ANY))
            or self._default
        )
