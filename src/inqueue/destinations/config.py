"""Destinations as configuration: read once from ``INQUEUE_DESTINATIONS`` (JSON), checked at start-up.

::

    {"destinations": {
        "shop": {"url": "https://shop.example.com/inqueue", "secret": "ssm:/inqueue/destinations/shop",
                 "method": "POST", "timeout": 10, "headers": {"x-tenant": "eu"},
                 "secret_headers": {"authorization": "ssm:/inqueue/destinations/shop-token"},
                 "rate": {"limit": 2, "per": 1}, "concurrency": 4,
                 "allow_private_networks": false, "payload": "envelope"},
        "results": {"url": "https://shop.example.com/inqueue/results", "secret": "ssm:/inqueue/destinations/shop"}},
     "routes": {"bitrix24": "shop",                              # every type of the source
                "shopify": {"orders/create": "shop", "*": "shop"},   # by type, "*" for the others
                "*": "shop"},                                    # every other source (see below)
     "callbacks": {"bitrix24": "results", "*": "results"}}       # per source, "*" for every other

A routed source is delivered to its destination instead of running Python processors;
a type a source's routes do not name (and no ``"*"``) goes to the processors' router as
before (usually: acknowledged as unrouted). Registering a processor for a routed source
as well is a start-up error (``check_exclusive``): one or the other, never both, so no
event is silently handled twice or not at all. The source ``"*"`` routes every source
that has no route of its own and no processor registered for it by name: those keep
their processors (``make run FORWARD_TO=...`` forwards everything else this way).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from inqueue.secrets import split_reference
from inqueue.sources import _NAME as SOURCE_NAME  # one rule for source names, owned by the sources
from inqueue.sources import ConfigError

DESTINATIONS_ENV = "INQUEUE_DESTINATIONS"
# The local runner sets this so a developer can forward to an app on 127.0.0.1; never set in the template.
ALLOW_LOOPBACK_ENV = "INQUEUE_ALLOW_LOOPBACK_DESTINATIONS"

ANY = "*"
METHODS = ("POST", "PUT", "PATCH")
PAYLOADS = ("envelope", "body")
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 900.0
# One DynamoDB item takes about 1,000 writes a second; a faster limit would throttle on its own key.
MAX_RATE_PER_SECOND = 500
MAX_CONCURRENCY = 1000
MAX_URL_CHARS = 2048
MAX_HEADER_VALUE_CHARS = 1024

_DESTINATION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
# Headers the delivery itself owns: the transport's, the signature's and Inqueue's own.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "te", "trailer"}
    | {"upgrade", "expect", "proxy-authorization", "proxy-connection"}
)
_RESERVED_PREFIXES = ("webhook-", "svix-", "inqueue-")
_TOP_KEYS = frozenset({"destinations", "routes", "callbacks"})
_DESTINATION_KEYS = frozenset(
    {"url", "secret", "method", "timeout", "headers", "secret_headers", "rate", "concurrency"}
    | {"allow_private_networks", "payload"}
)


class DestinationsConfigError(ConfigError):
    """``INQUEUE_DESTINATIONS`` is wrong: a deploy-time mistake, reported at start-up with what to fix."""


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` deliveries every ``per`` seconds, spaced evenly (no bursts)."""

    limit: int
    per: float

    @property
    def interval(self) -> float:
        """Seconds between two deliveries, rounded up to the microsecond so rounding never makes it faster."""
        return math.ceil(self.per / self.limit * 1_000_000) / 1_000_000


@dataclass(frozen=True, slots=True)
class Destination:
    name: str
    url: str
    scheme: str
    host: str  # ASCII (IDNA), lower case, IPv6 without brackets
    port: int
    target: str  # path and query, as sent on the request line
    secret: str
    method: str = "POST"
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    headers: tuple[tuple[str, str], ...] = ()
    secret_headers: tuple[tuple[str, str], ...] = ()
    rate: Rate | None = None
    concurrency: int | None = None
    allow_private_networks: bool = False
    payload: str = "envelope"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def limited(self) -> bool:
        return self.rate is not None or self.concurrency is not None


@dataclass(frozen=True, slots=True)
class DestinationsConfig:
    destinations: Mapping[str, Destination] = field(default_factory=dict)
    # source -> event type (or "*") -> destination name
    routes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # source (or "*") -> destination name
    callbacks: Mapping[str, str] = field(default_factory=dict)

    def route(
        self, source: str, event_type: str, processor_sources: frozenset[str] = frozenset()
    ) -> Destination | None:
        """The destination for this source and type, or None: the processors handle it.

        ``processor_sources``: the sources with processors registered by name, which the
        ``"*"`` route leaves to their processors.
        """
        by_type = self.routes.get(source)
        if by_type is None:
            if source in processor_sources:
                return None
            by_type = self.routes.get(ANY)
            if by_type is None:
                return None
        name = by_type.get(event_type) or by_type.get(ANY)
        return self.destinations[name] if name else None

    def callback(self, source: str) -> Destination | None:
        name = self.callbacks.get(source) or self.callbacks.get(ANY)
        return self.destinations[name] if name else None

    @property
    def routed_sources(self) -> frozenset[str]:
        return frozenset(self.routes)

    @property
    def needs_store(self) -> bool:
        """True when a destination has a rate or concurrency, which the status table must hold."""
        return any(destination.limited for destination in self.destinations.values())

    def check_exclusive(self, processor_sources: Iterable[str]) -> None:
        """Refuse a source that has both routes and processors registered for it by name.

        Processors registered for any source (``"*"``) or as the router's default are not
        counted: they handle what no destination and no named processor takes. The ``"*"``
        route is not counted either: it takes only sources without named processors.
        """
        both = sorted(set(processor_sources) & (set(self.routes) - {ANY}))
        if both:
            raise DestinationsConfigError(
                f"source(s) {', '.join(both)} are routed to a destination in {DESTINATIONS_ENV} and also have "
                "Python processors registered for them: a source uses one or the other; remove the route or "
                "the processors"
            )


def parse_config(text: str | None, *, known_sources: Iterable[str] | None = None) -> DestinationsConfig:
    """Read and check the JSON; ``known_sources`` (when given) must include every routed source."""
    if text is None or not text.strip():
        return DestinationsConfig()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DestinationsConfigError(f"{DESTINATIONS_ENV} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DestinationsConfigError(f"{DESTINATIONS_ENV} must be a JSON object with destinations, routes, callbacks")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise DestinationsConfigError(
            f"{DESTINATIONS_ENV} has unknown keys {unknown}; expected {', '.join(sorted(_TOP_KEYS))}"
        )
    raw_destinations = _object(data.get("destinations", {}), "destinations")
    destinations = {}
    for name, options in raw_destinations.items():
        if not _DESTINATION_NAME.match(name):
            raise DestinationsConfigError(f"destination name {name!r} must be 1-64 of a-z, 0-9, '-' or '_'")
        try:
            destinations[name] = _destination(name, options)
        except (TypeError, ValueError) as exc:
            raise DestinationsConfigError(f"destination {name!r}: {exc}") from None
    known = set(known_sources) if known_sources is not None else None
    routes = _routes(_object(data.get("routes", {}), "routes"), destinations, known)
    callbacks = _callbacks(_object(data.get("callbacks", {}), "callbacks"), destinations, known)
    return DestinationsConfig(destinations=destinations, routes=routes, callbacks=callbacks)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DestinationsConfigError(f"{DESTINATIONS_ENV}: {what} must be a JSON object")
    return value


def _source_name(source: str, known: set[str] | None, what: str, *, wildcard: bool = False) -> None:
    if wildcard and source == ANY:
        return
    if not SOURCE_NAME.match(source):
        raise DestinationsConfigError(f"{what}: {source!r} is not a source name")
    if known is not None and source not in known:
        raise DestinationsConfigError(f"{what}: source {source!r} is not configured (sources: {sorted(known)})")


def _destination_name(name: Any, destinations: Mapping[str, Destination], what: str) -> str:
    if not isinstance(name, str) or name not in destinations:
        raise DestinationsConfigError(f"{what} names destination {name!r}, which is not defined")
    return name


def _routes(
    raw: dict[str, Any], destinations: Mapping[str, Destination], known: set[str] | None
) -> dict[str, dict[str, str]]:
    routes: dict[str, dict[str, str]] = {}
    for source, target in raw.items():
        _source_name(source, known, "routes", wildcard=True)
        if isinstance(target, str):
            routes[source] = {ANY: _destination_name(target, destinations, f"routes[{source!r}]")}
            continue
        if not isinstance(target, dict) or not target:
            raise DestinationsConfigError(
                f"routes[{source!r}] must be a destination name or an object of event type to destination name"
            )
        by_type = {}
        for event_type, name in target.items():
            if not isinstance(event_type, str) or not event_type:
                raise DestinationsConfigError(f"routes[{source!r}] has an empty event type")
            by_type[event_type] = _destination_name(name, destinations, f"routes[{source!r}][{event_type!r}]")
        routes[source] = by_type
    return routes


def _callbacks(raw: dict[str, Any], destinations: Mapping[str, Destination], known: set[str] | None) -> dict[str, str]:
    callbacks = {}
    for source, name in raw.items():
        _source_name(source, known, "callbacks", wildcard=True)
        callbacks[source] = _destination_name(name, destinations, f"callbacks[{source!r}]")
    return callbacks


def _destination(name: str, options: Any) -> Destination:
    if not isinstance(options, dict):
        raise TypeError("settings must be a JSON object with at least url and secret")
    unknown = sorted(set(options) - _DESTINATION_KEYS)
    if unknown:
        raise ValueError(f"unknown settings {unknown}; allowed: {', '.join(sorted(_DESTINATION_KEYS))}")
    url = options.get("url")
    if not isinstance(url, str) or not url:
        raise ValueError("url is required")
    scheme, host, port, target = _url(url)
    secret = options.get("secret")
    if not isinstance(secret, str) or not secret:
        raise ValueError("secret is required: a reference (ssm:/name or secretsmanager:name) to a whsec_ secret")
    split_reference(secret)
    method = options.get("method", "POST")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    payload = options.get("payload", "envelope")
    if payload not in PAYLOADS:
        raise ValueError(f"payload must be one of {', '.join(PAYLOADS)}")
    allow_private = options.get("allow_private_networks", False)
    if not isinstance(allow_private, bool):
        raise TypeError("allow_private_networks must be true or false")
    return Destination(
        name=name,
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        target=target,
        secret=secret,
        method=method.upper(),
        timeout=_number(options.get("timeout", DEFAULT_TIMEOUT_SECONDS), "timeout", 0.0, MAX_TIMEOUT_SECONDS),
        headers=_headers(options.get("headers", {})),
        secret_headers=_secret_headers(options.get("secret_headers", {})),
        rate=_rate(options.get("rate")),
        concurrency=_concurrency(options.get("concurrency")),
        allow_private_networks=allow_private,
        payload=payload,
    )


def _url(url: str) -> tuple[str, str, int, str]:
    if len(url) > MAX_URL_CHARS or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise ValueError(f"url must be at most {MAX_URL_CHARS} characters with no spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("url must be http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("url must not hold credentials: put them in secret_headers")
    if parts.fragment or url.endswith("#"):
        raise ValueError("url must not have a #fragment")
    if not parts.hostname:
        raise ValueError("url has no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("url has an invalid port") from None
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("url's host is not a valid domain name") from None
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.scheme, host.rstrip(".") or host, port or (443 if parts.scheme == "https" else 80), target


def _number(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
        raise ValueError(f"{what} must be a number of seconds above {low:g} and at most {high:g}")
    return float(value)


def _header_name(name: Any) -> str:
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise ValueError(f"header name {name!r} is not a valid HTTP header name")
    lower = name.lower()
    if lower in _RESERVED_HEADERS or lower.startswith(_RESERVED_PREFIXES):
        raise ValueError(f"header {name!r} is set by the delivery itself and cannot be configured")
    return lower


def _headers(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        raise TypeError("headers must be a JSON object of name to value")
    headers = []
    for name, value in raw.items():
        lower = _header_name(name)
        if (
            not isinstance(value, str)
            or len(value) > MAX_HEADER_VALUE_CHARS
            or any(char in value for char in "\r\n\x00")
            or not value.isascii()
        ):
            raise ValueError(f"header {name!r} must be ASCII text of at most {MAX_HEADER_VALUE_CHARS} characters")
        headers.append((lower, value))
    return tuple(headers)


def _secret_headers(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        raise TypeError("secret_headers must be a JSON object of header name to secret reference")
    headers = []
    for name, ref in raw.items():
        lower = _header_name(name)
        if not isinstance(ref, str):
            raise TypeError(f"secret_headers[{name!r}] must be a secret reference")
        split_reference(ref)
        headers.append((lower, ref))
    return tuple(headers)


def _rate(raw: Any) -> Rate | None:
    if raw is None:
        return None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if not raw > 0:
            raise ValueError("rate must be above 0 deliveries a second")
        if float(raw).is_integer():
            limit, per = int(raw), 1.0
        else:
            # 0.5 a second reads as one every 2 s, 2.5 as one every 0.4 s.
            limit, per = 1, 1.0 / raw
    elif isinstance(raw, dict) and set(raw) <= {"limit", "per"} and "limit" in raw:
        limit, per = raw["limit"], raw.get("per", 1)
    else:
        raise ValueError('rate must be deliveries per second (2) or {"limit": 120, "per": 60}')
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError("rate's limit must be a whole number of at least 1")
    if isinstance(per, bool) or not isinstance(per, int | float) or not 0 < per <= 86_400:
        raise ValueError("rate's per must be seconds above 0 and at most 86400")
    rate = Rate(limit=int(limit), per=float(per))
    if rate.interval < 1 / MAX_RATE_PER_SECOND:
        raise ValueError(f"rate must be at most {MAX_RATE_PER_SECOND} deliveries a second")
    return rate


def _concurrency(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}")
    return raw
