"""The local pipeline's figures: throughput against the backend's own rate, latency, a 2,000-event burst.

``run(report)`` adds rows to the bench harness's table (``python -m bench``); ``python -m
bench.pipeline`` prints them alone. For each backend available here:

* raw backend rate: send one message at a time, receive and delete in tens, as the
  pipeline does, at low depth (events/s);
* pipeline rate: events posted over HTTP by 8 clients through ingress, SQS and worker
  (events/s), as a ratio to the raw rate (goal >= 0.6, shown as time per event so that
  lower is better like every other row: goal ratio <= 1/0.6);
* accept -> processed latency, batching window 0, one event at a time: p50 (goal <= 50 ms), p99;
* a burst of 2,000 events posted as fast as 16 clients can: time until all are processed (goal <= 60 s).

Backends: moto's embedded server, and LocalStack in host mode when this machine can run it
(``inqueue_local.localstack.available()``: installed, or a Python 3.13/3.12 to install it with,
once, into .tools/localstack). Each backend's raw rate is measured in the same run as its
pipeline rate, so the ratio holds on a loaded machine even when the absolute figures do not.
"""

from __future__ import annotations

import http.client
import io
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from inqueue_local.backends import Backend, MotoServer
from inqueue_local.functions import install_prefixed_output
from inqueue_local.pipeline import Log
from inqueue_local.runner import Runner
from inqueue_local.template import Template

ROOT = Path(__file__).resolve().parent.parent
RAW_MESSAGES = 1000
PIPELINE_EVENTS = 1000
LATENCY_EVENTS = 200
BURST_EVENTS = 2000


class _Report(Protocol):
    def add(
        self,
        name: str,
        value: float,
        unit: str,
        baseline: float | None = None,
        ratio_goal: float | None = None,
        **kw: Any,
    ) -> Any: ...


class _Counter:
    """Counts records the worker deleted, from the runner's batch lines."""

    def __init__(self) -> None:
        self.deleted = 0
        self.changed = threading.Condition()
        self.last_at = 0.0

    def __call__(self, line: str) -> None:
        marker = "-> ok: deleted "
        if marker in line:
            count = int(line.split(marker, 1)[1].split(",", 1)[0])
            with self.changed:
                self.deleted += count
                self.last_at = time.perf_counter()
                self.changed.notify_all()

    def wait_for(self, total: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.deleted < total:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True


@contextmanager
def _quiet() -> Iterator[None]:
    """Handler logs go nowhere during a measurement (printing 10,000 lines would be the measurement)."""
    install_prefixed_output()
    stream: Any = sys.stdout
    saved = stream.target
    stream.target = io.StringIO()
    try:
        yield
    finally:
        stream.target = saved


def _example() -> tuple[bytes, dict[str, str]]:
    event = json.loads((ROOT / "events" / "apigw-demo-json.json").read_text())
    keep = ("content-type", "x-signature", "x-event-type", "idempotency-key")
    return event["body"].encode(), {k: v for k, v in event["headers"].items() if k in keep}


def raw_rate(backend: Backend) -> float:
    """Messages/s for send one + receive ten + delete ten, the pipeline's own pattern, at low depth."""
    sqs = backend.client("sqs")
    url = sqs.create_queue(QueueName=f"bench-raw-{time.time_ns()}")["QueueUrl"]
    body = _example()[0].decode() * 3  # about an envelope's size
    started = time.perf_counter()
    done = 0
    while done < RAW_MESSAGES:
        for _ in range(10):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if messages:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        done += len(messages)
    return done / (time.perf_counter() - started)


def _post_many(url: str, count: int, clients: int) -> None:
    body, headers = _example()
    host, port = url.removeprefix("http://").split(":")
    left = iter(range(count))
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        while True:
            with lock:
                if next(left, None) is None:
                    break
            connection.request("POST", "/hooks/demo", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                raise RuntimeError(f"posting failed: {response.status}")
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def measure(make_backend: Callable[[], Backend]) -> dict[str, float]:
    counter = _Counter()
    runner = Runner(
        Template.load(ROOT / "infra" / "template.yaml"),
        make_backend(),
        port=0,
        config_dir=ROOT / "config",
        log=Log(write=counter),
    )
    figures: dict[str, float] = {}
    with _quiet():
        url = runner.start()
        try:
            figures["raw"] = raw_rate(runner.backend)
            # warm every ingress container first: cold starts are the bench's other section
            _post_many(url, 40, 8)
            counter.wait_for(40, 30)
            base = counter.deleted
            started = time.perf_counter()
            _post_many(url, PIPELINE_EVENTS, 8)
            counter.wait_for(base + PIPELINE_EVENTS, 120)
            figures["pipeline"] = PIPELINE_EVENTS / (counter.last_at - started)
            figures.update(_latency(url, counter))
            base = counter.deleted
            started = time.perf_counter()
            _post_many(url, BURST_EVENTS, 16)
            finished = counter.wait_for(base + BURST_EVENTS, 120)
            figures["burst"] = (counter.last_at - started) if finished else float("inf")
        finally:
            runner.stop()
    return figures


def _latency(url: str, counter: _Counter) -> dict[str, float]:
    body, headers = _example()
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    samples = []
    for _ in range(LATENCY_EVENTS):
        before = counter.deleted
        # Measured from the request's start: the worker often finishes before the 202 reaches the client.
        posted = time.perf_counter()
        connection.request("POST", "/hooks/demo", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        counter.wait_for(before + 1, 10)
        samples.append((counter.last_at - posted) * 1000)
    connection.close()
    quantiles = statistics.quantiles(samples, n=100)
    return {"p50": statistics.median(samples), "p99": quantiles[98]}


def backends() -> dict[str, Callable[[], Backend]]:
    found: dict[str, Callable[[], Backend]] = {"moto": MotoServer}
    try:
        from inqueue_local.localstack import LocalStack, available

        if available():
            found["localstack"] = lambda: LocalStack(root=ROOT / ".local" / "localstack")
    except ImportError:
        pass
    return found


def run(report: _Report) -> None:
    for name, make in backends().items():
        figures = measure(make)
        rate, raw = figures["pipeline"], figures["raw"]
        report.add(
            f"pipeline ({name}): time per event through HTTP, ingress, SQS, worker", 1000 / rate, "ms",
            baseline=1000 / raw, ratio_goal=1 / 0.6,
            note=(
                f"{rate:.0f} events/s vs the backend's {raw:.0f} msg/s send+receive+delete: "
                f"ratio {rate / raw:.2f} (goal >= 0.6)"
            ),
        )  # fmt: skip
        report.add(f"pipeline ({name}): post -> processed p50, window 0", figures["p50"], "ms", goal=50.0)
        report.add(f"pipeline ({name}): post -> processed p99, window 0", figures["p99"], "ms")
        report.add(
            f"pipeline ({name}): burst of {BURST_EVENTS} events fully processed", figures["burst"], "s", goal=60.0
        )


class _PrintReport:
    def add(
        self,
        name: str,
        value: float,
        unit: str,
        baseline: float | None = None,
        ratio_goal: float | None = None,
        **kw: Any,
    ) -> None:
        goal = kw.get("goal")
        ratio = f"  ratio {value / baseline:.2f} (goal <= {ratio_goal:.2f})" if baseline and ratio_goal else ""
        target = f"  goal <= {goal:g} {unit}" if goal is not None else ""
        note = f"  [{kw['note']}]" if kw.get("note") else ""
        print(f"{name:<72} {value:>9.2f} {unit:<3}{ratio}{target}{note}")


if __name__ == "__main__":
    try:
        from bench.report import Report  # type: ignore[import-not-found]
    except ImportError:
        run(_PrintReport())
    else:
        report = Report()
        run(report)
        print(report.render() if hasattr(report, "render") else report)
