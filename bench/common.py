"""What the sections share: the Lambda-like environment, the benchmark events, loading the
function entry points the way Lambda does, interleaved timing, and a quiet stdout."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
INGRESS_DIR = ROOT / "functions" / "ingress"
WORKER_DIR = ROOT / "functions" / "worker"

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/inqueue-events"
DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/inqueue-events-dlq"
DEMO_SECRET_REF = "ssm:/inqueue/demo"  # noqa: S105 - a reference to a secret, not one
DEMO_SOURCES = {"demo": {"kind": "generic", "auth": "hmac", "secret": DEMO_SECRET_REF}}


def lambda_env(service: str) -> dict[str, str]:
    """The variables the template and Lambda set for a function, with dummy credentials.

    Endpoint overrides and profiles are dropped so that nothing can reach a real service.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"))
    }
    env.update(
        {
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            # No IMDS probing for credentials or region: Lambda never does it either.
            "AWS_EC2_METADATA_DISABLED": "true",
            "INQUEUE_QUEUE_URL": QUEUE_URL,
            "INQUEUE_DLQ_URL": DLQ_URL,
            "INQUEUE_MAX_RECEIVE_COUNT": "5",
            "INQUEUE_SOURCES": json.dumps(DEMO_SOURCES),
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": "Inqueue",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
    )
    return env


def order_body(size: int = 2048) -> bytes:
    """A realistic order webhook body, padded to ``size`` bytes of compact JSON."""
    document: dict[str, Any] = {
        "type": "order.created",
        "id": "ord_1001",
        "created_at": "2026-11-23T12:00:00Z",
        "data": {
            "order_id": 1001,
            "currency": "EUR",
            "total": "149.70",
            "customer": {
                "id": "cus_77",
                "email": "ada@example.com",
                "name": "Ada Lovelace",
                "phone": "+44 20 7946 0000",
            },
            "shipping_address": {
                "line1": "12 Analytical Row",
                "city": "London",
                "postal_code": "N1 7AA",
                "country": "GB",
            },
            "items": [
                {"sku": f"SKU-{n:04d}", "name": f"Engine part {n}", "qty": n % 3 + 1, "price": "16.63"}
                for n in range(9)
            ],
            "note": "",
        },
    }
    text = json.dumps(document, separators=(",", ":"))
    document["data"]["note"] = "x" * max(0, size - len(text))
    raw = json.dumps(document, separators=(",", ":")).encode()
    assert len(raw) == size, len(raw)
    return raw


def load_function(directory: Path, name: str) -> ModuleType:
    """Import a function's ``app.py`` as Lambda does (its directory and the layer on sys.path), under ``name``.

    Both functions' modules are called ``app``; a distinct name lets both live in one process.
    """
    for path in (str(SRC), str(directory)):
        if path not in sys.path:
            sys.path.insert(0, path)
    spec = importlib.util.spec_from_file_location(name, directory / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null: log lines are still formatted and written, as in Lambda."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


def interleaved(
    subjects: dict[str, Callable[[], object]], rounds: int, per_round: int, per_call: int = 1
) -> dict[str, list[float]]:
    """Time each subject in blocks of ``per_round`` calls, alternating subjects every round.

    Returns, per subject, one sample per round: microseconds per unit of work, where one call
    does ``per_call`` units (10 for a batch of 10 records). The order is reversed every other
    round so that neither subject always runs first (ABBA), which cancels slow drift.
    """
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    order = list(subjects.items())
    for index in range(rounds):
        for name, call in order if index % 2 == 0 else reversed(order):
            start = time.perf_counter_ns()
            for _ in range(per_round):
                call()
            elapsed = time.perf_counter_ns() - start
            samples[name].append(elapsed / 1000 / per_round / per_call)
    return samples
