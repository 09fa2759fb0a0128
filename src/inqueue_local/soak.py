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

Everything runs in one process on moto's in-process AWS with a stepped clock
(freezegun, and the same clock injected into the ingress and the worker), so
visibility timeouts and backoff pass in simulated time, not real time. The worker is
built as functions/worker/app.py builds it (the user's router, settings from the
environment) without the Powertools decorators, which add nothing to the account.
The settings (``MaxReceiveCount``, visibility timeout, worker timeout, batch size) are
read from infra/template.yaml's parameter defaults.
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
from collections import Counter
from collections.abc import Callable, Iterator
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
    def from_template(cls, path: Path = TEMPLATE) -> Settings:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        # CloudFormation's short tags (!Ref, !Sub ...) matter not here: only parameter defaults are read.
        Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
        parameters = yaml.load(path.read_text(), Loader=Loader)["Parameters"]  # noqa: S506 - SafeLoader subclass
        return cls(
            max_receive_count=int(parameters["MaxReceiveCount"]["Default"]),
            visibility_timeout=int(parameters["QueueVisibilityTimeout"]["Default"]),
            worker_timeout=int(parameters["WorkerTimeout"]["Default"]),
            batch_size=int(parameters["WorkerBatchSize"]["Default"]),
        )


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


class UnreachableSqs:
    """The ingress's SQS client, unreachable while ``down`` is set (as a closed port would be)."""

    def __init__(self, sqs: Any):
        self._sqs = sqs
        self.down = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message(self, **request: Any) -> Any:
        if self.down:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com/")
        return self._sqs.send_message(**request)


class SteppedClock:
    """freezegun's frozen time, moved forward explicitly: moto, botocore, Powertools and inqueue all read it."""

    def __init__(self, frozen: Any):
        self._frozen = frozen
        self.start = time.time()

    def __call__(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        self._frozen.tick(timedelta(seconds=seconds))

    @property
    def elapsed(self) -> float:
        return time.time() - self.start


# -- the pipeline ----------------------------------------------------------------------------


class LambdaContext:
    """A fresh context per invocation whose remaining time counts down on the stepped clock."""

    def __init__(self, function_name: str, timeout: int, clock: Callable[[], float]):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "soak"
        self._deadline = clock() + timeout
        self._clock = clock

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - self._clock()) * 1000), 0)


def http_event(body: bytes, headers: dict[str, str], now: float) -> dict[str, Any]:
    """An HTTP API payload 2.0 event for POST /hooks/soak, as API Gateway builds it."""
    request_id = uuid.uuid4().hex[:16]
    return {
        "version": "2.0",
        "routeKey": "ANY /hooks/{source}",
        "rawPath": f"/hooks/{SOURCE}",
        "rawQueryString": "",
        "headers": {**headers, "content-length": str(len(body)), "host": "127.0.0.1"},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "soak",
            "domainName": "127.0.0.1",
            "domainPrefix": "soak",
            "http": {
                "method": "POST",
                "path": f"/hooks/{SOURCE}",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "inqueue-soak",
            },
            "requestId": request_id,
            "routeKey": "ANY /hooks/{source}",
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "pathParameters": {"source": SOURCE},
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS event source record, from a ReceiveMessage answer, as Lambda builds it."""
    attributes = {
        "DataType": "dataType",
        "StringValue": "stringValue",
        "BinaryValue": "binaryValue",
    }
    message_attributes = {
        name: {
            **{attributes[k]: v for k, v in value.items() if k in attributes},
            "stringListValues": [],
            "binaryListValues": [],
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            key: message["Attributes"][key]
            for key in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
            if key in message.get("Attributes", {})
        },
        "messageAttributes": message_attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


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
        self.clock: SteppedClock | None = None

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
        with freeze_time(START) as frozen, _aws_environment(), redirect_stdout(io.StringIO()):
            self.clock = SteppedClock(frozen)
            pipeline = Pipeline(self.settings, self.clock)
            _register(self)
            try:
                accepted, posts = self._send(pipeline)
                pipeline.drain()
                dead = pipeline.dead_letters()
                statuses = pipeline.statuses(accepted)
            finally:
                _register(None)
                pipeline.close()
            simulated = self.clock.elapsed
        return self._account(
            accepted=accepted,
            posts=posts,
            dead=dead,
            statuses=statuses,
            simulated=simulated,
            wall=time.perf_counter() - wall,
        )

    def _send(self, pipeline: Pipeline) -> tuple[set[str], int]:
        assert self.clock is not None
        accepted: set[str] = set()
        posts = 0
        low, high = (int(self.events * edge) for edge in self.faults.outage)
        for plan in self.plans:
            pipeline.queue_down(low <= plan.n < high)
            body = json.dumps({"n": plan.n}).encode()
            headers = {
                "content-type": "application/json",
                "x-event-type": "soak.test",
                "idempotency-key": plan.delivery_id,
                "x-signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
            }
            for _ in range(2 if plan.twice else 1):
                posts += 1
                status, answer = pipeline.post(body, headers)
                if status == 202:
                    if answer["id"] != plan.event_id:
                        raise AssertionError(f"the ingress gave {answer['id']} for {plan.event_id}")
                    accepted.add(plan.event_id)
                elif status != 503:
                    raise AssertionError(f"unexpected answer {status} {answer}")
            self.clock.advance(0.01)
            # The worker runs while the sender sends, as the event source mapping would.
            if plan.n % (self.settings.batch_size * 3) == 0:
                pipeline.poll_until_empty()
        pipeline.queue_down(False)
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
    """moto in-process, with the variables the functions read, restored afterwards."""
    from moto import mock_aws

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


class Pipeline:
    """Ingress and worker wired to moto as the template wires them in AWS: queue, DLQ, tables."""

    def __init__(self, settings: Settings, clock: SteppedClock):
        import boto3

        self.settings = settings
        self.clock = clock
        self.sqs = boto3.client("sqs", region_name=REGION)
        dlq_url = self.sqs.create_queue(QueueName="inqueue-dead-letters")["QueueUrl"]
        dlq_arn = self._arn(dlq_url)
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count})
        self.queue_url = self.sqs.create_queue(
            QueueName="inqueue-events",
            Attributes={"VisibilityTimeout": str(settings.visibility_timeout), "RedrivePolicy": redrive},
        )["QueueUrl"]
        self.queue_arn = self._arn(self.queue_url)
        self.dlq_url = dlq_url
        boto3.client("ssm", region_name=REGION).put_parameter(Name="/inqueue/soak", Value=SECRET, Type="SecureString")
        self.status_table = self._create_table("inqueue-status")
        environment = {
            "INQUEUE_QUEUE_URL": self.queue_url,
            "INQUEUE_SOURCES": json.dumps({SOURCE: {"kind": "generic", "auth": "hmac", "secret": "ssm:/inqueue/soak"}}),
            "INQUEUE_STATUS_TABLE": self.status_table,
            "INQUEUE_IDEMPOTENCY_TABLE": self._create_table("inqueue-idempotency"),
            "POWERTOOLS_SERVICE_NAME": "inqueue-soak",
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
        }
        os.environ.update(environment)
        from inqueue.ingress import Ingress
        from inqueue.observability import logger

        logger.setLevel("CRITICAL")
        self.ingress_sqs = UnreachableSqs(boto3.client("sqs", region_name=REGION))
        self.ingress = Ingress.from_environment(sqs=self.ingress_sqs, clock=clock)
        self.worker = _worker(clock)

    def _arn(self, url: str) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(attributes["QueueArn"])

    def _create_table(self, name: str) -> str:
        import boto3

        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        return name

    def queue_down(self, down: bool) -> None:
        self.ingress_sqs.down = down

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        response = self.ingress.handle(http_event(body, headers, self.clock()), None)
        return int(response["statusCode"]), json.loads(response["body"])

    def poll_once(self) -> int:
        """One event source mapping poll: receive, invoke, delete what succeeded."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.settings.batch_size, 10),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [sqs_record(message, self.queue_arn) for message in messages]}
        context = LambdaContext("inqueue-worker", self.settings.worker_timeout, self.clock)
        try:
            result = self.worker.handle(event, context)
        except (Exception, SimulatedTimeout):  # noqa: BLE001 - any failure of the invocation, as Lambda sees it
            return len(messages)  # the invocation failed: delete nothing, all come back after the visibility timeout
        if context.get_remaining_time_in_millis() <= 0:
            return len(messages)  # overran its timeout: a failure whatever it returned
        failed = _failed_ids(result, {m["MessageId"] for m in messages})
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        return len(messages)

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

    def drain(self) -> None:
        """Poll, and step the clock past visibility timeouts, until the events queue is empty."""
        step = 15.0
        bound = int((self.settings.max_receive_count + 2) * (self.settings.visibility_timeout + 60) / step) + 10_000
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
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=3600,
                AttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return dead
            for message in messages:
                event_id = json.loads(message["Body"])["id"]
                receives = int(message["Attributes"]["ApproximateReceiveCount"]) - 1
                dead.setdefault(event_id, []).append(receives)

    def statuses(self, event_ids: set[str]) -> dict[str, str | None]:
        from inqueue.status import StatusStore

        store = StatusStore(self.status_table)
        statuses = {}
        for event_id in event_ids:
            record = store.get(event_id)
            statuses[event_id] = record.get("status") if record else None
        return statuses

    def close(self) -> None:
        self.queue_down(False)


def _failed_ids(result: Any, batch: set[str]) -> set[str]:
    """The records to keep, per ReportBatchItemFailures; a malformed answer fails the whole batch."""
    if result in (None, "", {}):
        return set()
    if not isinstance(result, dict):
        return batch
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    ids = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not item or item not in batch:
            return batch
        ids.add(item)
    return ids


_registered = False


def _worker(clock: Callable[[], float]) -> Any:
    """The worker as functions/worker/app.py builds it (same router, same settings), on the stepped clock."""
    global _registered  # noqa: PLW0603 - the user's router is module state: register the soak processor once
    if str(WORKER_DIR) not in sys.path:
        sys.path.insert(0, str(WORKER_DIR))
    import processors
    from inqueue.settings import WorkerSettings
    from inqueue.worker import Worker

    if not _registered:
        processors.router.on(SOURCE)(_soak_processor)
        _registered = True
    return Worker(processors.router, WorkerSettings.from_env(), clock=clock)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", "-n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    settings = Settings.from_template()
    print(
        f"soak: {args.events} events, seed {args.seed}, backend moto in-process, stepped clock; "
        f"MaxReceiveCount {settings.max_receive_count}, visibility {settings.visibility_timeout} s, "
        f"worker timeout {settings.worker_timeout} s, batch {settings.batch_size}",
        flush=True,
    )
    account = Soak(args.events, args.seed, Faults(), settings).run()
    print(account.table())
    return 0 if account.ok else 1


if __name__ == "__main__":
    sys.exit(main())
