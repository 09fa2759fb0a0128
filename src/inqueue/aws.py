"""AWS clients, built once per container and replaceable by tests.

Endpoints come from the SDK's own variables (``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_SQS``), so the same code talks to AWS, moto or LocalStack.
"""

from __future__ import annotations

from typing import Any

# The ingress answers senders that give up after 3 s (Slack): a hung SQS call must
# become a 503 well before that, never an API Gateway timeout.
INGRESS_SQS_CONFIG: dict[str, Any] = {
    "connect_timeout": 1,
    "read_timeout": 2,
    "retries": {"mode": "standard", "total_max_attempts": 2},
}

# Secrets are read on a sender's request too: a slow store must become a 503, not a timeout.
SECRETS_CONFIG: dict[str, Any] = INGRESS_SQS_CONFIG


def client(service: str, **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    made: Any = boto3.client(service, config=Config(**config))  # type: ignore[call-overload]
    return made
