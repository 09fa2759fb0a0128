"""An ingress with one source per kind, its secrets seeded in (moto's) SSM from config/secrets.example.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.factories import Clock
from tests.senders import SAMPLE_SECRETS, SOURCES, api_event

from inqueue.ingress import Ingress


def seed(ssm: Any, secrets: dict[str, Any]) -> None:
    for ref, value in secrets.items():
        ssm.put_parameter(
            Name=ref.removeprefix("ssm:"),
            Value=value if isinstance(value, str) else json.dumps(value),
            Type="SecureString",
            Overwrite=True,
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def senders_env(monkeypatch: pytest.MonkeyPatch, queue_url: str, ssm: Any) -> dict[str, str]:
    seed(ssm, SAMPLE_SECRETS)
    env = {"INQUEUE_QUEUE_URL": queue_url, "INQUEUE_SOURCES": json.dumps(SOURCES)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def ingress(senders_env: dict[str, str], clock: Clock) -> Ingress:
    return Ingress.from_environment(clock=clock)


@pytest.fixture
def send(ingress: Ingress) -> Callable[..., dict[str, Any]]:
    """Post a body with headers to a source; the answer's body parsed."""

    def _send(source: str, body: bytes, headers: dict[str, str], *, base64_body: bool = False) -> dict[str, Any]:
        response = ingress.handle(api_event(source, body, headers, request_id="test-req", base64_body=base64_body))
        return {**json.loads(response["body"]), "status": response["statusCode"]}

    return _send
