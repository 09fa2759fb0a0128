"""AWS clients, built once per container and replaceable by tests, and the one reading of AWS error codes.

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

CONDITION_FAILED = "ConditionalCheckFailedException"


def client(service: str, **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    made: Any = boto3.client(service, config=Config(**config))  # type: ignore[call-overload]
    return made


def worker_config(calls_in_flight: int) -> dict[str, Any]:
    """The worker's clients: no sender is waiting, so longer timeouts and one more retry than the ingress,
    and one pooled connection per call a batch may have in flight."""
    return {
        "connect_timeout": 2,
        "read_timeout": 5,
        "retries": {"mode": "standard", "total_max_attempts": 3},
        "max_pool_connections": calls_in_flight,
    }


def error_code(error: BaseException) -> str | None:
    """The AWS error code of a refused call (``ClientError``); None for anything else (timeouts, no connection)."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    code = (response.get("Error") or {}).get("Code")
    return str(code) if code else None
