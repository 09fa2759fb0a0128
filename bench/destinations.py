"""Destinations: a delivery's cost beyond the app's own time, the rate limit's accuracy across workers, AWS calls.

1. **Overhead.** The app is a trivial HTTP server in another process (keep-alive, no
   Nagle) answering ``200 {"ok":true}``. The baseline, in the same run and interleaved, is a
   bare urllib3 POST of the same bytes over a kept-alive pool: the app's own time and the
   loopback's. Subjects: ``Deliverer.deliver`` (sign, resolve and check the address, build
   the headers, judge the answer), and a worker batch of 10 routed events through
   ``Worker.handle`` against the same batch whose Python processor POSTs the same bytes
   with urllib3 (no records table in either: its calls are network time, counted in 3).
2. **Rate accuracy.** ``events`` queued at once for a destination limited to
   ``rate`` a second, ``workers`` workers (threads, each its own ``Worker``, limiter and
   HTTP client, as Lambda environments are) on moto's in-process SQS and DynamoDB behind
   one lock (moto does not serialise concurrent requests; DynamoDB applies one item's
   writes atomically), each invocation with a 30 s deadline. The app records when each
   request arrives: the achieved rate, the gaps between arrivals, the most in any window
   of one second, and the deferrals, the limiter's writes and every AWS call per delivery.
3. **Calls.** AWS calls by operation and sequential round trips for batches of 10 (every
   call held 50 ms, as in ``bench.calls``): delivered, delivered under a rate limit, all
   deferred. Their cost per million, with ``bench.calls``' prices.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import interleaved, lambda_env, order_body, patched_environ, quiet_stdout
from bench.report import Report

ROUNDS = int(os.environ.get("BENCH_DESTINATIONS_ROUNDS", "200"))
PER_ROUND = 5
BATCH = 10
# (events queued at once, deliveries a second, workers): the accuracy case, then one whose workers
# outnumber what the rate lets them hold in place (2 s of slots), so that deliveries are deferred.
SCENARIOS = (
    (int(os.environ.get("BENCH_DESTINATIONS_EVENTS", "200")), 5, 4),
    (int(os.environ.get("BENCH_DESTINATIONS_DEFERRED_EVENTS", "30")), 1, 6),
)
TABLE = "inqueue-bench-destinations"
SECRET_REF = "ssm:/inqueue/destinations/bench"  # noqa: S105 - a reference, not a secret
SECRET = "whsec_aW5xdWV1ZSBiZW5jaCBkZXN0aW5hdGlvbiBzZWNyZXQh"  # noqa: S105 - a bench-only key
WORKER_MB = 512

APP = r"""
import json, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

seen, lock = [], threading.Lock()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        at = time.time()
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with lock:
            seen.append([at, self.headers.get("webhook-id", "")])
        self._send(b'{"ok":true}')

    def do_GET(self):
        with lock:
            data = json.dumps(seen).encode()
            seen.clear()
        self._send(data)

    def _send(self, data):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextlib.contextmanager
def app_process() -> Iterator[int]:
    """The app, in a process of its own: its port."""
    child = subprocess.Popen([sys.executable, "-c", APP], stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert child.stdout is not None
        yield int(child.stdout.readline())
    finally:
        child.terminate()
        child.wait(10)


def arrivals(port: int) -> list[tuple[float, str]]:
    """When each request arrived at the app since the last call, with its webhook-id."""
    import urllib3

    answer = urllib3.PoolManager().request("GET", f"http://127.0.0.1:{port}/times")
    return sorted((float(at), str(webhook_id)) for at, webhook_id in json.loads(answer.data))


def envelopes(count: int, source: str = "shop", prefix: str = "evt") -> list[Any]:
    from tests.factories import make_envelope

    body = json.loads(order_body(2048))
    return [make_envelope(f"{prefix}-{n:05d}", source=source, type="order.created", body=body) for n in range(count)]


def sqs_event(items: list[Any]) -> dict[str, Any]:
    from tests.factories import sqs_record

    return {"Records": [sqs_record(e.to_json(), message_id=f"msg-{n:04d}") for n, e in enumerate(items)]}


def destinations_config(port: int, **settings: Any) -> str:
    return json.dumps(
        {
            "destinations": {"shop": {"url": f"http://127.0.0.1:{port}/hooks", "secret": SECRET_REF, **settings}},
            "routes": {"shop": "shop"},
        }
    )


def deliverer(config: str, *, dynamodb: Any = None, ssm: Any = None) -> Any:
    from inqueue.destinations import Deliverer, DeliveryLimiter, SafeHttp, parse_config
    from inqueue.secrets import SecretStore

    parsed = parse_config(config)
    limiter = DeliveryLimiter(TABLE, dynamodb) if parsed.needs_store else None
    return Deliverer(parsed, secrets=SecretStore(ssm_client=ssm), http=SafeHttp(allow_loopback=True), limiter=limiter)


def settings(env: dict[str, str] | None = None) -> Any:
    from tests.factories import DLQ_URL, QUEUE_URL

    from inqueue.settings import WorkerSettings

    return WorkerSettings.from_env(
        {"INQUEUE_QUEUE_URL": QUEUE_URL, "INQUEUE_DLQ_URL": DLQ_URL, "INQUEUE_MAX_RECEIVE_COUNT": "5", **(env or {})}
    )


# ---------------------------------------------------------------- 1. overhead


def overhead_rows(report: Report, port: int, ssm: Any) -> None:
    import urllib3
    from tests.factories import LambdaContext

    from inqueue.destinations.payload import delivery_body
    from inqueue.worker import Router, Worker

    [envelope] = envelopes(1)
    body = delivery_body(envelope)
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1)

    def bare_post(data: bytes = body) -> None:
        answer = pool.urlopen("POST", "/hooks", body=data, headers={"content-type": "application/json"})
        if answer.status != 200:
            raise RuntimeError(f"the app answered {answer.status}")

    routed = deliverer(destinations_config(port), ssm=ssm)

    def deliver() -> None:
        routed.deliver(envelope, attempt=1)

    batch = sqs_event(envelopes(BATCH))
    context = LambdaContext(function_name="inqueue-worker")
    processor_router = Router()

    @processor_router.on("shop")
    def post_it(event: Any) -> Any:
        bare_post(delivery_body(event))
        return {"ok": True}

    by_processor = Worker(processor_router, settings())
    by_destination = Worker(Router(), settings(), deliverer=deliverer(destinations_config(port), ssm=ssm))

    def processor_batch() -> None:
        if by_processor.handle(batch, context)["batchItemFailures"]:
            raise RuntimeError("the processor batch failed")

    def routed_batch() -> None:
        if by_destination.handle(batch, context)["batchItemFailures"]:
            raise RuntimeError("the routed batch failed")

    with quiet_stdout():
        for call in (bare_post, deliver, processor_batch, routed_batch):
            for _ in range(20):
                call()
        single = interleaved({"bare": bare_post, "deliver": deliver}, rounds=ROUNDS, per_round=PER_ROUND)
        batches = interleaved(
            {"processor": processor_batch, "routed": routed_batch}, rounds=ROUNDS // 4, per_round=1, per_call=BATCH
        )
    extra = statistics.median(s - b for s, b in zip(single["deliver"], single["bare"], strict=True))
    report.add_samples(
        "Deliverer.deliver, a 2 KB event to an app in another process",
        single["deliver"],
        "us",
        baseline=single["bare"],
        note=f"baseline: a bare urllib3 POST of the same {len(body)} bytes over a kept-alive pool (the app's and "
        f"loopback's own time); overhead {extra:.0f} us a delivery: signing, the address check, headers, judging "
        "the answer",
    )
    per_record = statistics.median(s - b for s, b in zip(batches["routed"], batches["processor"], strict=True))
    report.add_samples(
        "worker, batch of 10 routed events, per delivery",
        batches["routed"],
        "us",
        baseline=batches["processor"],
        note=f"baseline: the same batch whose Python processor POSTs the same bytes with urllib3; {per_record:.0f} "
        "us more a record: routing, the time budget, the delivery's own overhead (above); no records table here",
    )


# ---------------------------------------------------------------- 2. rate accuracy


class Locked:
    """A botocore client whose calls take one lock: moto's in-process backend does not serialise requests."""

    def __init__(self, client: Any, lock: threading.Lock):
        self._client, self._lock = client, lock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or name in ("meta", "exceptions") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


@dataclass
class Calls:
    """Every AWS call the workers' clients make, by operation; the limiter's writes apart."""

    by_operation: collections.Counter[str] = field(default_factory=collections.Counter)
    limiter_writes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event_name: str = "", **_: Any) -> None:
        with self.lock:
            self.by_operation[event_name.rsplit(".", 1)[-1]] += 1

    def _limiter(self, params: Any = None, **_: Any) -> None:
        if str(((params or {}).get("Key") or {}).get("id", {}).get("S", "")).startswith("destination#"):
            with self.lock:
                self.limiter_writes += 1

    def watch(self, client: Any) -> None:
        client.meta.events.register("before-call", self)
        client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", self._limiter)


class Deadline:
    """A Lambda context: ``seconds`` from when the invocation starts."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.aws_request_id = f"bench-{time.monotonic_ns()}"

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def rate_rows(report: Report, port: int, events: int, rate: int, workers: int) -> dict[str, Any]:
    from tests.tables import receive_event, settle

    from inqueue.destinations import SafeHttp, parse_config
    from inqueue.retry import Backoff
    from inqueue.secrets import SecretStore
    from inqueue.status import StatusStore
    from inqueue.worker import Router, Worker
    from inqueue.worker import sqs as worker_sqs
    from inqueue_local.backends import MotoServer

    # moto's server in its own process: its work does not hold this process's GIL while a worker thread is due to
    # send. Its requests are serialised here, as DynamoDB serialises one item's writes.
    backend = MotoServer()
    backend.start()
    try:
        lock = threading.Lock()
        # The workers' own clients, counted; the backend's cached ones set up, play the event source mapping, read.
        raw_sqs, raw_dynamodb = _client(backend, "sqs"), _client(backend, "dynamodb")
        queue_url, dlq_url, ssm = _stack(backend)
        calls = Calls()
        for counted in (raw_sqs, raw_dynamodb):
            calls.watch(counted)
        sqs, dynamodb = Locked(raw_sqs, lock), Locked(raw_dynamodb, lock)
        harness = Locked(backend.client("sqs"), lock)  # the event source mapping's receives and deletes: not counted
        _queue(harness, queue_url, events)
        env = {"INQUEUE_STATUS_TABLE": TABLE, "INQUEUE_QUEUE_URL": queue_url, "INQUEUE_DLQ_URL": dlq_url}
        config = parse_config(destinations_config(port, rate=rate, timeout=5))
        slots: dict[str, float] = {}
        done = threading.Event()
        invocations = collections.Counter[str]()
        RecordingDeliverer, Recording = _recorders(slots)  # noqa: N806 - classes

        def work(name: str) -> None:
            routed = RecordingDeliverer(
                config, secrets=SecretStore(ssm_client=Locked(ssm, lock)), http=SafeHttp(allow_loopback=True),
                limiter=Recording(TABLE, dynamodb),
            )  # fmt: skip
            worker = Worker(
                Router(), settings(env), store=StatusStore(TABLE, dynamodb),
                queues=worker_sqs.Queues(queue_url, dlq_url, sqs), backoff=Backoff(10, 300), deliverer=routed,
            )  # fmt: skip
            while not done.is_set():
                event = receive_event(harness, queue_url)
                if not event["Records"]:
                    time.sleep(0.05)
                    continue
                invocations[name] += 1
                settle(harness, queue_url, event, worker.handle(event, Deadline(30)))

        threads = [threading.Thread(target=work, args=(f"w{n}",), daemon=True) for n in range(workers)]
        started = time.monotonic()
        with quiet_stdout():
            for thread in threads:
                thread.start()
            seen: list[tuple[float, str]] = []
            while len(seen) < events and time.monotonic() - started < 6 * events / rate:
                time.sleep(1.0)
                seen += arrivals(port)
            done.set()
            for thread in threads:
                thread.join(60)
        deferrals = _deferrals(backend.client("dynamodb"))
    finally:
        backend.stop()
    late = sorted((at - slots[webhook_id]) * 1000 for at, webhook_id in seen if webhook_id in slots)
    return _rate_report(
        report, f"rate limit {rate}/s, {events} events queued at once, {workers} workers", rate, sorted(slots.values()),
        sorted(at for at, _ in seen), calls, late, deferrals=deferrals, invocations=sum(invocations.values()),
    )  # fmt: skip


def _rate_report(  # noqa: PLR0917 - one row set, its figures
    report: Report,
    case: str,
    rate: int,
    slots: list[float],
    seen: list[float],
    calls: Calls,
    late: list[float],
    *,
    deferrals: int,
    invocations: int,
) -> dict[str, Any]:
    delivered = max(len(seen), 1)
    by_slot, by_arrival = _spacing(slots), _spacing(seen)
    report.add(
        f"{case}: achieved rate (slots)",
        by_slot["rate"],
        "/s",
        baseline=float(rate),
        goal=float(rate) * 1.001,
        note=f"{len(slots)} slots reserved for {len(seen)} deliveries over {by_slot['span']:.1f} s; gaps between "
        f"slots: median {by_slot['median']:.1f} ms, min {by_slot['min']:.1f} ms, max {by_slot['max']:.1f} ms; most "
        f"in any 1 s window {by_slot['window']} (goal: never faster than {rate}/s)",
    )
    report.add(
        f"{case}: achieved rate at the app (arrivals)",
        by_arrival["rate"],
        "/s",
        baseline=float(rate),
        note=f"gaps between arrivals: median {by_arrival['median']:.0f} ms, p5 {by_arrival['p5']:.0f} ms, p95 "
        f"{by_arrival['p95']:.0f} ms, min {by_arrival['min']:.0f} ms, max {by_arrival['max']:.0f} ms; most in any "
        f"1 s window {by_arrival['window']}: a send leaves at its slot or after it, never before; arrival less slot "
        f"{_percentiles(late)} (a thread's late wake-up with every worker and the app on this machine's 2 shared "
        "cores), so arrivals carry that jitter",
    )
    per_delivery = {op: n / delivered for op, n in sorted(calls.by_operation.items())}
    report.add(
        f"{case}: AWS calls per delivered event (every call the workers made)",
        sum(per_delivery.values()),
        "",
        note=", ".join(f"{op} {n:.2f}" for op, n in per_delivery.items())
        + f"; of them the limiter's writes {calls.limiter_writes / delivered:.3f} a delivery; deferrals {deferrals} "
        f"({deferrals / delivered:.2f} a delivery); {invocations} invocations; plus the event source "
        "mapping's ReceiveMessage and DeleteMessageBatch per batch",
    )
    return {
        "deferrals_per_delivery": deferrals / delivered,
        "limiter_writes_per_delivery": calls.limiter_writes / delivered,
        "calls": per_delivery,
        "slots": by_slot,
        "arrivals": by_arrival,
        "late_ms": _percentiles(late),
    }


def _recorders(slots: dict[str, float]) -> tuple[Any, Any]:
    """A deliverer and a limiter that note the slot each event's delivery reserved, in ``slots``."""
    from inqueue.destinations import Deliverer, DeliveryLimiter, Permit

    delivering = threading.local()

    class RecordingDeliverer(Deliverer):
        def deliver(self, envelope: Any, *args: Any, **kwargs: Any) -> Any:
            delivering.event_id = envelope.id
            return super().deliver(envelope, *args, **kwargs)

    class Recording(DeliveryLimiter):
        def acquire(self, destination: Any, *, max_wait: float) -> Permit:
            permit = super().acquire(destination, max_wait=max_wait)
            slots[delivering.event_id] = permit.send_at
            return permit

    return RecordingDeliverer, Recording


def _queue(sqs: Any, queue_url: str, events: int) -> None:
    for start in range(0, events, 10):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "MessageBody": e.to_json(), "MessageAttributes": e.message_attributes()}
                for n, e in enumerate(envelopes(min(10, events - start), prefix=f"rate-{start}"))
            ],
        )


def _deferrals(dynamodb: Any) -> int:
    """The events' deferrals, as their records count them."""
    items = dynamodb.scan(TableName=TABLE)["Items"]
    return sum(int(item.get("deferrals", {}).get("N", "0")) for item in items if item["id"]["S"].startswith("rate-"))


def _client(backend: Any, service: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=backend.region,
        endpoint_url=backend.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's
    )


def _stack(backend: Any) -> tuple[str, str, Any]:
    from tests.tables import create_queues

    queue_url, dlq_url = create_queues(backend.client("sqs"), name="inqueue-bench-rate", max_receives=5)
    backend.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ssm = backend.client("ssm")
    ssm.put_parameter(Name=SECRET_REF.removeprefix("ssm:"), Value=SECRET, Type="SecureString")
    return queue_url, dlq_url, ssm


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    quantiles = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {quantiles[49]:.1f} ms, p95 {quantiles[94]:.1f} ms, max {max(values):.0f} ms, min {min(values):.1f} ms"


def _spacing(times: list[float]) -> dict[str, float]:
    """Rate, gaps (ms) and the most in any window of one second, of sorted times."""
    if len(times) < 3:
        return {"rate": 0.0, "span": 0.0, "median": 0.0, "p5": 0.0, "p95": 0.0, "min": 0.0, "max": 0.0, "window": 0}
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    quantiles = statistics.quantiles(gaps, n=20)
    window = max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))
    return {
        "rate": (len(times) - 1) / (times[-1] - times[0]),
        "span": times[-1] - times[0],
        "median": statistics.median(gaps),
        "p5": quantiles[0],
        "p95": quantiles[18],
        "min": min(gaps),
        "max": max(gaps),
        "window": window,
    }


# ---------------------------------------------------------------- 3. calls and round trips


def calls_rows(report: Report, port: int) -> dict[str, Any]:
    import boto3
    from tests.factories import LambdaContext
    from tests.tables import create_queues, receive_event

    from bench.calls import measure
    from inqueue.destinations.ratelimit import rate_key
    from inqueue.retry import Backoff
    from inqueue.status import StatusStore
    from inqueue.worker import Router, Worker
    from inqueue.worker.sqs import Queues

    sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
    queue_url, dlq_url = create_queues(sqs, name="inqueue-bench-calls", max_receives=5)
    env = {"INQUEUE_STATUS_TABLE": TABLE, "INQUEUE_QUEUE_URL": queue_url, "INQUEUE_DLQ_URL": dlq_url}
    ids = iter(range(10**9))

    def worker(config: str) -> Any:
        return Worker(
            Router(), settings(env), store=StatusStore(TABLE, dynamodb), queues=Queues(queue_url, dlq_url, sqs),
            backoff=Backoff(10, 300), deliverer=deliverer(config, dynamodb=dynamodb),
        )  # fmt: skip

    def prepare() -> dict[str, Any]:
        items = envelopes(BATCH, prefix=f"calls-{next(ids)}")
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "MessageBody": e.to_json(), "MessageAttributes": e.message_attributes()}
                for n, e in enumerate(items)
            ],
        )
        return receive_event(sqs, queue_url)

    def settle(event: dict[str, Any]) -> None:
        """Delete the batch and every copy it left: each run starts from an empty queue."""
        for record in event["Records"]:
            with contextlib.suppress(Exception):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])
        _drain(sqs, queue_url)

    def run_with(subject: Any) -> Callable[[dict[str, Any]], None]:
        def run(event: dict[str, Any]) -> None:
            subject.handle(event, LambdaContext(function_name="inqueue-worker"))

        return run

    def full(_: Any = None) -> None:
        dynamodb.put_item(
            TableName=TABLE,
            Item={"id": {"S": rate_key("shop")}, "tat": {"N": f"{time.time() + 86_400:.6f}"}},
        )

    plain = worker(destinations_config(port))
    limited = worker(destinations_config(port, rate=500))
    deferring = worker(destinations_config(port, rate=1))
    for subject in (plain, limited, deferring):  # the secret read once, as a warm container has it
        subject.forwarding.deliverer.secrets.get(SECRET_REF)
    with quiet_stdout():
        figures = {
            "delivered": measure(prepare, run_with(plain), settle),
            "rate": measure(prepare, run_with(limited), settle),
        }
        full()
        figures["deferred"] = measure(prepare, run_with(deferring), settle)
    dynamodb.delete_item(TableName=TABLE, Key={"id": {"S": rate_key("shop")}})
    arrivals(port)
    labels = {
        "delivered": "batch of 10 delivered",
        "rate": "batch of 10 delivered under a rate limit",
        "deferred": "batch of 10 all deferred (rate full)",
    }
    for key, label in labels.items():
        m = figures[key]
        report.add(
            f"calls, {label}: AWS calls per record",
            m.calls_per_run() / BATCH,
            "",
            note=f"{m.describe()} a batch; {m.round_trips:g} sequential round trips a batch (every call held 50 ms)",
        )
    return {key: m.per_run() for key, m in figures.items()} | {
        "round_trips": {key: m.round_trips for key, m in figures.items()}
    }


def _drain(sqs: Any, queue_url: str) -> None:
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )


# ---------------------------------------------------------------- cost


def cost_rows(report: Report, calls: dict[str, Any]) -> None:
    from bench.calls import price

    wru = price("dynamodb_wru_per_million")
    sqs = price("sqs_standard_per_million")
    limiter = calls["rate"].get("UpdateItem", 0) / BATCH - calls["delivered"].get("UpdateItem", 0) / BATCH
    report.add(
        "cost per million deliveries, a rate limit's writes ($, added)",
        limiter * wru,
        "",
        note=f"{limiter:.2f} writes a delivery (1 WRU each); a concurrency limit adds 2 more ($1.25); the app's "
        "own time is the worker's: every 100 ms of it costs "
        f"${price('lambda_arm_gb_second') * 1e6 * WORKER_MB / 1024 * 0.1:.2f} per million at {WORKER_MB} MB",
    )
    deferred = calls["deferred"]
    per = {op: n / BATCH for op, n in deferred.items()}
    # SendMessageBatch (the copies) and the event source mapping's ReceiveMessage and DeleteMessageBatch, per batch.
    sqs_requests = per.get("SendMessageBatch", 0) + 2 / BATCH
    cost = per.get("UpdateItem", 0) * wru + sqs_requests * sqs + price("lambda_request_per_million") / BATCH
    report.add(
        "cost per million deferrals ($)",
        cost,
        "",
        note=f"UpdateItem {per.get('UpdateItem', 0):.2f} (claim, deferral, the limiter's), SQS {sqs_requests:.2f} "
        "requests (the copy's SendMessageBatch share, the trigger's receive and delete), a tenth of an invocation",
    )


def run(report: Report) -> None:
    import boto3
    from moto import mock_aws

    from bench.calls import WIRE

    WIRE.install()  # before the first client: botocore copies its handlers into each new session

    env = {**lambda_env("inqueue-worker"), "POWERTOOLS_TRACE_DISABLED": "true", "INQUEUE_TRACING_MODE": "Disabled"}
    with patched_environ(env), mock_aws(), app_process() as port:
        ssm = boto3.client("ssm")
        ssm.put_parameter(Name=SECRET_REF.removeprefix("ssm:"), Value=SECRET, Type="SecureString")
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        overhead_rows(report, port, ssm)
        calls = calls_rows(report, port)
        cost_rows(report, calls)
        rates = [rate_rows(report, port, *scenario) for scenario in SCENARIOS]
    Path(os.environ.get("BENCH_DESTINATIONS_JSON", os.devnull)).write_text(json.dumps({"calls": calls, "rate": rates}))


if __name__ == "__main__":
    report = Report(section="destinations")
    run(report)
    print(report.render())
