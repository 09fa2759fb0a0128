"""Soak: drive N events through ingress -> SQS -> worker with faults, then account for every one.

    make soak N=10000            # or: python -m inqueue_local.soak --events 10000 --seed 7

The account is in the style of a Jepsen queue check: every event the sender posted is
either **rejected** (503: the queue was unreachable, nothing was queued, the sender must
retry) or **accepted** (202); every accepted event must end **succeeded** (its side
effect applied) or **dead** (in the DLQ). Anything else is **lost**. A side effect
applied twice for one event id is **duplicated**. Goal: lost = 0, duplicated = 0, and
every poison event dead after exactly ``MaxReceiveCount`` receives.

Faults, decided from one seed so a run can be repeated:

* 20% of processor calls raise (a flaky downstream);
* 2% of events are poison: every call raises;
* 1% of events hang past the worker's ``Timeout`` on their first attempt (the Lambda is
  killed: nothing after the hang runs, and the whole batch comes back);
* 5% of events are posted twice by the sender (the same signed request, same delivery id);
* the queue is unreachable for a window of the sending phase (the ingress answers 503).

It runs on the local runner's pipeline (``inqueue_local.pipeline``): the template's
resources provisioned on moto's in-process AWS, the real functions invoked through the
runner's API Gateway emulation and SQS poller. Time is one stepped clock (freezegun,
handed to the runner as its clock), so moto's visibility timeouts, the worker's backoff
and Lambda deadlines pass in simulated time; that is why the functions run in this
process (``inprocess.InProcessRuntime``, the runtime for stepped-clock runs) and not in
child processes as under ``make run``. A hang is the processor moving that clock past the
function's ``Timeout`` and raising a BaseException, so nothing after it in the invocation
runs, as when Lambda kills the runtime; the runtime then discards the environment, the
invocation times out, and the poller deletes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import random
import sys
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
WORKER_DIR = ROOT / "functions" / "worker"
REGION = "us-east-1"
ACCOUNT = "123456789012"
SOURCE = "soak"
SECRET = "soak-secret"  # noqa: S105 - a local, made-up HMAC key
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Faults:
    flaky_calls: float = 0.20
    poison_events: float = 0.02
    slow_events: float = 0.01
    sent_twice: float = 0.05
    # The part of the sending phase during which the queue is unreachable.
    outage: tuple[float, float] = (0.40, 0.45)


@dataclass(frozen=True, slots=True)
class Settings:
    """What the soak takes from the template, so it exercises the deployed configuration."""

    max_receive_count: int
    visibility_timeout: int
    worker_timeout: int
    batch_size: int

    @classmethod
    def from_template(cls, template: Any = None) -> Settings:
        parameters = (template or load_template()).parameters
        return cls(
            max_receive_count=int(parameters["MaxReceiveCount"]),
            visibility_timeout=int(parameters["QueueVisibilityTimeout"]),
            worker_timeout=int(parameters["WorkerTimeout"]),
            batch_size=int(parameters["WorkerBatchSize"]),
        )


def load_template() -> Any:
    """infra/template.yaml as the local runner reads it (samconfig.toml overrides too), plus the soak source."""
    from inqueue_local.template import Template

    sources = {SOURCE: {"kind": "generic", "auth": "hmac", "secret": "ssm:/inqueue/soak"}}
    return Template.load(TEMPLATE, {"SourcesConfig": json.dumps(sources)})


@dataclass(frozen=True, slots=True)
class Plan:
    n: int
    delivery_id: str
    event_id: str
    poison: bool
    slow: bool
    twice: bool


# -- the account -----------------------------------------------------------------------------


@dataclass
class Account:
    events: int
    posts: int
    accepted: int
    rejected: int
    succeeded: int
    dead: int
    lost: int
    duplicated: int
    processed_after_reject: int
    poison: int
    poison_dead: int
    poison_dead_at_max: int
    flaky_dead: int
    max_receive_count: int
    processor_calls: int
    timeouts: int
    status_mismatches: int
    simulated_seconds: float
    wall_seconds: float
    lost_ids: list[str] = field(default_factory=list)
    duplicated_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.processed_after_reject == 0
            and self.poison_dead_at_max == self.poison
        )

    def table(self) -> str:
        rows = [
            ("events", self.events, f"{self.posts} posts: {self.posts - self.events} sent twice"),
            ("accepted", self.accepted, "202: in the queue"),
            ("rejected", self.rejected, "503 during the queue outage; nothing queued"),
            ("succeeded", self.succeeded, "side effect applied"),
            ("dead", self.dead, f"in the DLQ: {self.poison_dead} poison, {self.flaky_dead} failed every receive"),
            ("lost", self.lost, "accepted, neither succeeded nor dead"),
            ("duplicated", self.duplicated, "side effect applied more than once"),
            ("rejected but processed", self.processed_after_reject, "a 503 whose event ran anyway"),
            (
                "poison dead at max",
                f"{self.poison_dead_at_max}/{self.poison}",
                f"poison events dead after exactly {self.max_receive_count} receives",
            ),
            ("processor calls", self.processor_calls, "including failures"),
            ("timed out", self.timeouts, "invocations killed at the worker's Timeout (whole batch back)"),
            ("status mismatches", self.status_mismatches, "final status record disagrees with the outcome"),
        ]
        width = max(len(name) for name, _, _ in rows)
        lines = [f"{name.ljust(width)}  {value!s:>9}  {note}" for name, value, note in rows]
        lines.append(
            f"{'time'.ljust(width)}  {self.wall_seconds:>8.1f}s  wall clock ({self.simulated_seconds:,.0f} s simulated)"
        )
        lines.append(f"{'verdict'.ljust(width)}  {'VALID' if self.ok else 'INVALID':>9}")
        if self.lost_ids:
            lines.append(f"lost ids (first 10): {', '.join(self.lost_ids[:10])}")
        if self.duplicated_ids:
            lines.append(f"duplicated ids (first 10): {', '.join(self.duplicated_ids[:10])}")
        return "\n".join(lines)


# -- faults at the edges ---------------------------------------------------------------------


class SimulatedTimeout(BaseException):
    """The Lambda was killed at its timeout: a BaseException, so no `except Exception` in the stack runs."""


class FlakyDownstream(RuntimeError):
    pass


class PoisonEvent(ValueError):
    pass


class QueueOutage:
    """The events queue unreachable for the ingress, as a closed port would make it.

    A botocore hook on SendMessage to the events queue, so the fault is in the transport
    and the ingress code runs unchanged: its client raises EndpointConnectionError and
    the ingress answers 503. The worker never sends to the events queue.
    """

    def __init__(self, queue_url: str):
        self.queue_url = queue_url
        self.down = False

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if self.down and params.get("QueueUrl") == self.queue_url:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url=self.queue_url)

    @contextmanager
    def installed(self) -> Iterator[None]:
        import boto3

        # Clients are built from the default session when the ingress cold-starts, after this.
        events = boto3._get_default_session().events
        events.register_first("before-parameter-build.sqs.SendMessage", self, unique_id="inqueue-soak-outage")
        try:
            yield
        finally:
            events.unregister("before-parameter-build.sqs.SendMessage", unique_id="inqueue-soak-outage")


class FrozenClock:
    """freezegun's frozen time, moved forward explicitly: moto, botocore, Powertools, inqueue and the
    runner (Lambda timeouts, remaining time) all read it, so visibility timeouts pass in simulated time."""

    def __init__(self, frozen: Any):
        self._frozen = frozen
        self.start = time.time()

    def now(self) -> float:
        return time.time()

    __call__ = now

    def advance(self, seconds: float) -> None:
        self._frozen.tick(timedelta(seconds=seconds))

    def sleep(self, seconds: float, stop: Any = None) -> None:
        self.advance(max(seconds, 0.0))

    @property
    def elapsed(self) -> float:
        return time.time() - self.start


class Soak:
    def __init__(self, events: int, seed: int, faults: Faults, settings: Settings):
        self.events = events
        self.seed = seed
        self.faults = faults
        self.settings = settings
        self.rng = random.Random(seed)  # noqa: S311 - fault injection, not security
        run = f"{seed}-{uuid.UUID(int=random.Random(seed).getrandbits(128)).hex[:8]}"  # noqa: S311
        self.plans = [self._plan(n, run) for n in range(events)]
        self.by_id = {plan.event_id: plan for plan in self.plans}
        self.ledger: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.hung: set[str] = set()
        self.clock: FrozenClock | None = None

    def _plan(self, n: int, run: str) -> Plan:
        from inqueue.envelope import event_id_for

        delivery_id = f"soak-{run}-{n}"
        draw = self.rng.random
        return Plan(
            n=n,
            delivery_id=delivery_id,
            event_id=event_id_for(SOURCE, delivery_id),
            poison=draw() < self.faults.poison_events,
            slow=draw() < self.faults.slow_events,
            twice=draw() < self.faults.sent_twice,
        )

    # The processor registered for the soak source: the user code a soak exercises.
    def process(self, event: Any) -> dict[str, Any]:
        assert self.clock is not None
        plan = self.by_id[event.id]
        self.calls[event.id] += 1
        if plan.poison:
            raise PoisonEvent(f"event {plan.n} can never be processed")
        if plan.slow and event.id not in self.hung:
            self.hung.add(event.id)
            self.clock.advance(self.settings.worker_timeout + 1)
            raise SimulatedTimeout
        if self.rng.random() < self.faults.flaky_calls:
            raise FlakyDownstream("the downstream API answered 502")
        self.ledger[event.id] += 1
        return {"n": plan.n}

    def run(self) -> Account:
        from freezegun import freeze_time

        wall = time.perf_counter()
        # Powertools prints its metrics (EMF) to stdout per invocation; the account is the output here.
        with (
            warnings.catch_warnings(),
            freeze_time(START) as frozen,
            _aws_environment(),
            redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore", UserWarning)  # Powertools: "No application metrics to publish"
            self.clock = FrozenClock(frozen)
            rig = Rig(load_template(), self.clock)
            _register(self)
            try:
                with rig.outage.installed():
                    accepted, posts = self._send(rig)
                rig.drain(self.settings.max_receive_count, self.settings.visibility_timeout)
                dead = rig.dead_letters()
                statuses = rig.statuses(accepted)
            finally:
                _register(None)
            simulated = self.clock.elapsed
        return self._account(
            accepted=accepted,
            posts=posts,
            dead=dead,
            statuses=statuses,
            simulated=simulated,
            wall=time.perf_counter() - wall,
        )

    def _send(self, rig: Rig) -> tuple[set[str], int]:
        assert self.clock is not None
        accepted: set[str] = set()
        posts = 0
        low, high = (int(self.events * edge) for edge in self.faults.outage)
        for plan in self.plans:
            rig.outage.down = low <= plan.n < high
            body = json.dumps({"n": plan.n}).encode()
            headers = {
                "content-type": "application/json",
                "x-event-type": "soak.test",
                "idempotency-key": plan.delivery_id,
                "x-signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
            }
            for _ in range(2 if plan.twice else 1):
                posts += 1
                status, answer = rig.post(body, headers)
                if status == 202:
                    if answer["id"] != plan.event_id:
                        raise AssertionError(f"the ingress gave {answer['id']} for {plan.event_id}")
                    accepted.add(plan.event_id)
                elif status != 503:
                    raise AssertionError(f"unexpected answer {status} {answer}")
            self.clock.advance(0.01)
            # The worker runs while the sender sends, as the event source mapping would.
            if plan.n % (self.settings.batch_size * 3) == 0:
                rig.poll_until_empty()
        rig.outage.down = False
        return accepted, posts

    def _account(
        self,
        *,
        accepted: set[str],
        posts: int,
        dead: dict[str, list[int]],
        statuses: dict[str, str | None],
        simulated: float,
        wall: float,
    ) -> Account:
        succeeded = {event_id for event_id in accepted if self.ledger[event_id] >= 1}
        dead_ids = (set(dead) & accepted) - succeeded
        lost = sorted(accepted - succeeded - dead_ids)
        duplicated = sorted(event_id for event_id, count in self.ledger.items() if count > 1)
        poison = [plan.event_id for plan in self.plans if plan.poison and plan.event_id in accepted]
        at_max = [
            event_id
            for event_id in poison
            if event_id in dead and all(receives == self.settings.max_receive_count for receives in dead[event_id])
        ]
        expected = dict.fromkeys(succeeded, "succeeded") | dict.fromkeys(dead_ids, "dead")
        mismatches = sum(1 for event_id, status in statuses.items() if status != expected.get(event_id))
        return Account(
            events=self.events,
            posts=posts,
            accepted=len(accepted),
            rejected=self.events - len(accepted),
            succeeded=len(succeeded),
            dead=len(dead_ids),
            lost=len(lost),
            duplicated=len(duplicated),
            processed_after_reject=len(set(self.ledger) - accepted),
            poison=len(poison),
            poison_dead=sum(1 for event_id in poison if event_id in dead),
            poison_dead_at_max=len(at_max),
            flaky_dead=len(dead_ids - set(poison)),
            max_receive_count=self.settings.max_receive_count,
            processor_calls=sum(self.calls.values()),
            timeouts=len(self.hung),
            status_mismatches=mismatches if statuses else 0,
            simulated_seconds=simulated,
            wall_seconds=wall,
            lost_ids=lost,
            duplicated_ids=duplicated,
        )


_current: Soak | None = None


def _register(soak: Soak | None) -> None:
    global _current  # noqa: PLW0603 - the worker's router is module state; one soak runs at a time
    _current = soak


def _soak_processor(event: Any) -> Any:
    if _current is None:
        raise RuntimeError("no soak is running")
    return _current.process(event)


@contextmanager
def _aws_environment() -> Iterator[None]:
    """moto in-process, with the variables the functions read, restored afterwards.

    moto's DynamoDB gets the runner's speed-ups (``moto_dynamodb``: the same answers at a third of the CPU).
    """
    from moto import mock_aws

    from inqueue_local.moto_dynamodb import speed_up

    speed_up()

    saved = dict(os.environ)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="soak",
        AWS_SECRET_ACCESS_KEY="soak",  # noqa: S106 - moto accepts anything
        AWS_DEFAULT_REGION=REGION,
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_METRICS_NAMESPACE="InqueueSoak",
    )
    try:
        with mock_aws():
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Rig:
    """The local runner's pipeline (gateway, worker poller, template-provisioned resources) on moto in-process."""

    WORKER = "WorkerFunction"
    INGRESS = "IngressFunction"

    def __init__(self, template: Any, clock: FrozenClock):
        from inqueue_local.backends import InProcess
        from inqueue_local.inprocess import InProcessRuntime
        from inqueue_local.pipeline import Log, Pipeline

        self.clock = clock
        self.backend = InProcess(region=REGION)
        self.runner = Pipeline(
            template, self.backend, clock, log=Log(write=lambda _line: None), runtime=InProcessRuntime
        )
        self.runner.start()
        refs = self.runner.refs
        self.sqs = self.backend.client("sqs")
        self.queue_url = refs["EventsQueue"]["QueueUrl"]
        self.dlq_url = refs["DeadLetterQueue"]["QueueUrl"]
        self.backend.client("ssm").put_parameter(Name="/inqueue/soak", Value=SECRET, Type="SecureString")
        self.status_table = str(refs["StatusTable"]["Ref"]) if "StatusTable" in refs else self._table("inqueue-status")
        # Until the template wires the guarantees' tables into the functions, the soak does.
        guarantees = {"INQUEUE_STATUS_TABLE": self.status_table}
        for name in (self.INGRESS, self.WORKER):
            self.runner.functions[name].environment.update(
                {k: v for k, v in guarantees.items() if k not in self.runner.functions[name].environment}
            )
        # One table holds each event's status and idempotency state (the template's StatusTable).
        worker = self.runner.functions[self.WORKER]
        self._register_processor(worker)
        (self.poller,) = [p for key, p in self.runner.pollers.items() if key.startswith(self.WORKER + ".")]
        assert self.runner.gateway is not None
        self.gateway = self.runner.gateway
        self.outage = QueueOutage(self.queue_url)

    def _table(self, name: str) -> str:
        self.backend.client("dynamodb").create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        return name

    @staticmethod
    def _register_processor(worker: Any) -> None:
        """Every worker environment (a timed-out one is replaced, as Lambda does) gets the soak's processor."""
        worker.on_cold_start.append(lambda modules: modules["processors"].router.on(SOURCE)(_soak_processor))

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        response = self.gateway.handle("POST", f"/hooks/{SOURCE}", list(headers.items()), body)
        return response.status, response.json()

    def poll_once(self) -> bool:
        return self.poller.poll_once() is not None

    def poll_until_empty(self, limit: int = 100_000) -> None:
        for _ in range(limit):
            if not self.poll_once():
                return

    def in_queue(self) -> int:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    def drain(self, max_receive_count: int, visibility_timeout: int) -> None:
        """Poll, and step the clock past visibility timeouts and backoffs, until the events queue is empty."""
        step = 15.0
        bound = int((max_receive_count + 2) * (visibility_timeout + 3600) / step)
        for _ in range(bound):
            self.poll_until_empty()
            if not self.in_queue():
                return
            self.clock.advance(step)
        raise RuntimeError(f"the events queue did not drain: {self.in_queue()} messages left")

    def dead_letters(self) -> dict[str, list[int]]:
        """Event id -> the receive count of each of its DLQ messages (SQS's count, minus this read)."""
        dead: dict[str, list[int]] = {}
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=3600, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return dead
            for message in messages:
                event_id = json.loads(message["Body"])["id"]
                receives = int(message["Attributes"]["ApproximateReceiveCount"]) - 1
                dead.setdefault(event_id, []).append(receives)

    def statuses(self, event_ids: set[str]) -> dict[str, str | None]:
        from inqueue.status import StatusStore

        store = StatusStore(self.status_table, self.backend.client("dynamodb"))
        statuses = {}
        for event_id in event_ids:
            record = store.get(event_id)
            statuses[event_id] = record.get("status") if record else None
        return statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", "-n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    settings = Settings.from_template()
    print(
        f"soak: {args.events} events, seed {args.seed}, local runner pipeline on moto in-process, stepped clock; "
        f"MaxReceiveCount {settings.max_receive_count}, visibility {settings.visibility_timeout} s, "
        f"worker timeout {settings.worker_timeout} s, batch {settings.batch_size}",
        flush=True,
    )
    account = Soak(args.events, args.seed, Faults(), settings).run()
    print(account.table())
    return 0 if account.ok else 1


if __name__ == "__main__":
    sys.exit(main())
