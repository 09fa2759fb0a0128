"""Ingress: cold init in fresh processes against bare boto3, and warm time per 2 KB event."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import (
    INGRESS_DIR,
    ROOT,
    SRC,
    interleaved,
    lambda_env,
    load_function,
    order_body,
    patched_environ,
    quiet_stdout,
)
from bench.report import Report

COLD_PAIRS = int(os.environ.get("BENCH_COLD_PAIRS", "25"))
LAYER_PAIRS = int(os.environ.get("BENCH_LAYER_PAIRS", "8"))
BUILT_LAYER = ROOT / ".aws-sam" / "build" / "InqueueLayer" / "python"
LAYER_PACKAGES = ("inqueue", "boto3", "botocore", "aws_lambda_powertools")
# Short rounds (well under the scheduler's 4 ms slice): on a shared machine a round is then
# either preempted or not, and the median picks the rounds that were not.
WARM_ROUNDS = int(os.environ.get("BENCH_WARM_ROUNDS", "400"))
WARM_PER_ROUND = 5

# Identical scaffolding for both children: the function directory and the layer first on sys.path
# (as /var/task and /opt/python are in Lambda), then the module init being measured. The child
# prints the monotonic clock when init is done (the parent read the same clock just before the
# spawn) and the time its own import + init took.
_CHILD = """\
import sys, time
started = time.perf_counter()
sys.path[:0] = [{fn_dir!r}, {src!r}]
{init}
done = time.perf_counter()
print(time.monotonic_ns(), done - started)
"""
SUBJECT_INIT = "import app"
BASELINE_INIT = 'import boto3; boto3.client("sqs")'
EMPTY_INIT = "pass"


def run(report: Report) -> None:
    cold(report)
    warm(report)


def _child(init: str, layer: Path = SRC) -> list[str]:
    return [sys.executable, "-c", _CHILD.format(fn_dir=str(INGRESS_DIR), src=str(layer), init=init)]


def _spawn(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(ms from spawn to end of init, ms of import + init inside the child)."""
    spawned = time.monotonic_ns()
    result = subprocess.run(argv, env=env, cwd=INGRESS_DIR, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"cold-start child failed:\n{result.stderr}")
    ready_ns, inside_s = result.stdout.split()[-2:]
    return (int(ready_ns) - spawned) / 1e6, float(inside_s) * 1000


def cold(report: Report) -> None:
    if COLD_PAIRS <= 0:  # BENCH_COLD_PAIRS=0 skips the slow part while iterating on warm figures
        return
    # Every child reads compiled bytecode from one cache filled by the warm-up runs, whatever
    # PYTHONDONTWRITEBYTECODE says here: otherwise src/ (never compiled in this tree) would be
    # compiled on every run while boto3's .pyc from pip were read, which is not the same test.
    cache = tempfile.mkdtemp(prefix="inqueue-bench-pyc-")
    env = {key: value for key, value in lambda_env("inqueue-ingress").items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    try:
        _cold(report, env)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _cold(report: Report, env: dict[str, str]) -> None:
    children = {"subject": _child(SUBJECT_INIT), "baseline": _child(BASELINE_INIT), "empty": _child(EMPTY_INIT)}
    for argv in children.values():  # compile .pyc files and warm the page cache: not what is measured
        for _ in range(2):
            _spawn(argv, env)
    total: dict[str, list[float]] = {name: [] for name in children}
    inside: dict[str, list[float]] = {name: [] for name in children}
    order = list(children.items())
    for index in range(COLD_PAIRS):
        for name, argv in order if index % 2 == 0 else reversed(order):
            whole, init = _spawn(argv, env)
            total[name].append(whole)
            inside[name].append(init)
    report.add_samples(
        "cold init, process spawn -> handler ready",
        total["subject"],
        "ms",
        baseline=total["baseline"],
        ratio_goal=1.15,
        note='baseline: the same child running `import boto3; boto3.client("sqs")` instead of `import app`',
    )
    report.add_samples(
        "cold init, import + init only (in child)",
        inside["subject"],
        "ms",
        baseline=inside["baseline"],
        ratio_goal=1.15,
        note="the same runs, interpreter start-up excluded",
    )
    report.add_samples(
        "cold init, empty interpreter (floor)",
        total["empty"],
        "ms",
        note="the same child with nothing to import: what no code change can remove",
    )
    _cold_built_layer(report, env)


def _cold_built_layer(report: Report, env: dict[str, str]) -> None:
    """The ingress importing the layer `sam build` made, as Lambda does: /opt is read-only, so
    whatever the layer does not ship compiled is compiled again on every cold start."""
    if not all((BUILT_LAYER / package).is_dir() for package in LAYER_PACKAGES):
        print(f"bench: no layer in {BUILT_LAYER.relative_to(ROOT)} (make build): skipping its row", file=sys.stderr)
        return
    layer_env = {key: value for key, value in env.items() if key != "PYTHONPYCACHEPREFIX"}
    layer_env["PYTHONDONTWRITEBYTECODE"] = "1"  # read-only, like /opt in Lambda: never write into the build
    children = {
        "layer": (_child(SUBJECT_INIT, BUILT_LAYER), layer_env),
        "baseline": (_child(BASELINE_INIT), env),
    }
    try:
        for argv, child_env in children.values():
            _spawn(argv, child_env)
    except RuntimeError as error:  # a half-written or stale build: say so, and keep the other rows
        last_line = str(error).strip().splitlines()[-1]
        print(f"bench: the built layer does not import ({last_line}): skipping its row", file=sys.stderr)
        return
    total: dict[str, list[float]] = {name: [] for name in children}
    order = list(children.items())
    for index in range(LAYER_PAIRS):
        for name, (argv, child_env) in order if index % 2 == 0 else reversed(order):
            total[name].append(_spawn(argv, child_env)[0])
    compiled = sum(1 for path in BUILT_LAYER.rglob("*.pyc"))
    report.add_samples(
        "cold init from the built layer (.aws-sam)",
        total["layer"],
        "ms",
        baseline=total["baseline"],
        note=f"sam build's layer as Lambda loads it; it ships {compiled} .pyc files, so what it lacks is"
        " compiled at every cold start. Baseline: bare boto3 with .pyc, as above",
    )


class StubSQS:
    """Stands in for the SQS client's network call: the only stub in this benchmark."""

    def __init__(self) -> None:
        self.sent = 0

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.sent += 1
        return {"MessageId": "5fea7756-0ea4-451a-a703-a558b933e274", "MD5OfMessageBody": "0" * 32}


@contextlib.contextmanager
def counting_aws_calls() -> Iterator[list[str]]:
    """Every AWS API call any botocore client makes meanwhile (the stub SQS client is not one)."""
    from botocore.client import BaseClient

    calls: list[str] = []
    real = BaseClient._make_api_call

    def counting(self: Any, operation_name: str, api_params: Any) -> Any:
        calls.append(operation_name)
        return real(self, operation_name, api_params)

    BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = real  # type: ignore[method-assign]


def warm(report: Report) -> None:
    import boto3
    from moto import mock_aws
    from tests.factories import DEMO_SECRET, LambdaContext, http_event

    body = order_body(2048)
    event = http_event("demo", body, headers={"x-event-type": "order.created", "idempotency-key": "ord_1001-created"})
    context = LambdaContext(function_name="inqueue-ingress")

    with patched_environ(lambda_env("inqueue-ingress")), mock_aws():
        boto3.client("ssm").put_parameter(Name="/inqueue/demo", Value=DEMO_SECRET, Type="SecureString")
        app = load_function(INGRESS_DIR, "inqueue_bench_ingress_app")
        stub = StubSQS()
        app.ingress = app.Ingress.from_environment(sqs=stub)
        ingress = app.ingress
        handler = app.lambda_handler

        with quiet_stdout():
            first = handler(event, context)  # the first call loads the secret through moto's SSM
            with counting_aws_calls() as aws_calls:
                for _ in range(200):  # warm up
                    handler(event, context)
                    ingress.handle(event, context)
                samples = interleaved(
                    {"handler": lambda: handler(event, context), "handle": lambda: ingress.handle(event, context)},
                    rounds=WARM_ROUNDS,
                    per_round=WARM_PER_ROUND,
                )
                last = handler(event, context)

    for response in (first, last):
        if response["statusCode"] != 202:
            raise RuntimeError(f"the benchmark event was not accepted: {response}")
    if aws_calls:
        raise RuntimeError(
            f"the warm loop called AWS {len(aws_calls)} times ({aws_calls[0]}, ...): a cache did not hold"
        )
    expected = 2 * 200 + 2 * WARM_ROUNDS * WARM_PER_ROUND + 2
    if stub.sent != expected:
        raise RuntimeError(f"expected {expected} SendMessage calls, saw {stub.sent}")

    report.add_samples(
        "warm, lambda_handler per 2 KB event",
        samples["handler"],
        "us",
        goal=150,
        note="app.lambda_handler; SendMessage stubbed, secret from Powertools' cache",
    )
    report.add_samples("warm, Ingress.handle per 2 KB event", samples["handle"], "us")
    report.add(
        "warm, decorators' share",
        statistics.median(samples["handler"]) - statistics.median(samples["handle"]),
        "us",
        note="what app.lambda_handler adds to Ingress.handle: no decorators now (no Lambda context keys in log "
        "lines, no metric line per event: see inqueue/observability.py)",
    )
