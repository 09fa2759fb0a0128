"""Secrets for verifying senders, loaded by reference through Powertools Parameters.

A reference is ``ssm:/path/name`` (SSM Parameter Store, SecureString decrypted) or
``secretsmanager:name``. The stored value is either one secret or a JSON list of
secrets (``["new", "old"]``): every listed secret is accepted, which is how a key is
rotated without dropping events. Values are cached for ``max_age`` seconds per
container, so a rotation takes effect within that time without a deploy.
"""

from __future__ import annotations

import json
from typing import Any

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
        if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
            raise ValueError("a secret list must be a JSON list of non-empty strings")
        return tuple(items)
    if not text:
        raise ValueError("the secret is empty")
    return (text,)


class SecretStore:
    """Loads secrets by reference; the SSM and Secrets Manager clients can be injected."""

    def __init__(self, *, max_age: int = DEFAULT_MAX_AGE, ssm_client: Any = None, secrets_client: Any = None):
        self.max_age = max_age
        self._ssm_client = ssm_client
        self._secrets_client = secrets_client
        self._providers: dict[str, Any] = {}

    def get(self, ref: str) -> tuple[str, ...]:
        store, name = split_reference(ref)
        try:
            raw = self._provider(store).get(name, max_age=self.max_age, **({"decrypt": True} if store == "ssm" else {}))
        except Exception as exc:  # noqa: BLE001 - any failure to load is the same answer to the sender
            raise SecretError(f"the secret for this source could not be loaded ({type(exc).__name__})") from None
        try:
            return parse_secret_value(raw if isinstance(raw, str) else raw.decode("utf-8"))
        except ValueError as exc:
            raise SecretError(f"the secret for this source is malformed: {exc}") from None

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
