"""The local pipeline's figures: throughput against the backend's own rate, latency, a 2,000-event burst.

``run(report)`` adds rows to the bench harness's table (``python -m bench``); ``python -m
bench.pipeline`` prints them alone. For each backend available here:

* raw backend rate: SQS used exactly as the pipeline uses it, with the same concurrency:
  8 senders (the HTTP clients' ingress invocations) sending one message per call, and the
  mapping's pollers (MaximumConcurrency, 5) receiving up to BatchSize (10) with long
  polling (WaitTimeSeconds=1) and deleting with DeleteMessageBatch (messages/s);
* pipeline rate: distinct events (each post its own delivery id, so none is a duplicate)
  posted over HTTP by 8 clients through ingress, SQS and worker, shown as time per event
  against the raw loop's time per message (goal <= 2.0x). Raw and pipeline are measured
  in interleaved rounds and the ratio is the median of the rounds' ratios, so load that
  drifts across the run (other processes on the machine) cancels out;
* backend calls per event: every AWS call the pipeline made (ingress, worker, pollers), as
  moto's server counted them (the functions run in their own processes; not shown for LocalStack),
  per event, next to the raw loop's. The raw loop is SQS only, while each event also
  costs the ingress its queued write and the worker its claim and completion;
  the note gives the ratio per backend call too, which is what the runner itself adds;
* accept -> processed latency, batching window 0, one event at a time: p50 (goal <= 50 ms), p99;
* a burst of 2,000 distinct events posted as fast as 16 clients can: time until all are
  processed (goal <= 20 s).

The functions run in the local runner's runtime: a child process per execution environment.

Backends: moto's embedded server, and LocalStack in host mode when this machine can run it
(``inqueue_local.localstack.available()``: installed, or a Python 3.13/3.12 to install it with,
once, into .tools/localstack). Each backend's raw rate is measured in the same run as its
pipeline rate, so the ratio holds on a loaded machine even when the absolute figures do not.
"""

from __future__ import annotations

import collections
import http.client
import itertools
import json
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import Report
from inqueue_local.backends import Backend, MotoServer
from inqueue_local.motoserver import CALLS_PATH
from inqueue_local.pipeline import Log
from inqueue_local.runner import Runner
from inqueue_local.template import Template

ROOT = Path(__file__).resolve().parent.parent
RAW_MESSAGES = 400
PIPELINE_RATIO_GOAL = 2.0
BURST_GOAL_SECONDS = 20.0
PIPELINE_EVENTS = 250
ROUNDS = 3
SENDERS = 8
LATENCY_EVENTS = 150
BURST_EVENTS = 2000


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


def _example() -> tuple[bytes, dict[str, str]]:
    event = json.loads((ROOT / "events" / "apigw-demo-json.json").read_text())
    keep = ("content-type", "x-signature", "x-event-type", "idempotency-key")
    return event["body"].encode(), {k: v for k, v in event["headers"].items() if k in keep}


_DELIVERIES = itertools.count()


def _distinct(headers: dict[str, str]) -> dict[str, str]:
    """The example's headers with a delivery id of its own: a new event, not a sender's retry of the example.

    The demo source takes its delivery id from ``Idempotency-Key``, which its HMAC does not cover.
    """
    return {**headers, "idempotency-key": f"bench-{time.time_ns()}-{next(_DELIVERIES)}"}


class _Calls:
    """The AWS calls moto's server answered, by service: the functions run in their own processes, so
    their calls are counted where they arrive (``motoserver.count_calls``). None for other backends."""

    def __init__(self, backend: Backend):
        self.url = f"{backend.endpoint_url}{CALLS_PATH}" if isinstance(backend, MotoServer) else None

    def snapshot(self) -> collections.Counter[str] | None:
        if self.url is None:
            return None
        with urllib.request.urlopen(self.url, timeout=10) as answer:  # noqa: S310 - loopback
            return collections.Counter(json.loads(answer.read()))


def raw_rate(backend: Backend, messages: int, senders: int, pollers: int, batch: int) -> float:
    """Messages/s through SQS alone, used as the pipeline uses it: same calls, same concurrency."""
    sqs = backend.client("sqs")
    url = sqs.create_queue(QueueName=f"bench-raw-{time.time_ns()}")["QueueUrl"]
    body = _example()[0].decode() * 3  # about an envelope's size
    to_send = iter(range(messages))
    lock = threading.Lock()
    received = [0]
    done = threading.Event()
    deadline = time.monotonic() + 120

    def send() -> None:
        while time.monotonic() < deadline:
            with lock:
                if next(to_send, None) is None:
                    return
            sqs.send_message(QueueUrl=url, MessageBody=body)

    def poll() -> None:
        while not done.is_set() and time.monotonic() < deadline:
            got = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=batch, WaitTimeSeconds=1,
                AttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", [])  # fmt: skip
            if not got:
                continue
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            )
            with lock:
                received[0] += len(got)
                if received[0] >= messages:
                    done.set()

    threads = [threading.Thread(target=send) for _ in range(senders)] + [
        threading.Thread(target=poll) for _ in range(pollers)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    done.wait(max(0.0, deadline - time.monotonic()))
    took = time.perf_counter() - started
    done.set()
    for thread in threads:
        thread.join()
    sqs.delete_queue(QueueUrl=url)
    return received[0] / took


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
            connection.request("POST", "/hooks/demo", body=body, headers=_distinct(headers))
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


def measure(make_backend: Callable[[], Backend]) -> dict[str, Any]:
    counter = _Counter()
    template = Template.load(ROOT / "infra" / "template.yaml")
    runner = Runner(template, make_backend(), port=0, config_dir=ROOT / "config", log=Log(write=counter))
    figures: dict[str, Any] = {"raw": [], "pipeline": [], "calls": collections.Counter(), "raw_calls": 0.0}
    url = runner.start()
    calls = _Calls(runner.backend)
    figures["counted"] = calls.url is not None
    try:
        assert runner.pipeline is not None
        source = next(s for s in template.sqs_sources() if s.enabled)
        pollers, batch = runner.pipeline.poller_count(source), min(10, source.batch_size)
        # warm every ingress environment first: cold starts are the bench's other section
        _post_many(url, 40, SENDERS)
        counter.wait_for(40, 30)
        for _ in range(ROUNDS):
            before = calls.snapshot()
            figures["raw"].append(raw_rate(runner.backend, RAW_MESSAGES, SENDERS, pollers, batch))
            after = calls.snapshot()
            if before is not None and after is not None:
                figures["raw_calls"] += sum((after - before).values()) / (ROUNDS * RAW_MESSAGES)
            before = calls.snapshot()
            base = counter.deleted
            started = time.perf_counter()
            _post_many(url, PIPELINE_EVENTS, SENDERS)
            counter.wait_for(base + PIPELINE_EVENTS, 120)
            figures["pipeline"].append(PIPELINE_EVENTS / (counter.last_at - started))
            after = calls.snapshot()
            if before is not None and after is not None:
                figures["calls"].update(after - before)
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
        connection.request("POST", "/hooks/demo", body=body, headers=_distinct(headers))
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


def run(report: Report) -> None:
    for name, make in backends().items():
        figures = measure(make)
        rates, raws = figures["pipeline"], figures["raw"]
        ratios = [p / r for p, r in zip(rates, raws, strict=True)]
        calls: collections.Counter[str] = figures["calls"]
        per_event = sum(calls.values()) / (ROUNDS * PIPELINE_EVENTS)
        by_service = ", ".join(f"{service} {n / (ROUNDS * PIPELINE_EVENTS):.1f}" for service, n in calls.most_common())
        per_call = statistics.median(ratios) * per_event / figures["raw_calls"] if figures["counted"] else None
        note = (
            f"{statistics.median(rates):.0f} events/s vs the backend's {statistics.median(raws):.0f} msg/s "
            f"send+receive+delete (same calls and concurrency): ratio {statistics.median(ratios):.2f} "
            f"(rounds {', '.join(f'{r:.2f}' for r in ratios)}); distinct events"
            + (f"; per backend call {per_call:.2f}" if per_call is not None else "")
        )
        per_event_ms = [1000 / r for r in rates]
        per_message_ms = [1000 / r for r in raws]
        title = f"pipeline ({name}): time per event through HTTP, ingress, SQS, worker"
        if hasattr(report, "add_samples"):
            report.add_samples(
                title, per_event_ms, "ms", baseline=per_message_ms, ratio_goal=PIPELINE_RATIO_GOAL, note=note
            )
        else:
            report.add(
                title, statistics.median(per_event_ms), "ms", baseline=statistics.median(per_message_ms),
                ratio_goal=PIPELINE_RATIO_GOAL, note=note,
            )  # fmt: skip
        if figures["counted"]:  # counted by moto's server (the functions' calls arrive there, not here)
            report.add(
                f"pipeline ({name}): backend calls per event", per_event, "",
                note=f"{by_service}; the raw loop makes {figures['raw_calls']:.1f} per message",
            )  # fmt: skip
        report.add(f"pipeline ({name}): post -> processed p50, window 0", figures["p50"], "ms", goal=50.0)
        report.add(f"pipeline ({name}): post -> processed p99, window 0", figures["p99"], "ms")
        report.add(
            f"pipeline ({name}): burst {BURST_EVENTS}: seconds to fully processed",
            figures["burst"],
            "s",
            goal=BURST_GOAL_SECONDS,
        )


if __name__ == "__main__":
    report = Report()
    run(report)
    print(report.render())
