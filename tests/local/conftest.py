"""The runner's conformance fixtures: each row runs on one or more backends ("lanes").

* ``moto``: moto in-process (no sockets), on a clock the test steps that also drives
  moto's SQS time (visibility timeouts, timestamps).
* ``localstack``: LocalStack's core on 127.0.0.1, one per session (``make localstack-test``,
  ``pytest -m localstack``). Its SQS runs on real time: a row there never steps SQS time;
  it ends a visibility timeout with ``ChangeMessageVisibility(0)`` (``Lane.expire``), the
  same call the runner makes to give a message back. Rows that are about the timeout
  itself run on moto only. The runner's own clock (batching window, Lambda timeout) is
  still the test's ``FakeClock`` on both.

A row names its lanes with ``@pytest.mark.backends("moto", ...)`` (default: every lane).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from inqueue_local.backends import Backend, InProcess
from inqueue_local.clock import FakeClock
from inqueue_local.inprocess import InProcessRuntime
from inqueue_local.motoserver import keep_fifo_group_order
from inqueue_local.pipeline import Log, Pipeline
from inqueue_local.template import Template
from tests.local import recorder

HERE = Path(__file__).parent
TEST_TEMPLATE = HERE / "templates" / "pipeline.yaml"
ROOT = HERE.parent.parent
LANES = ("moto", "localstack")
_stacks = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends(*names): the lanes (moto, localstack) a conformance row runs on")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lane" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = marker.args if marker else LANES
    metafunc.parametrize(
        "lane",
        [
            pytest.param(name, id=name, marks=[pytest.mark.localstack, pytest.mark.enable_socket])
            if name == "localstack"
            else pytest.param(name, id=name)
            for name in names
        ],
        indirect=True,
    )


@dataclass
class Lane:
    """What a row needs to know about the backend it runs on."""

    name: str
    backend: Backend
    clock: FakeClock

    @property
    def steps_backend_time(self) -> bool:
        return self.name == "moto"

    def expire(self, pipeline: Pipeline, queue: str, records: Sequence[dict[str, Any]]) -> None:
        """End the visibility timeout of these received records: step moto's time, or give them back at once."""
        if self.steps_backend_time:
            self.clock.advance(pipeline.queues[queue].visibility_timeout + 1)
            return
        sqs = pipeline.backend.client("sqs")
        for record in records:
            sqs.change_message_visibility(
                QueueUrl=pipeline.queues[queue].url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )

    def xfail_on(self, request: pytest.FixtureRequest, name: str, reason: str) -> None:
        if self.name == name:
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.fixture(scope="session")
def localstack_backend() -> Iterator[Backend]:
    """One LocalStack for the session (installed on first use); stopped at the end, also on failure."""
    from inqueue_local.localstack import LocalStack

    backend = LocalStack(root=ROOT / ".local" / "localstack-test")
    backend.start()
    try:
        yield backend
    finally:
        backend.stop()


@pytest.fixture
def lane(request: pytest.FixtureRequest, clock: FakeClock) -> Lane:
    if request.param == "localstack":
        return Lane("localstack", request.getfixturevalue("localstack_backend"), clock)
    request.getfixturevalue("aws")  # moto's in-process mock, for this test only
    return Lane("moto", InProcess(), clock)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One clock for the runner and for moto's SQS (visibility, timestamps)."""
    import moto.sqs.models as sqs_models

    fake = FakeClock()
    monkeypatch.setattr(sqs_models, "unix_time", lambda *_: fake.now())
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda *_: fake.now() * 1000)
    # The fix `make run`'s moto gets (motoserver.py): a FIFO group comes back in order.
    monkeypatch.setattr(sqs_models.SQSBackend, "receive_message", keep_fifo_group_order)
    return fake


@pytest.fixture(autouse=True)
def _reset_recorder() -> Iterator[None]:
    recorder.reset()
    yield
    recorder.reset()


@pytest.fixture
def make_pipeline(lane: Lane, clock: FakeClock) -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def make(template: Path = TEST_TEMPLATE, config_dir: Path | None = None, **overrides: Any) -> Pipeline:
        # A shared LocalStack outlives the test: every test gets queues of its own.
        stack = f"t{next(_stacks)}" if lane.name == "localstack" else None
        loaded = Template.load(template, {k: str(v) for k, v in overrides.items()}, stack_name=stack)
        # The stepped clock is this process's: functions run in it (inprocess.py), not in child processes.
        pipeline = Pipeline(
            loaded, lane.backend, clock, log=Log(write=lambda _line: None), config_dir=config_dir,
            runtime=InProcessRuntime,
        )  # fmt: skip
        made.append(pipeline)
        return pipeline.start()

    yield make
    if lane.name == "localstack":
        sqs = lane.backend.client("sqs")
        for pipeline in made:
            for info in pipeline.queues.values():
                sqs.delete_queue(QueueUrl=info.url)


def send(pipeline: Pipeline, queue: str, *bodies: Any, **extra: Any) -> list[str]:
    sqs = pipeline.backend.client("sqs")
    ids = []
    for body in bodies:
        text = body if isinstance(body, str) else json.dumps(body)
        ids.append(sqs.send_message(QueueUrl=pipeline.queues[queue].url, MessageBody=text, **extra)["MessageId"])
    return ids


def depth(pipeline: Pipeline, queue: str) -> tuple[int, int]:
    """(visible, in flight) of a queue."""
    attributes = pipeline.backend.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.queues[queue].url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])
