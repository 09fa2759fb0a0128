"""Secrets for verifying senders, loaded by reference through Powertools Parameters.

A reference is ``ssm:/path/name`` (SSM Parameter Store, SecureString decrypted) or
``secretsmanager:name``. The stored value is either one secret or a JSON list of
secrets (``["new", "old"]``): every listed secret is accepted, which is how a key is
rotated without dropping events. Values are cached for ``max_age`` seconds per
container, so a rotation takes effect within that time without a deploy.

A few kinds (Bitrix24 apps) keep one secret per tenant: ``get_keyed`` also accepts a
JSON object of key to secret(s), ``{"<member_id>": "token", "<domain>": ["new", "old"]}``.
"""

from __future__ import annotations

import json
from typing import Any, cast

from inqueue.errors import ServiceUnavailable

DEFAULT_MAX_AGE = 300


class SecretError(ServiceUnavailable):
    """The secret could not be loaded: retryable, because the sender did nothing wrong."""

    code = "secret_unavailable"


def split_reference(ref: str) -> tuple[str, str]:
    store, sep, name = ref.partition(":")
    if not sep or not name or store not in ("ssm", "secretsmanager"):
        raise ValueError(f"secret reference {ref!r} must look like 'ssm:/name' or 'secretsmanager:name'")
    return store, name


def parse_secret_value(value: str) -> tuple[str, ...]:
    text = value.strip()
    if text.startswith("["):
        items = json.loads(text)
        if not isinstance(items, list) or not items or not all(isinstance(item, str) and item for item in items):
            raise ValueError("a secret list must be a JSON list of non-empty strings")
        return tuple(items)
    if not text:
        raise ValueError("the secret is empty")
    return (text,)


def parse_keyed_secret_value(value: str) -> tuple[str, ...] | dict[str, tuple[str, ...]]:
    """Like ``parse_secret_value``, but a JSON object of key to secret or list of secrets is allowed too."""
    text = value.strip()
    if not text.startswith("{"):
        return parse_secret_value(text)
    mapping = json.loads(text)
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError("a keyed secret must be a non-empty JSON object of key to secret(s)")
    keyed: dict[str, tuple[str, ...]] = {}
    for key, item in mapping.items():
        if not key:
            raise ValueError("a keyed secret has an empty key")
        if isinstance(item, str):
            keyed[key] = parse_secret_value(item)
        elif isinstance(item, list) and item and all(isinstance(entry, str) and entry for entry in item):
            keyed[key] = tuple(item)
        else:
            raise ValueError(f"the secret for key {key!r} must be a non-empty string or list of them")
    return keyed


class SecretStore:
    """Loads secrets by reference; the SSM and Secrets Manager clients can be injected."""

    def __init__(self, *, max_age: int = DEFAULT_MAX_AGE, ssm_client: Any = None, secrets_client: Any = None):
        self.max_age = max_age
        self._ssm_client = ssm_client
        self._secrets_client = secrets_client
        self._providers: dict[str, Any] = {}
        # The last parsed value per (reference, shape), reused while Powertools hands back the same text.
        self._parsed: dict[tuple[str, bool], tuple[str, tuple[str, ...] | dict[str, tuple[str, ...]]]] = {}

    def get(self, ref: str) -> tuple[str, ...]:
        """The current secrets for a reference: one, or several while a key is rotated."""
        return cast("tuple[str, ...]", self._parse(ref, keyed=False))

    def get_keyed(self, ref: str) -> tuple[str, ...] | dict[str, tuple[str, ...]]:
        """Like ``get``, or a mapping of key (a tenant, a portal) to its current secrets."""
        return self._parse(ref, keyed=True)

    def _parse(self, ref: str, *, keyed: bool) -> tuple[str, ...] | dict[str, tuple[str, ...]]:
        raw = self._raw(ref)
        cached = self._parsed.get((ref, keyed))
        if cached is not None and cached[0] == raw:
            return cached[1]
        try:
            value = parse_keyed_secret_value(raw) if keyed else parse_secret_value(raw)
        except ValueError as exc:
            raise SecretError(f"the secret for this source is malformed: {exc}") from None
        self._parsed[(ref, keyed)] = (raw, value)
        return value

    def _raw(self, ref: str) -> str:
        store, name = split_reference(ref)
        try:
            raw = self._provider(store).get(name, max_age=self.max_age, **({"decrypt": True} if store == "ssm" else {}))
            return raw if isinstance(raw, str) else bytes(raw).decode("utf-8")
        except Exception as exc:  # noqa: BLE001 - any failure to load is the same answer to the sender
            raise SecretError(f"the secret for this source could not be loaded ({type(exc).__name__})") from None

    def _provider(self, store: str) -> Any:
        provider = self._providers.get(store)
        if provider is None:
            # Imported here: Parameters pulls in more than the ingress needs before its first signed request.
            from aws_lambda_powertools.utilities import parameters

            if store == "ssm":
                provider = parameters.SSMProvider(boto3_client=self._ssm_client)
            else:
                provider = parameters.SecretsProvider(boto3_client=self._secrets_client)
            self._providers[store] = provider
        return provider
