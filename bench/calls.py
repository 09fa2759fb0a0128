"""AWS calls, sequential round trips and cost per event, each against its floor, through the real handlers.

The functions' ``app.py`` run as Lambda runs them, on moto's in-process AWS (so conditional
writes, visibility and redrive behave as DynamoDB and SQS do, and no socket is opened).
Every botocore call is counted by operation and held for ``DELAY_MS`` in a ``before-send``
handler that stands for an in-region round trip. A scenario's sequential round trips are the
longest chain of its calls each sent after the one before it was answered (calls in flight
together are one round trip): a count made of sleeps, not of this machine's speed, so it
holds on a busy machine. Its CPU is measured in runs without the delay: this process's CPU
time less what moto spent answering.
Each figure's floor is measured the same way in the same run: the fewest calls the
guarantee can be had with, made directly (one SendMessage; rounds of concurrent UpdateItems).

Scenarios, batch of 10 (the template's WorkerBatchSize):

* ingress: one signed 2 KB event per request, with the queued record (the default) and
  without it (QueuedStatus=false);
* worker: 10 new events that succeed; 10 of which one fails; the same 10 delivered again
  (a duplicate batch); and the route not taken, Powertools' idempotency over a persistence
  layer of our own writing the same record (``bench/powertools_route.py``).

The cost rows price those counts with the list prices in ``PRICES`` (us-east-1, with where
each came from), item sizes read back from the table, log bytes captured from the handlers'
own output, and Lambda time modelled as round trips x ``RTT_MS`` plus the handler's CPU
here scaled to the function's share of a vCPU.

The console's rows (issue 12): writes to the recent-events index per event, counted by
DynamoDB's documented rule (a table write costs an index write when it creates, changes or
removes what the index holds: a key or a projected attribute; moto keeps the index but does
not bill it), read from moto's model around every DynamoDB write the handlers make; the
envelope archive's calls, round trips and item size; a console page view's reads.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    INGRESS_DIR,
    ROOT,
    WORKER_DIR,
    lambda_env,
    load_function,
    order_body,
    patched_environ,
    quiet_stdout,
)
from bench.report import Report

DELAY_MS = 50.0  # held per call: longer than preparing a round of 10 calls on a busy machine, so they overlap
RTT_MS = 5.0  # what the cost model charges per sequential round trip (the in-region figure)
RUNS = int(os.environ.get("BENCH_CALLS_RUNS", "9"))
BATCH = 10
STATUS_TABLE = "inqueue-bench-records"
LAMBDA_FULL_VCPU_MB = 1769  # Lambda gives a function one vCPU at 1,769 MB, a share of one below
INGRESS_MB, WORKER_MB = 256, 512  # infra/template.yaml
# Lambda's START, END and REPORT lines for one invocation (text format), as CloudWatch stores them.
PLATFORM_LINES = (
    "START RequestId: 8f507cfc-a16e-4697-b07a-ac58fc914c95 Version: $LATEST\n"
    "END RequestId: 8f507cfc-a16e-4697-b07a-ac58fc914c95\n"
    "REPORT RequestId: 8f507cfc-a16e-4697-b07a-ac58fc914c95\tDuration: 12.16 ms\tBilled Duration: 13 ms\t"
    "Memory Size: 256 MB\tMax Memory Used: 78 MB\t\n"
)

# us-east-1 list prices, read 2026-12-01 (the search tool's copies of the pages named).
PRICES: dict[str, tuple[float, str]] = {
    "api_gateway_http_per_million": (1.00, "aws.amazon.com/api-gateway/pricing: HTTP API, first 300 M requests/month"),
    "lambda_request_per_million": (0.20, "aws.amazon.com/lambda/pricing"),
    "lambda_arm_gb_second": (0.0000133334, "aws.amazon.com/lambda/pricing: arm64, first 7.5 B GB-s/month"),
    "sqs_standard_per_million": (
        0.40,
        "aws.amazon.com/sqs/pricing: standard queue, per 64 KB chunk (cloudburn.io, 2026-03)",
    ),
    "dynamodb_wru_per_million": (
        0.625,
        "aws.amazon.com/dynamodb/pricing/on-demand: since the 2024-11 cut (airbyte.com)",
    ),
    "dynamodb_storage_gb_month": (0.25, "aws.amazon.com/dynamodb/pricing/on-demand"),
    "dynamodb_pitr_gb_month": (0.20, "aws.amazon.com/dynamodb/pricing/on-demand: continuous backups"),
    "cloudwatch_logs_ingest_gb": (0.50, "aws.amazon.com/cloudwatch/pricing: standard log class (c3x.dev, 2026-06)"),
    "xray_traces_recorded_per_million": (5.00, "aws.amazon.com/xray/pricing"),
    "dynamodb_rru_per_million": (
        0.125,
        "aws.amazon.com/dynamodb/pricing/on-demand: read request units, since the 2024-11 cut (airbyte.com)",
    ),
    "s3_put_per_million": (5.00, "aws.amazon.com/s3/pricing: S3 Standard PUT, $0.005 per 1,000 (cloudkaramchari.com)"),
    "s3_storage_gb_month": (0.023, "aws.amazon.com/s3/pricing: S3 Standard, first 50 TB (deepeshsoni.com)"),
}


def price(name: str) -> float:
    return PRICES[name][0]


# ---------------------------------------------------------------- the wire: counts and delay


class Wire:
    """Handlers on every botocore client of this process: a call is counted by operation and held for the
    delay (the stand-in round trip, its interval recorded), and moto's own work on it is timed apart."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.counting = False
        self.calls: collections.Counter[str] = collections.Counter()
        self.sent: list[tuple[float, float]] = []  # when each call's round trip started and ended
        self.moto_cpu = 0.0  # CPU seconds moto spent answering, in whichever thread
        self._lock = threading.Lock()

    def __call__(self, event_name: str = "", **_: Any) -> None:
        started = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        if self.counting:
            with self._lock:
                self.calls[event_name.rsplit(".", 1)[-1]] += 1
                self.sent.append((started, time.perf_counter()))

    def install(self) -> None:
        """Put the handlers where botocore keeps those every new session registers: the round trip first
        (so a call's wait never queues behind moto's work in another thread), moto's stubber timed."""
        from botocore.handlers import BUILTIN_HANDLERS

        for index, entry in enumerate(BUILTIN_HANDLERS):
            if entry[0] == "before-send":
                BUILTIN_HANDLERS[index] = (entry[0], self._timed(entry[1]), *entry[2:])
        BUILTIN_HANDLERS.insert(0, ("before-send", self))

    def _timed(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        def timed(**kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return handler(**kwargs)
            finally:
                spent = time.thread_time() - started
                with self._lock:
                    self.moto_cpu += spent

        return timed

    @contextlib.contextmanager
    def measured(self, delay: float) -> Iterator[Wire]:
        with self._lock:
            self.calls, self.sent, self.moto_cpu = collections.Counter(), [], 0.0
        self.delay, self.counting = delay, True
        try:
            yield self
        finally:
            self.delay, self.counting = 0.0, False

    def round_trips(self) -> int:
        """The longest chain of calls each sent after the one before it was answered: calls in flight
        together are one round trip. (The most round trips no two of which overlap, picked by earliest end.)"""
        chain, last_end = 0, float("-inf")
        for started, ended in sorted(self.sent, key=lambda interval: interval[1]):
            if started >= last_end:
                chain, last_end = chain + 1, ended
        return chain


WIRE = Wire()


class IndexWatch:
    """Around every DynamoDB write: what the recent-events index holds for that item before and after, from
    moto's model (no call, so nothing counted or delayed), priced by DynamoDB's rule for index writes."""

    def __init__(self) -> None:
        self.watching = False
        self.writes = 0.0  # index write units
        self.entries: list[int] = []  # bytes of each index entry written
        self._lock = threading.Lock()

    def install(self) -> None:
        from botocore.handlers import BUILTIN_HANDLERS

        BUILTIN_HANDLERS.append(("before-parameter-build.dynamodb", self._before))
        BUILTIN_HANDLERS.append(("after-call.dynamodb", self._after))

    @contextlib.contextmanager
    def watched(self) -> Iterator[IndexWatch]:
        with self._lock:
            self.writes, self.entries, self.watching = 0.0, [], True
        try:
            yield self
        finally:
            self.watching = False

    @staticmethod
    def _entry(table: str, event_id: str) -> dict[str, Any] | None:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        from inqueue.status import RECENT_KEY, RECENT_PROJECTED, RECENT_SORT

        item = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_item(table, {"id": {"S": event_id}})
        attributes = item.to_json()["Attributes"] if item is not None else {}
        if RECENT_KEY not in attributes or RECENT_SORT not in attributes:
            return None  # sparse: not in the index
        return {
            name: attributes[name] for name in ("id", RECENT_KEY, RECENT_SORT, *RECENT_PROJECTED) if name in attributes
        }

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self.watching or model.name not in ("PutItem", "UpdateItem", "DeleteItem"):
            return
        key = (params.get("Key") or params.get("Item") or {}).get("id", {}).get("S")
        if key is not None:
            context["inqueue_index"] = (params["TableName"], key, self._entry(params["TableName"], key))

    def _after(self, context: dict[str, Any], **_: Any) -> None:
        found = context.pop("inqueue_index", None)
        if found is None:
            return
        table, key, before = found
        after = self._entry(table, key)
        if before == after:
            return
        keys_changed = (
            before is not None
            and after is not None
            and any(before.get(name) != after.get(name) for name in ("recent_key", "received_at"))
        )
        size = _item_bytes(after or before or {})
        with self._lock:
            self.writes += wru(size) * (2 if keys_changed else 1)
            if after is not None:
                self.entries.append(size)


INDEX = IndexWatch()


@dataclass
class Measured:
    """A scenario's runs: its sequential round trips, its CPU without moto's, and the calls one run made."""

    round_trips_seen: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    moto: list[float] = field(default_factory=list)
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    runs: int = 0

    @property
    def round_trips(self) -> float:
        return float(statistics.median(self.round_trips_seen))

    @property
    def cpu_ms(self) -> float:
        """This process's CPU for one run, less moto's work answering the calls: what the handler itself costs."""
        return statistics.median(self.cpu) * 1000

    @property
    def moto_ms(self) -> float:
        """What moto's in-process backend spent answering one run: the local runner's backend cost, not AWS's."""
        return statistics.median(self.moto) * 1000

    def per_run(self) -> dict[str, float]:
        return {op: n / self.runs for op, n in sorted(self.calls.items())}

    def calls_per_run(self) -> float:
        return sum(self.calls.values()) / self.runs

    def describe(self) -> str:
        return ", ".join(f"{op} {n:g}" for op, n in self.per_run().items())


def measure(
    prepare: Callable[[], Any], run: Callable[[Any], Any], settle: Callable[[Any], None] | None = None
) -> Measured:
    """Run the scenario RUNS times with the delay (round trips, calls) and RUNS times without it (CPU)."""
    figures = Measured()
    for index in range(2 * RUNS):
        delayed = index % 2 == (index // 2) % 2  # ABBA order: neither always runs first
        subject = prepare()
        with WIRE.measured(DELAY_MS / 1000 if delayed else 0.0) as wire:
            cpu = time.process_time()
            run(subject)
            cpu = time.process_time() - cpu
        if delayed:
            figures.round_trips_seen.append(wire.round_trips())
            figures.calls.update(wire.calls)
            figures.runs += 1
        else:
            figures.cpu.append(max(cpu - wire.moto_cpu, 0.0))
            figures.moto.append(wire.moto_cpu)
        if settle is not None:
            settle(subject)
    return figures


@contextlib.contextmanager
def captured_stdout() -> Iterator[list[bytes]]:
    """What the handlers write to file descriptor 1 meanwhile (log lines, EMF metrics), as Lambda would ship it."""
    import sys

    sys.stdout.flush()
    out: list[bytes] = []
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(1)
        os.dup2(sink.fileno(), 1)
        try:
            yield out
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            sink.seek(0)
            out.extend(sink.read().splitlines(keepends=True))


# ---------------------------------------------------------------- the stack on moto


class Stack:
    """The template's data plane on moto in this process, and the two functions loaded as Lambda loads them."""

    def __init__(self) -> None:
        import boto3
        from tests.factories import DEMO_SECRET
        from tests.tables import PAYLOAD_BUCKET, create_payload_bucket, create_queues, create_status_table

        self.sqs = boto3.client("sqs")
        self.queue_url, self.dlq_url = create_queues(self.sqs, max_receives=5)
        self.dynamodb = create_status_table(STATUS_TABLE)  # the template's shape, recent-events index included
        boto3.client("ssm").put_parameter(Name="/inqueue/demo", Value=DEMO_SECRET, Type="SecureString")
        self.env = {
            "INQUEUE_QUEUE_URL": self.queue_url,
            "INQUEUE_DLQ_URL": self.dlq_url,
            "INQUEUE_MAX_RECEIVE_COUNT": "5",
            "INQUEUE_STATUS_TABLE": STATUS_TABLE,
        }
        create_payload_bucket()
        self.bucket = PAYLOAD_BUCKET
        os.environ.update(self.env)
        self.ingress_app = load_function(INGRESS_DIR, "inqueue_bench_calls_ingress")
        self.worker_app = load_function(WORKER_DIR, "inqueue_bench_calls_worker")
        self._ids = iter(range(10**9))

    def next_id(self) -> str:
        return f"ord_{next(self._ids)}-created"

    def drain(self) -> None:
        """Delete whatever the events queue holds (PurgeQueue is allowed once a minute)."""
        while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages"):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
            )

    def item_bytes(self, event_id: str) -> int:
        item = self.dynamodb.get_item(TableName=STATUS_TABLE, Key={"id": {"S": event_id}})["Item"]
        return _item_bytes(item)


def _item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    """An attribute value's size as DynamoDB counts it for capacity (strings as UTF-8, numbers ~ digits/2 + 1)."""
    ((kind, inner),) = value.items()
    sizes: dict[str, Callable[[Any], int]] = {
        "S": lambda text: len(text.encode()),
        "N": lambda number: len(number.lstrip("-").replace(".", "")) // 2 + 1,
        "B": len,
        "BOOL": lambda _: 1,
        "NULL": lambda _: 1,
        "L": lambda items: 3 + sum(1 + _value_bytes(v) for v in items),
        "M": lambda fields: 3 + sum(1 + len(k.encode()) + _value_bytes(v) for k, v in fields.items()),
    }
    return sizes.get(kind, lambda other: len(str(other)))(inner)


def wru(size: int) -> int:
    return max(1, math.ceil(size / 1024))


# ---------------------------------------------------------------- scenarios


def ingress_rows(stack: Stack, report: Report) -> dict[str, Any]:
    from tests.factories import LambdaContext, http_event

    body = order_body(2048)
    context = LambdaContext(function_name="inqueue-ingress")
    app = stack.ingress_app
    with_status = app.ingress
    with patched_environ({**os.environ, "INQUEUE_QUEUED_STATUS": "false"}):
        without_status = app.Ingress.from_environment()

    def post(ingress: Any) -> Callable[[Any], Any]:
        def run(event: Any) -> None:
            app.ingress = ingress
            response = app.lambda_handler(event, context)
            if response["statusCode"] != 202:
                raise RuntimeError(f"the benchmark event was not accepted: {response}")

        return run

    def event() -> Any:
        return http_event("demo", body, headers={"x-event-type": "order.created", "idempotency-key": stack.next_id()})

    post(with_status)(event())  # warm: the secret read, the clients made
    post(without_status)(event())
    with captured_stdout() as lines:
        post(with_status)(event())
    figures = {
        "status": measure(event, post(with_status)),
        "no_status": measure(event, post(without_status)),
        "floor": measure(
            lambda: None, lambda _: stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="x" * 3000)
        ),
        "log_bytes": sum(len(line) for line in lines),
    }
    app.ingress = with_status
    event_id = json.loads(app.lambda_handler(event(), context)["body"])["id"]
    figures["item_bytes"] = stack.item_bytes(event_id)
    stack.drain()
    floor = figures["floor"]
    report.add(
        "ingress: moto's CPU answering a request (queued record on / QueuedStatus=false / SendMessage alone)",
        figures["status"].moto_ms,
        "ms",
        note=f"{figures['no_status'].moto_ms:.2f} ms without the queued record, {floor.moto_ms:.2f} ms for "
        "SendMessage alone: the local backend's work per event, not AWS's",
    )
    for key, label in (("status", "queued record on (default)"), ("no_status", "QueuedStatus=false")):
        m = figures[key]
        report.add(
            f"ingress, {label}: AWS calls per request",
            m.calls_per_run(),
            "",
            baseline=floor.calls_per_run(),
            note=f"{m.describe()}; floor: SendMessage alone",
        )
        report.add(
            f"ingress, {label}: sequential round trips per request",
            m.round_trips,
            "",
            baseline=floor.round_trips,
            goal=1.5,
            note="goal: one round trip to the 202 (a second call after SendMessage would read 2); "
            "floor: one SendMessage measured the same way",
        )
    return figures


@dataclass
class Batch:
    event: dict[str, Any]
    ids: list[str]


class WorkerScenarios:
    """Batches of 10 real messages (received from moto's queue) through the worker's lambda_handler."""

    def __init__(self, stack: Stack):
        from tests.factories import LambdaContext

        from inqueue.worker import Router

        self.stack = stack
        self.router = Router()
        self.router.on("demo")(self._process)
        self.app = stack.worker_app
        self.app.worker.router = self.router
        self.context = LambdaContext(function_name="inqueue-worker")
        self.completed: list[str] = []
        self.pool = ThreadPoolExecutor(max_workers=BATCH)  # the floor's: threads made once, as the worker's are

    @staticmethod
    def _process(event: Any) -> dict[str, str]:
        if event.type == "bench.fails":
            raise ConnectionError("the CRM is down")
        return {"order": event.id[:8]}

    def batch(self, ids: list[str], failing: int | None = None) -> Batch:
        from tests.factories import make_envelope
        from tests.tables import receive_event

        body = json.loads(order_body(2048))
        entries = []
        for n, event_id in enumerate(ids):
            kind = "bench.fails" if n == failing else "order.created"
            envelope = make_envelope(event_id, type=kind, body=body, correlation_id="Cw3UrhD5IAMEV9Q=")
            attributes = envelope.message_attributes()
            entries.append({"Id": str(n), "MessageBody": envelope.to_json(), "MessageAttributes": attributes})
        self.stack.sqs.send_message_batch(QueueUrl=self.stack.queue_url, Entries=entries)
        event = receive_event(self.stack.sqs, self.stack.queue_url)
        if len(event["Records"]) != len(ids):
            raise RuntimeError(f"received {len(event['Records'])} of {len(ids)} messages")
        return Batch(event, ids)

    def fresh(self, failing: int | None = None) -> Callable[[], Batch]:
        from inqueue.envelope import event_id_for

        return lambda: self.batch([event_id_for("demo", self.stack.next_id()) for _ in range(BATCH)], failing)

    def again(self) -> Callable[[], Batch]:
        ids = list(self.completed)  # the last batch that succeeded
        return lambda: self.batch(ids)

    def handler(self, expect_failures: int, handle: Callable[..., Any] | None = None) -> Callable[[Batch], None]:
        handle = handle or self.app.lambda_handler

        def run(subject: Batch) -> None:
            response = handle(subject.event, self.context)
            if len(response["batchItemFailures"]) != expect_failures:
                raise RuntimeError(f"expected {expect_failures} failures: {response}")

        return run

    def settle(self, subject: Batch) -> None:
        """What the event source mapping does, and more: every message goes, so none comes back later."""
        records = subject.event["Records"]
        self.stack.sqs.delete_message_batch(
            QueueUrl=self.stack.queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": r["receiptHandle"]} for n, r in enumerate(records)],
        )
        self.completed[:] = subject.ids

    def rounds_of_writes(self, rounds: int) -> Callable[[Any], None]:
        """The floor: rounds of 10 concurrent UpdateItems, the least a batch's guarantees can cost."""

        def write(n: int) -> None:
            self.stack.dynamodb.update_item(
                TableName=STATUS_TABLE,
                Key={"id": {"S": f"floor-{n}"}},
                UpdateExpression="SET n = :n",
                ExpressionAttributeValues={":n": {"N": "1"}},
            )

        def run(_: Any) -> None:
            for _round in range(rounds):
                list(self.pool.map(write, range(BATCH)))

        return run


def worker_rows(stack: Stack, report: Report) -> dict[str, Any]:
    from bench.powertools_route import PowertoolsRouteWorker
    from inqueue.status import StatusStore

    scenarios = WorkerScenarios(stack)
    with captured_stdout() as lines:
        first = scenarios.fresh()()
        scenarios.handler(0)(first)
        scenarios.settle(first)
    figures: dict[str, Any] = {"log_bytes_per_batch": sum(len(line) for line in lines)}
    figures["item_bytes"] = stack.item_bytes(first.ids[0])
    figures["ok"] = measure(scenarios.fresh(), scenarios.handler(0), scenarios.settle)
    figures["duplicate"] = measure(scenarios.again(), scenarios.handler(0), scenarios.settle)
    figures["one_failure"] = measure(scenarios.fresh(failing=3), scenarios.handler(1), scenarios.settle)
    route = PowertoolsRouteWorker(scenarios.router, StatusStore(STATUS_TABLE, stack.dynamodb))
    figures["powertools"] = measure(scenarios.fresh(), scenarios.handler(0, route.handle), scenarios.settle)
    scenarios.rounds_of_writes(1)(None)  # the pool's threads started before they are measured
    figures["floor_2"] = measure(lambda: None, scenarios.rounds_of_writes(2))
    figures["floor_1"] = measure(lambda: None, scenarios.rounds_of_writes(1))

    rows = (
        ("ok", "batch of 10 that succeed", "floor_2"),
        ("one_failure", "batch of 10 with one failure", "floor_2"),
        ("duplicate", "duplicate batch of 10", "floor_1"),
        ("powertools", "Powertools idempotency route, batch of 10 that succeed", "floor_2"),
    )
    for key, label, floor_key in rows:
        m, floor = figures[key], figures[floor_key]
        rounds = "one round" if floor_key == "floor_1" else "two rounds"
        report.add(
            f"worker, {label}: AWS calls per batch",
            m.calls_per_run(),
            "",
            baseline=floor.calls_per_run(),
            note=f"{m.describe()}; floor: {floor.calls_per_run():g} UpdateItem ({rounds} of 10)",
        )
        report.add(
            f"worker, {label}: sequential round trips per batch",
            m.round_trips,
            "",
            baseline=floor.round_trips,
            goal=None if key == "powertools" else 4.0,
            note=f"floor: {rounds} of 10 concurrent UpdateItems, measured the same way; "
            f"CPU {m.cpu_ms:.1f} ms a batch here (moto's answering excluded)",
        )
    report.add(
        "worker: DynamoDB writes per successful event",
        figures["ok"].per_run().get("UpdateItem", 0) / BATCH,
        "",
        baseline=2.0,
        goal=2.0,
        note="claim + completion; before: 4 (status processing, idempotency PutItem and UpdateItem, status succeeded)",
    )
    ok = figures["ok"]
    report.add(
        "worker: moto's CPU answering a batch of 10 that succeed, per event",
        ok.moto_ms / BATCH,
        "ms",
        note=f"the local backend's share, which bounds the local pipeline (next section): {ok.describe()} a batch; "
        "a claim is one conditional UpdateItem of 11 SET and 5 REMOVE actions, which moto validates action by action",
    )
    scenarios.pool.shutdown()
    return figures


# ---------------------------------------------------------------- the console (issue 12)


def console_rows(stack: Stack, report: Report) -> dict[str, Any]:
    """The recent-events index's writes per event, the envelope archive's price, a console page view's reads."""
    figures = {**index_figures(stack), **archive_figures(stack)}
    figures.update(page_figures(stack, figures["index_entry_bytes"]))
    report.add(
        "console index: writes to the recent-events index per event, defaults",
        figures["index_defaults"],
        "",
        baseline=1.0,
        goal=1.0,
        note="10 events through the ingress (queued PutItem: the entry) and a worker batch (claim with "
        "if_not_exists, completion: no index write), by DynamoDB's rule (an index write when a key or projected "
        "attribute is created, changed or removed), read from moto's model around each write; floor: one entry",
    )
    report.add(
        "console index: writes per event, QueuedStatus=false / a batch with a failure",
        figures["index_no_status"],
        "",
        baseline=1.0,
        goal=1.0,
        note=f"the claim creates the entry; with a failure (its retrying write): {figures['index_failure']:.2f}",
    )
    report.add(
        "console index: bytes of one index entry",
        figures["index_entry_bytes"],
        "B",
        note=f"id, recent_key, received_at, source, type: {wru(figures['index_entry_bytes'])} write unit; "
        "DynamoDB adds 100 B of overhead to its storage",
    )
    archive = figures["archive"]
    report.add(
        "ingress, EnvelopeArchive=true: AWS calls per request",
        archive.calls_per_run(),
        "",
        baseline=1.0,
        note=f"{archive.describe()}: the queued record and the archived envelope beside SendMessage",
    )
    report.add(
        "ingress, EnvelopeArchive=true: sequential round trips per request",
        archive.round_trips,
        "",
        baseline=1.0,
        goal=1.5,
        note="the archive's PutItem runs beside SendMessage and the queued record (a thread each): one round trip",
    )
    sizes = ", ".join(f"{kb} KB -> {where} {stored} B" for kb, (where, stored) in figures["archive_sizes"].items())
    report.add(
        "envelope archive: item bytes for a 2 KB webhook",
        figures["archive_item_bytes"],
        "B",
        note=f"the {figures['envelope_bytes']}-byte envelope zlib-compressed: {wru(figures['archive_item_bytes'])} "
        f"write unit; by webhook size: {sizes}",
    )
    rru = figures["page_rru"]
    report.add(
        "console: a page view of 50 recent events, calls",
        sum(figures["page_calls"].values()),
        "",
        note=", ".join(f"{op} {n}" for op, n in sorted(figures["page_calls"].items()))
        + f"; about {rru:g} read units (${rru * price('dynamodb_rru_per_million') / 1e6:.7f}); no Scan",
    )
    return figures


def accept(stack: Stack, ingress: Any, body: bytes) -> str:
    """One signed 2 KB event through the ingress's lambda_handler; its event id."""
    from tests.factories import LambdaContext, http_event

    app = stack.ingress_app
    app.ingress = ingress
    event = http_event("demo", body, headers={"x-event-type": "order.created", "idempotency-key": stack.next_id()})
    response = app.lambda_handler(event, LambdaContext(function_name="inqueue-ingress"))
    if response["statusCode"] != 202:
        raise RuntimeError(f"the benchmark event was not accepted: {response}")
    return str(json.loads(response["body"])["id"])


def index_figures(stack: Stack) -> dict[str, Any]:
    from tests.tables import receive_event

    scenarios = WorkerScenarios(stack)
    app = stack.ingress_app
    body = order_body(2048)
    with patched_environ({**os.environ, "INQUEUE_QUEUED_STATUS": "false"}):
        without_status = app.Ingress.from_environment()

    def life(ingress: Any, failing: bool = False) -> float:
        """Index write units per event over 10 events' whole life: accepted, claimed, completed (or retried)."""
        with INDEX.watched() as watch:
            for _ in range(BATCH):
                accept(stack, ingress, body)
            batch = Batch(receive_event(stack.sqs, stack.queue_url), [])
            if failing:  # one fails: its release writes `retrying`, which must not touch the index
                record = batch.event["Records"][3]
                record["body"] = json.dumps({**json.loads(record["body"]), "type": "bench.fails"})
            scenarios.handler(1 if failing else 0)(batch)
            scenarios.settle(batch)
        return watch.writes / BATCH

    figures: dict[str, Any] = {
        "index_defaults": life(app.Ingress.from_environment()),
        "index_no_status": life(without_status),
        "index_failure": life(app.Ingress.from_environment(), failing=True),
    }
    with INDEX.watched() as watch:
        accept(stack, app.Ingress.from_environment(), body)
    figures["index_entry_bytes"] = max(watch.entries)
    stack.drain()
    return figures


def archive_figures(stack: Stack) -> dict[str, Any]:
    """The ingress with the archive on (calls, round trips), the item it writes, and where bigger webhooks go."""
    import boto3

    from inqueue.archive import EnvelopeArchive, item_id

    app = stack.ingress_app
    body = order_body(2048)
    with patched_environ({**os.environ, "INQUEUE_ENVELOPE_ARCHIVE": "true", "INQUEUE_PAYLOAD_BUCKET": stack.bucket}):
        archiving = app.Ingress.from_environment()
    accept(stack, archiving, body)  # warm: the clients made

    def event() -> Any:
        from tests.factories import http_event

        return http_event("demo", body, headers={"x-event-type": "order.created", "idempotency-key": stack.next_id()})

    def post(event: Any) -> None:
        from tests.factories import LambdaContext

        app.ingress = archiving
        if app.lambda_handler(event, LambdaContext(function_name="inqueue-ingress"))["statusCode"] != 202:
            raise RuntimeError("the benchmark event was not accepted")

    figures: dict[str, Any] = {"archive": measure(event, post)}
    event_id = accept(stack, archiving, body)
    item = stack.dynamodb.get_item(TableName=STATUS_TABLE, Key={"id": {"S": item_id(event_id)}})["Item"]
    figures["archive_item_bytes"] = _item_bytes(item)
    figures["envelope_bytes"] = int(item["bytes"]["N"])
    stack.drain()
    keeper = EnvelopeArchive(STATUS_TABLE, stack.bucket, client=stack.dynamodb, s3=boto3.client("s3"))
    sizes: dict[int, tuple[str, int]] = {}
    for kilobytes in (2, 8, 32, 128):
        message = json.dumps({"id": f"size-{kilobytes}", "body": varied_body(kilobytes * 1024)})
        where = keeper.put(f"size-{kilobytes}", message)
        key = {"id": {"S": item_id(f"size-{kilobytes}")}}
        if where == "table":
            stored = _item_bytes(stack.dynamodb.get_item(TableName=STATUS_TABLE, Key=key)["Item"])
        else:
            stored = len(zlib_size(message))
        sizes[kilobytes] = (where, stored)
    figures["archive_sizes"] = sizes
    return figures


def varied_body(size: int) -> dict[str, Any]:
    """A body about ``size`` bytes of JSON whose values vary as real ones do (ids, names, amounts), so that it
    compresses as a real webhook does (2-3x), not as ``order_body``'s repeated padding (5x)."""
    import random

    rng = random.Random(size)  # noqa: S311 - test data, the same every run
    words = ["engine", "part", "blue", "steel", "valve", "gasket", "rotor", "left", "right", "kit", "m8", "pack"]
    lines: list[dict[str, Any]] = []
    while len(json.dumps(lines)) < size - 200:
        lines.append(
            {
                "id": f"li_{rng.getrandbits(64):016x}",
                "sku": f"SKU-{rng.randrange(10**6):06d}",
                "name": " ".join(rng.choice(words) for _ in range(rng.randrange(2, 6))),
                "qty": rng.randrange(1, 9),
                "price": f"{rng.randrange(100, 99999) / 100:.2f}",
            }
        )
    return {"type": "order.created", "id": f"ord_{rng.getrandbits(32)}", "data": {"line_items": lines}}


def page_figures(stack: Stack, entry: int) -> dict[str, Any]:
    """A console page view of 50 events, newest first, on the template's 4 shards: its calls and read units."""
    from inqueue_ops.console.events import RecentEvents

    body = order_body(2048)
    default = stack.ingress_app.Ingress.from_environment()
    for _ in range(60):  # a full page of today's events
        accept(stack, default, body)
    stack.drain()

    recent = RecentEvents(stack.dynamodb, STATUS_TABLE, 4, clock=time.time)
    with WIRE.measured(0.0) as wire:
        page = recent.page(limit=50)
    recent.pool.shutdown()
    record_bytes = stack.item_bytes(str(page.rows[0]["id"]))
    # A Query reads its entries at half a unit per 4 KB; BatchGetItem each record at half a unit per 4 KB.
    rru = 4 * 0.5 * math.ceil(math.ceil(50 / 4) * entry / 4096) + len(page.rows) * 0.5 * math.ceil(record_bytes / 4096)
    return {"page_calls": dict(wire.calls), "page_rows": len(page.rows), "page_rru": rru}


def zlib_size(message: str) -> bytes:
    import zlib

    from inqueue.archive import COMPRESSION_LEVEL

    return zlib.compress(message.encode(), COMPRESSION_LEVEL)


# ---------------------------------------------------------------- cost per million events


def access_log_bytes() -> int:
    """One API Gateway access log line: the template's format filled with the example request's values."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "infra" / "template.yaml").read_text(), Loader=Loader)  # noqa: S506 - SafeLoader
    line = template["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"]
    example = {
        "requestId": "Cw3UrhD5IAMEV9Q=",
        "identity.sourceIp": "203.0.113.7",
        "identity.userAgent": "GitHub-Hookshot/4e1a2b3",
        "requestTime": "23/Nov/2026:12:00:00 +0000",
        "requestTimeEpoch": "1795435200",
        "httpMethod": "POST",
        "path": "/hooks/demo",
        "routeKey": "ANY /hooks/{source}",
        "status": "202",
        "protocol": "HTTP/1.1",
        "responseLength": "62",
        "responseLatency": "14",
        "integrationStatus": "200",
        "integrationLatency": "12",
        "integrationErrorMessage": "-",
    }
    return len(re.sub(r"\$context\.([A-Za-z.]+)", lambda m: example.get(m.group(1), "-"), line)) + 1


def lambda_ms(round_trips: float, cpu_ms: float, memory_mb: int) -> float:
    """Billed milliseconds: the round trips at RTT_MS each, and the CPU here at the function's share of a vCPU."""
    return math.ceil(round_trips * RTT_MS + cpu_ms * LAMBDA_FULL_VCPU_MB / memory_mb)


@dataclass(frozen=True)
class Pipeline:
    """What one configuration costs per event, from the figures measured above."""

    ingress_ms: float  # billed per request
    ingress_log_bytes: int
    writes: float  # DynamoDB writes per event
    item_bytes: int
    worker_ms: float  # billed per batch
    worker_log_bytes: float  # per batch
    records: bool = True
    index_writes: float = 0.0  # write units to the recent-events index per event
    index_bytes: int = 0  # one index entry (DynamoDB stores 100 B more)

    def per_million(self, access_log: int) -> dict[str, float]:
        million, gb = 1e6, 1024**3
        platform = len(PLATFORM_LINES)
        # GB-month held: a record lives the 7-day StatusRetentionSeconds after its last write.
        stored = self.item_bytes * million / gb * 7 / 30 if self.records else 0.0
        log_bytes = self.ingress_log_bytes + platform + access_log + (self.worker_log_bytes + platform) / BATCH
        gb_seconds = INGRESS_MB / 1024 * self.ingress_ms / 1000 + WORKER_MB / 1024 * self.worker_ms / 1000 / BATCH
        lines = {
            "API Gateway (HTTP API)": price("api_gateway_http_per_million"),
            "Lambda requests": price("lambda_request_per_million") * (1 + 1 / BATCH),
            "Lambda duration": price("lambda_arm_gb_second") * million * gb_seconds,
            # SendMessage per event; the trigger's ReceiveMessage and DeleteMessageBatch per batch.
            "SQS requests": price("sqs_standard_per_million") * (1 + 2 / BATCH),
            "DynamoDB writes": price("dynamodb_wru_per_million") * self.writes * wru(self.item_bytes),
            "DynamoDB index writes": price("dynamodb_wru_per_million") * self.index_writes,
            "DynamoDB storage + PITR": (price("dynamodb_storage_gb_month") + price("dynamodb_pitr_gb_month")) * stored
            # The index is stored at the table's rate; point-in-time recovery covers the table, not its GSIs.
            + price("dynamodb_storage_gb_month")
            * (self.index_bytes + 100)
            * million
            / gb
            * 7
            / 30
            * (1 if self.index_writes else 0),
            "CloudWatch Logs": price("cloudwatch_logs_ingest_gb") * million * log_bytes / gb,
        }
        lines["total"] = sum(lines.values())
        return lines


def archive_per_million(item_bytes: int, *, in_bucket: bool = False) -> float:
    """What keeping every envelope costs per million events: one write, and the copy held for the record's 7 days."""
    million, gb = 1e6, 1024**3
    held = item_bytes * million / gb * 7 / 30
    if in_bucket:
        return price("s3_put_per_million") + price("s3_storage_gb_month") * held
    storage = price("dynamodb_storage_gb_month") + price("dynamodb_pitr_gb_month")
    return price("dynamodb_wru_per_million") * wru(item_bytes) + storage * held


def cost_rows(
    ingress: dict[str, Any], worker: dict[str, Any], console: dict[str, Any], report: Report
) -> dict[str, dict[str, float]]:
    access = access_log_bytes()
    index = {"index_writes": console["index_defaults"], "index_bytes": console["index_entry_bytes"]}
    ok = worker["ok"]
    item = max(ingress["item_bytes"], worker["item_bytes"])
    writes = ok.per_run().get("UpdateItem", 0) / BATCH
    worker_ms = lambda_ms(ok.round_trips, ok.cpu_ms, WORKER_MB)

    def ingress_ms(figures: Measured) -> float:
        return lambda_ms(figures.round_trips, figures.cpu_ms, INGRESS_MB)

    logs = worker["log_bytes_per_batch"]
    configurations = {
        "defaults": Pipeline(
            ingress_ms(ingress["status"]), ingress["log_bytes"], 1 + writes, item, worker_ms, logs, **index
        ),
        "no_status": Pipeline(
            ingress_ms(ingress["no_status"]), ingress["log_bytes"], writes, item, worker_ms, logs, **index
        ),
        "no_index": Pipeline(ingress_ms(ingress["status"]), ingress["log_bytes"], 1 + writes, item, worker_ms, logs),
        # No record per event and no line of ours: SendMessage alone, and a worker with nothing to write.
        "floor": Pipeline(ingress_ms(ingress["floor"]), 0, 0.0, item, lambda_ms(0, ok.cpu_ms, WORKER_MB), 0, False),
        # The measurements of the design this replaces, priced by the same model: 2 sequential calls
        # and 649 log bytes per request, 5 writes per event, 40 round trips per batch of 10.
        "before": Pipeline(lambda_ms(2, ingress["status"].cpu_ms, INGRESS_MB), 649, 5.0, item,
                           lambda_ms(40, ok.cpu_ms, WORKER_MB), logs),
    }  # fmt: skip
    costs = {name: pipeline.per_million(access) for name, pipeline in configurations.items()}
    defaults = costs["defaults"]
    report.add(
        "cost per million events, defaults ($)",
        defaults["total"],
        "",
        baseline=costs["floor"]["total"],
        note="; ".join(f"{name} {value:.3f}" for name, value in defaults.items() if name != "total")
        + f". Floor: the same pipeline with no record and no log line of ours. Items {ingress['item_bytes']} / "
        f"{worker['item_bytes']} B (queued / final), {wru(item)} WRU a write; logs per event: ingress "
        f"{ingress['log_bytes']} B, worker {logs / BATCH:.0f} B, API access {access} B, Lambda's "
        f"{len(PLATFORM_LINES)} B an invocation; Lambda billed {configurations['defaults'].ingress_ms:.0f} ms a "
        f"request, {worker_ms:.0f} ms a batch ({RTT_MS:g} ms a round trip)",
    )
    report.add(
        "cost per million events, EventIndexShards=0 (no recent-events index) ($)",
        costs["no_index"]["total"],
        "",
        baseline=costs["floor"]["total"],
        note=f"the index costs {costs['defaults']['total'] - costs['no_index']['total']:.3f} of the defaults: "
        f"{console['index_defaults']:g} index write an event and its entry's storage; the console then finds events "
        "by id only",
    )
    archive = archive_per_million(console["archive_item_bytes"])
    costs["archive"] = {"total": archive}
    by_size = "; ".join(
        f"{kb} KB webhook {archive_per_million(stored, in_bucket=where == 'bucket'):.3f} ({where})"
        for kb, (where, stored) in console["archive_sizes"].items()
    )
    item = console["archive_item_bytes"]
    report.add(
        "cost per million events, EnvelopeArchive=true ($, added)",
        archive,
        "",
        note=f"a 2 KB webhook: one {wru(item)}-unit write and {item} B held 7 days (with point-in-time recovery); "
        f"{by_size}",
    )
    report.add(
        "cost per million events, QueuedStatus=false ($)",
        costs["no_status"]["total"],
        "",
        baseline=costs["floor"]["total"],
        note="one DynamoDB write fewer per event; lost: the record between the 202 and the worker's claim",
    )
    report.add(
        "cost per million events, the design this replaces ($, same model)",
        costs["before"]["total"],
        "",
        baseline=costs["floor"]["total"],
        note="the issue's figures (2 sequential calls, 649 B of logs a request; 5 writes an event; 40 round trips "
        "a batch) priced as above; X-Ray, then Active, not included (next row)",
    )
    report.add(
        "cost per million events, TracingMode=Active at under 1 event/s ($, added)",
        price("xray_traces_recorded_per_million") * (1 + 1 / BATCH),
        "",
        note="X-Ray's default rule records 1 request/s and 5% beyond: at webhook rates nearly every ingress "
        "request and worker batch is a trace",
    )
    return costs


# ---------------------------------------------------------------- the section


def run(report: Report) -> None:
    from moto import mock_aws

    WIRE.install()
    INDEX.install()
    env = {
        **lambda_env("inqueue-worker"),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Inqueue",
        "INQUEUE_TRACING_MODE": "Disabled",
    }
    with patched_environ(env), mock_aws(), quiet_stdout():
        stack = Stack()
        ingress = ingress_rows(stack, report)
        worker = worker_rows(stack, report)
        console = console_rows(stack, report)
    costs = cost_rows(ingress, worker, console, report)
    Path(os.environ.get("BENCH_CALLS_JSON", os.devnull)).write_text(json.dumps(costs, indent=2))
    report.add(
        "delay per AWS call / runs per scenario",
        DELAY_MS,
        "ms",
        runs=RUNS,
        note="round trips: the longest chain of calls each sent after the one before was answered, every call "
        "held for the delay (medians of the runs); CPU: this process's, less moto's answering, on this machine",
    )


if __name__ == "__main__":
    report = Report(section="calls")
    run(report)
    print(report.render())
