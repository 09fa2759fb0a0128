"""End to end through real loopback sockets: the backend, HTTP server, poller threads.

The LocalStack lane (``make localstack-test``) is ``make run BACKEND=localstack`` itself:
the runner installs if needed, starts, checks and stops LocalStack.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from inqueue_local.backends import Backend, MotoServer
from inqueue_local.pipeline import Log
from inqueue_local.runner import Runner
from inqueue_local.template import Template

ROOT = Path(__file__).resolve().parent.parent.parent


def _localstack() -> Backend:
    from inqueue_local.localstack import LocalStack

    return LocalStack(root=ROOT / ".local" / "localstack-e2e")


@pytest.mark.e2e
@pytest.mark.enable_socket
@pytest.mark.parametrize(
    "make_backend",
    [pytest.param(MotoServer, id="moto"), pytest.param(_localstack, id="localstack", marks=pytest.mark.localstack)],
)
def test_posted_demo_event_is_processed_by_the_worker(make_backend: Callable[[], Backend]) -> None:
    # GIVEN `make run` on free ports
    processed = threading.Event()
    lines: list[str] = []

    def watch(line: str) -> None:
        lines.append(line)
        if "WorkerFunction" in line and "deleted 1, left 0" in line:
            processed.set()

    runner = Runner(
        Template.load(ROOT / "infra" / "template.yaml"),
        make_backend(),
        port=0,
        config_dir=ROOT / "config",
        log=Log(write=watch),
    )
    url = runner.start()
    try:
        # WHEN the README's demo event is posted over HTTP
        example = json.loads((ROOT / "events" / "apigw-demo-json.json").read_text())
        headers = {
            k: v
            for k, v in example["headers"].items()
            if k in ("content-type", "x-signature", "x-event-type", "idempotency-key")
        }
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{url}/hooks/demo", data=example["body"].encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            status, body = response.status, json.loads(response.read())

        # THEN it is accepted and the worker deletes it after processing
        assert (status, body["status"]) == (202, "queued")
        assert processed.wait(15), "\n".join(lines)
    finally:
        runner.stop()
    assert any("POST /hooks/demo -> 202" in line for line in lines)
    assert any(f"-> backend {runner.backend.name} " in line for line in lines if "ready:" in line)


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_a_worker_past_its_timeout_is_stopped_at_the_deadline_and_retried(tmp_path: Path) -> None:
    # GIVEN `make run` on a 1 s worker whose first receive of a message sleeps 3 s, then writes to a log,
    # and a queue whose visibility timeout (2 s) brings the message back soon
    template = Template.load(
        ROOT / "tests" / "local" / "templates" / "runtime.yaml", {"Timeout": "1", "Visibility": "2"}
    )
    lines: list[str] = []
    done = threading.Event()
    log = tmp_path / "receives.log"

    def watch(line: str) -> None:
        lines.append(line)
        if "Worker" in line and "ok: deleted 1" in line:
            done.set()

    runner = Runner(template, MotoServer(), port=0, log=Log(write=watch), reload=False)
    runner.start()
    try:
        # WHEN a message arrives
        sqs = runner.backend.client("sqs")
        assert runner.pipeline is not None
        url = runner.pipeline.queues["Queue"].url
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"sleep": 3, "log": str(log)}))

        # THEN the second receive succeeds (bounded wait on a condition, not a timing)
        assert done.wait(30), "\n".join(lines)
    finally:
        runner.stop()
    # and the first was killed at its deadline: what it would have done after the sleep never happened
    assert log.read_text().splitlines() == ["receive 1 start", "receive 2 start", "receive 2 done"]
    assert any("Task timed out after 1.00 seconds" in line for line in lines)
    assert any("REPORT RequestId:" in line and "Status: timeout" in line for line in lines)
    assert any("Task timed out" in line and "deleted 0, left 1" in line for line in lines)


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_a_second_ctrl_c_stops_everything_in_order_without_waiting_for_work_in_flight(tmp_path: Path) -> None:
    # GIVEN `make run` with a worker busy on a 60 s message (its timeout 90 s), so a plain stop would wait for it
    template = Template.load(
        ROOT / "tests" / "local" / "templates" / "runtime.yaml", {"Timeout": "90", "Visibility": "600"}
    )
    lines: list[str] = []
    stopping = threading.Event()
    log = tmp_path / "receives.log"

    def watch(line: str) -> None:
        lines.append(line)
        if "stopping:" in line:
            stopping.set()

    runner = Runner(template, MotoServer(), port=0, log=Log(write=watch), reload=False)
    runner.start()
    sqs = runner.backend.client("sqs")
    assert runner.pipeline is not None
    sqs.send_message(
        QueueUrl=runner.pipeline.queues["Queue"].url, MessageBody=json.dumps({"sleep": 60, "log": str(log)})
    )
    for _ in range(300):  # the invocation has begun (bounded wait on a condition)
        if log.exists() and "receive 1 start" in log.read_text():
            break
        time.sleep(0.1)
    moto = runner.backend._process  # the child we expect to be gone
    assert moto is not None

    # WHEN Ctrl-C is pressed (the runner starts its orderly stop), then again
    stopper = threading.Thread(target=runner.stop)
    stopper.start()
    assert stopping.wait(30), "\n".join(lines)
    runner.hurry()
    stopper.join(20)  # a plain stop waits 30 s for the batch in flight (the mapping's close), then kills it

    # THEN the stop ended: the busy environment was ended, the pollers stopped before the data plane
    # (no poll failed against a stopped moto), and moto's child is gone
    assert not stopper.is_alive(), "\n".join(lines)
    assert any("second Ctrl-C" in line for line in lines)
    assert lines[-1].endswith("stopped")
    assert not any("poll failed" in line for line in lines), "\n".join(lines)
    assert "after the sleep" not in log.read_text()
    assert moto.poll() is not None
