"""The console beside make run on each backend, through its JSON: the oldest message's age read without a
receive (moto's model on moto, LocalStack's developer endpoint on LocalStack), events listed from the index,
a succeeded event replayed from its archived envelope. The browser tests (moto) are test_console_browser.py."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from inqueue_local import endpoints
from inqueue_local.backends import Backend, MotoServer
from inqueue_local.pipeline import Log
from inqueue_local.runner import Runner
from inqueue_local.template import Template
from inqueue_ops.console.server import ConsoleService
from inqueue_ops.console.web import TOKEN_HEADER
from tests.e2e.test_console_browser import post

ROOT = Path(__file__).resolve().parents[2]


def _localstack() -> Backend:
    from inqueue_local.localstack import LocalStack

    return LocalStack(root=ROOT / ".local" / "localstack-console-e2e")


@pytest.fixture(
    scope="module",
    params=[
        pytest.param((MotoServer, "moto's queue model (make run)"), id="moto"),
        pytest.param((_localstack, "LocalStack's /_aws/sqs/messages"), id="localstack", marks=pytest.mark.localstack),
    ],
)
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ...]]:
    make_backend, oldest_from = request.param
    template = Template.load(
        ROOT / "infra" / "template.yaml",
        {"MaxReceiveCount": "1", "QueueVisibilityTimeout": "30", "WorkerTimeout": "5", "EnvelopeArchive": "true"},
    )
    console = ConsoleService(0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(endpoints, "STATE_FILE", tmp_path_factory.mktemp("local") / "endpoints.json")
        runner = Runner(
            template, make_backend(), port=0, config_dir=ROOT / "config", log=Log(write=lambda _: None),
            services=[console],
        )  # fmt: skip
        api = runner.start()
        assert console.server is not None
        try:
            yield api, console.server, oldest_from
        finally:
            runner.stop()


def get(server: Any, path: str) -> Any:
    with urllib.request.urlopen(f"{server.url}{path}", timeout=10) as answer:  # noqa: S310 - loopback
        return json.loads(answer.read())


def until(check: Callable[[], Any], seconds: float = 30) -> Any:
    for _ in range(int(seconds * 4)):
        value = check()
        if value:
            return value
        threading.Event().wait(0.25)
    raise AssertionError("not in time")


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_the_console_reads_each_backend_without_receiving_from_its_queues(running: tuple[Any, ...]) -> None:
    api, server, oldest_from = running

    # GIVEN an event that succeeded and one that died (MaxReceiveCount=1)
    ok = post(api, "order.created", "console-backend-ok")
    dead = post(api, "demo.always_fails", "console-backend-dead")
    until(lambda: get(server, f"/api/events/{ok}")["record"]["status"] == "succeeded")
    until(lambda: get(server, "/api/queues")[1]["visible"] == 1)

    # WHEN the console reads the queues / THEN the DLQ's oldest age comes from the backend's own state
    dlq = get(server, "/api/queues")[1]
    assert dlq["name"] == "dead letters"
    assert dlq["oldest_from"] == oldest_from
    assert dlq["oldest_age_seconds"] is not None
    assert 0 <= dlq["oldest_age_seconds"] < 60

    # AND the events are listed from the index, newest first
    listed = [row["id"] for row in get(server, "/api/events")["events"]]
    assert listed[:2] == [dead, ok]

    # AND the succeeded one replays from its archived envelope
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{server.url}/api/events/{ok}/replay",
        data=b"{}",
        headers={"Content-Type": "application/json", TOKEN_HEADER: server.token},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
        assert json.loads(answer.read())["summary"] == "replayed 1, failed 0"
    history = until(
        lambda: [e for e in get(server, f"/api/events/{ok}")["record"]["history"] if e.get("reason") == "duplicate"]
    )
    assert history[0]["status"] == "succeeded"
