"""Deliver an event to its destination, or a result callback, and turn the answer into an outcome.

``Deliverer.deliver(envelope)`` returns ``Delivered`` (succeeded, with the app's answer as
the result) or raises:

- ``Deferred(seconds)``: a rate or concurrency limit had no slot; nothing was sent and it
  is not an attempt;
- ``RetryLater(seconds)``: the app said when to come back (429/503 with Retry-After);
- ``DeliveryFailed`` / ``LimitUnavailable`` / ``SecretError``: no usable answer; retry
  with the backoff;
- ``PermanentError`` (``AddressRefused`` among them): never going to work as configured;
  dead-letter with the reason.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from inqueue.destinations.config import (
    ALLOW_LOOPBACK_ENV,
    DESTINATIONS_ENV,
    Destination,
    DestinationsConfig,
    DestinationsConfigError,
    parse_config,
)
from inqueue.destinations.network import SafeHttp
from inqueue.destinations.outcome import Delivered, decide
from inqueue.destinations.payload import (
    callback_body,
    callback_message_id,
    delivery_body,
    signed_headers,
)
from inqueue.destinations.ratelimit import DeliveryLimiter
from inqueue.envelope import Envelope, isoformat_ms
from inqueue.secrets import SecretError, SecretStore
from inqueue.sources.standard_webhooks import decode_key

# How long a delivery may wait in the worker for a rate slot or a lease before it is deferred
# through the queue instead: short waits cost less than a receive, a visibility change and a write.
DEFAULT_MAX_WAIT_SECONDS = 2.0
# Enough of an answer to judge a 4 KiB result after compaction and to quote an error; the rest is not read.
READ_LIMIT_BYTES = 64 * 1024


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise DestinationsConfigError(f"{name} must be true or false, not {value!r}")


class Deliverer:
    """The configured destinations with what delivering needs: secrets, the SSRF-safe client, the limiter."""

    def __init__(
        self,
        config: DestinationsConfig,
        *,
        secrets: SecretStore | None = None,
        http: SafeHttp | None = None,
        limiter: DeliveryLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ):
        if config.needs_store and limiter is None:
            limited = sorted(name for name, item in config.destinations.items() if item.limited)
            raise DestinationsConfigError(
                f"destination(s) {', '.join(limited)} set a rate or concurrency, which is kept in the status "
                "table: set INQUEUE_STATUS_TABLE"
            )
        self.config = config
        self.secrets = secrets or SecretStore()
        self.http = http or SafeHttp()
        self.limiter = limiter
        self.clock = clock

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        known_sources: Iterable[str] | None = None,
        secrets: SecretStore | None = None,
        dynamodb: Any = None,
    ) -> Deliverer:
        """Read ``INQUEUE_DESTINATIONS``, ``INQUEUE_ALLOW_LOOPBACK_DESTINATIONS`` and the status table; fail fast."""
        env = os.environ if env is None else env
        config = parse_config(env.get(DESTINATIONS_ENV), known_sources=known_sources)
        table = env.get("INQUEUE_STATUS_TABLE", "").strip()
        limiter = DeliveryLimiter(table, dynamodb) if config.needs_store and table else None
        return cls(
            config, secrets=secrets, http=SafeHttp(allow_loopback=_flag(env, ALLOW_LOOPBACK_ENV)), limiter=limiter
        )

    def route(self, envelope: Envelope, processor_sources: frozenset[str] = frozenset()) -> Destination | None:
        """The destination this event goes to, or None: the Python processors handle it."""
        return self.config.route(envelope.source, envelope.type, processor_sources)

    def callback(self, source: str) -> Destination | None:
        """The source's result-callback destination, or None."""
        return self.config.callback(source)

    def deliver(
        self,
        envelope: Envelope,
        destination: Destination | None = None,
        *,
        attempt: int | None = None,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    ) -> Delivered:
        """Send the event (its claim check resolved) to its destination; see the module's docstring for outcomes."""
        destination = destination or self.route(envelope)
        if destination is None:
            raise ValueError(f"no destination is routed for source {envelope.source!r} type {envelope.type!r}")
        return self._send(
            destination,
            message_id=envelope.id,
            body=delivery_body(envelope, destination.payload),
            source=envelope.source,
            event_type=envelope.type,
            attempt=attempt,
            max_wait=max_wait,
        )

    def notify(
        self,
        *,
        event_id: str,
        source: str,
        event_type: str,
        status: str,
        attempts: int,
        finished_at: str | None = None,
        correlation_id: str | None = None,
        result: Any = None,
        result_omitted: str | None = None,
        reason: str | None = None,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        timeout: float | None = None,
    ) -> Delivered | None:
        """POST the final outcome to the source's callback destination; None when it has none.

        ``finished_at`` (ISO 8601, the record's time of the final write) keeps the body the
        same when a callback is retried; ``webhook-id`` is ``<event id>.<status>.<attempts>``.
        ``timeout`` shortens the destination's own (the worker's first, inline try).
        """
        destination = self.config.callback(source)
        if destination is None:
            return None
        if timeout is not None and timeout < destination.timeout:
            destination = dataclasses.replace(destination, timeout=timeout)
        body = callback_body(
            event_id=event_id,
            source=source,
            event_type=event_type,
            status=status,
            attempts=attempts,
            finished_at=finished_at or isoformat_ms(self.clock()),
            correlation_id=correlation_id,
            result=result,
            result_omitted=result_omitted,
            reason=reason,
        )
        return self._send(
            destination,
            message_id=callback_message_id(event_id, status, attempts),
            body=body,
            source=source,
            event_type=event_type,
            attempt=None,
            max_wait=max_wait,
        )

    def _send(
        self,
        destination: Destination,
        *,
        message_id: str,
        body: bytes,
        source: str,
        event_type: str,
        attempt: int | None,
        max_wait: float,
    ) -> Delivered:
        # Secrets first: a secret that cannot be had must not spend a rate slot.
        keys = self._signing_secrets(destination)
        extra = dict(destination.headers)
        for name, ref in destination.secret_headers:
            extra[name] = self._secret(destination, ref)[0]
        permit = self.limiter.acquire(destination, max_wait=max_wait) if self.limiter and destination.limited else None
        try:
            if permit is not None and self.limiter is not None:
                self.limiter.wait(permit)
            headers = signed_headers(
                message_id=message_id,
                timestamp=int(self.clock()),
                body=body,
                secrets=keys,
                source=source,
                event_type=event_type,
                attempt=attempt,
                extra=extra,
            )
            answer = self.http.send(destination, headers, body, read_limit=READ_LIMIT_BYTES)
        finally:
            if permit is not None and self.limiter is not None:
                self.limiter.release(permit)
        return decide(destination.name, answer, self.clock())

    def _signing_secrets(self, destination: Destination) -> tuple[str, ...]:
        secrets = self._secret(destination, destination.secret)
        try:
            for secret in secrets:
                decode_key(secret)
        except SecretError:
            raise SecretError(
                f"destination {destination.name!r}: its signing secret is not whsec_<base64>", code="secret_malformed"
            ) from None
        return secrets

    def _secret(self, destination: Destination, ref: str) -> tuple[str, ...]:
        try:
            return self.secrets.get(ref)
        except SecretError as exc:
            raise SecretError(f"destination {destination.name!r}, secret {ref}: {exc.message}", code=exc.code) from None
