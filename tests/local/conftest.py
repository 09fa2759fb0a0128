"""The runner's conformance fixtures: moto in-process (no sockets) on a clock the test steps."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from inqueue_local.backends import InProcess
from inqueue_local.clock import FakeClock
from inqueue_local.pipeline import Log, Pipeline
from inqueue_local.template import Template
from tests.local import recorder

HERE = Path(__file__).parent
TEST_TEMPLATE = HERE / "templates" / "pipeline.yaml"
ROOT = HERE.parent.parent


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One clock for the runner and for moto's SQS (visibility, timestamps)."""
    import moto.sqs.models as sqs_models

    fake = FakeClock()
    monkeypatch.setattr(sqs_models, "unix_time", lambda *_: fake.now())
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda *_: fake.now() * 1000)
    return fake


@pytest.fixture(autouse=True)
def _reset_recorder() -> Iterator[None]:
    recorder.reset()
    yield
    recorder.reset()


@pytest.fixture
def make_pipeline(aws: None, clock: FakeClock) -> Callable[..., Pipeline]:
    def make(template: Path = TEST_TEMPLATE, config_dir: Path | None = None, **overrides: Any) -> Pipeline:
        loaded = Template.load(template, {k: str(v) for k, v in overrides.items()})
        return Pipeline(loaded, InProcess(), clock, log=Log(write=lambda _line: None), config_dir=config_dir).start(
            prefix_output=False
        )

    return make


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
