"""Sources: a name in the URL mapped to a kind that verifies and describes its requests.

Sources are configuration, read once from ``INQUEUE_SOURCES`` (JSON)::

    {"orders": {"kind": "generic", "auth": "hmac", "secret": "ssm:/inqueue/orders"}}

A kind's module is imported only when a request for a source of that kind arrives,
so the ingress never pays at cold start for verifiers it does not use.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from inqueue.httpapi import Request
from inqueue.secrets import SecretStore, split_reference

KINDS: dict[str, str] = {
    "bitrix24": "inqueue.sources.bitrix24",
    "generic": "inqueue.sources.generic",
    "github": "inqueue.sources.github",
    "shopify": "inqueue.sources.shopify",
    "slack": "inqueue.sources.slack",
    "standard-webhooks": "inqueue.sources.standard_webhooks",
    "stripe": "inqueue.sources.stripe",
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ConfigError(ValueError):
    """The sources configuration is wrong: a deploy-time mistake, reported at start-up."""


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)
    # FIFO queues only: body fields whose values form the MessageGroupId (see inqueue.ordering).
    ordering_key: tuple[str, ...] = ()


class _KeepBody:
    def __repr__(self) -> str:
        return "KEEP_BODY"


# Described.body's default: queue the parsed body as it is.
KEEP_BODY: Any = _KeepBody()


@dataclass(frozen=True, slots=True)
class Described:
    """What a verified request is: its event type, the sender's delivery id, extra facts."""

    type: str
    delivery_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # An answer the sender expects instead of 202, with nothing queued (Slack's url_verification).
    reply: dict[str, Any] | None = None
    # The body to queue when it is not the parsed request body: GitHub's form-wrapped JSON,
    # a Bitrix24 body without its application token.
    body: Any = KEEP_BODY


@dataclass(frozen=True, slots=True)
class KindDeps:
    """What a kind may use besides its own options: secrets by reference and the clock."""

    secrets: SecretStore
    clock: Callable[[], float]


class Verifier(Protocol):
    headers_kept: tuple[str, ...]

    def verify(self, request: Request) -> None:
        """Raise Unauthorized when the request does not prove it comes from the sender."""

    def describe(self, request: Request, body: Any) -> Described:
        """Name the event type and delivery id of a verified, parsed request."""


def as_object(value: Any) -> dict[str, Any]:
    """A JSON object (dict) as it is, anything else as an empty one: describe() must not fail on odd bodies."""
    return value if isinstance(value, dict) else {}


def check_options(config: SourceConfig, allowed: set[str]) -> dict[str, Any]:
    """The options of a kind that needs a secret reference, with unknown options rejected."""
    options = dict(config.options)
    unknown = set(options) - allowed - {"secret"}
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)}")
    if not isinstance(options.get("secret"), str) or not options["secret"]:
        raise ValueError("a secret reference is required")
    split_reference(options["secret"])
    return options


def parse_config(text: str) -> dict[str, SourceConfig]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"INQUEUE_SOURCES is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("INQUEUE_SOURCES must be a JSON object of source name to settings")
    sources = {}
    for name, options in data.items():
        if not _NAME.match(name):
            raise ConfigError(f"source name {name!r} must be 1-64 of a-z, 0-9, '-' or '_'")
        if not isinstance(options, dict) or options.get("kind") not in KINDS:
            raise ConfigError(f"source {name!r} needs a kind, one of {', '.join(sorted(KINDS))}")
        ordering_key = options.get("ordering_key", [])
        if isinstance(ordering_key, str):
            ordering_key = [ordering_key]
        if not isinstance(ordering_key, list) or not all(isinstance(path, str) and path for path in ordering_key):
            raise ConfigError(f"source {name!r}: ordering_key must be a field path or a list of them")
        rest = {key: value for key, value in options.items() if key not in ("kind", "ordering_key")}
        sources[name] = SourceConfig(name=name, kind=options["kind"], options=rest, ordering_key=tuple(ordering_key))
    return sources


class Sources:
    """The configured sources, each verifier built on first use and kept for the container's life."""

    def __init__(self, configs: Mapping[str, SourceConfig], deps: KindDeps):
        self._configs = dict(configs)
        self._deps = deps
        self._verifiers: dict[str, Verifier] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._configs

    def names(self) -> list[str]:
        return sorted(self._configs)

    def ordering_key(self, name: str) -> tuple[str, ...]:
        return self._configs[name].ordering_key

    def verifier(self, name: str) -> Verifier:
        verifier = self._verifiers.get(name)
        if verifier is None:
            verifier = self._build(self._configs[name])
            self._verifiers[name] = verifier
        return verifier

    def validate(self) -> None:
        """Build every verifier now: for start-up checks and tests, not for the Lambda cold start."""
        for name in self._configs:
            self.verifier(name)

    def _build(self, config: SourceConfig) -> Verifier:
        module = importlib.import_module(KINDS[config.kind])
        try:
            return module.build(config, self._deps)  # type: ignore[no-any-return]
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"source {config.name!r} ({config.kind}): {exc}") from None
