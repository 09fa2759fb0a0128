"""The operator CLI against a running `make run`, on both backends, as the issue's user tried it:
dead-letter events through the real pipeline, redrive them all with `inqueue dlq redrive --all --local`
(progress, then a count), and read a status with `inqueue status --local`.

On moto the redrive goes by batches (no StartMessageMoveTask); on LocalStack by a move task. On
LocalStack, DynamoDB is moto's: the state file's per-service endpoints are what make status work.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from inqueue_local import endpoints
from inqueue_local.backends import Backend, MotoServer
from inqueue_local.pipeline import Log
from inqueue_local.runner import Runner
from inqueue_local.template import Template
from inqueue_ops import cli

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 30
FAILING_BODY = b'{"type":"demo.always_fails","id":"ord_1002","data":{"order_id":1002}}'


def _localstack() -> Backend:
    from inqueue_local.localstack import LocalStack

    return LocalStack(root=ROOT / ".local" / "localstack-ops-e2e")


@dataclass
class Running:
    runner: Runner
    url: str
    state: Path
    dead: Callable[[int], bool]  # waits until the DLQ holds this many


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(MotoServer, id="moto"),
        pytest.param(_localstack, id="localstack", marks=pytest.mark.localstack),
    ],
)
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # GIVEN `make run PARAMS="MaxReceiveCount=1 ..."`: the first failure dead-letters an event
    state = tmp_path_factory.mktemp("local") / "endpoints.json"

    template = Template.load(
        ROOT / "infra" / "template.yaml",
        {"MaxReceiveCount": "1", "QueueVisibilityTimeout": "30", "WorkerTimeout": "5"},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(endpoints, "STATE_FILE", state)  # not the developer's own .local/endpoints.json
        runner = Runner(template, request.param(), port=0, config_dir=ROOT / "config", log=Log(write=lambda _: None))
        url = runner.start()

        def dead(count: int) -> bool:
            sqs = runner.backend.client("sqs")
            dlq = json.loads(state.read_text())["outputs"]["DeadLetterQueueUrl"]
            for _ in range(480):  # up to 2 minutes
                attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
                if int(attributes["Attributes"]["ApproximateNumberOfMessages"]) >= count:
                    return True
                threading.Event().wait(0.25)
            return False

        try:
            yield Running(runner, url, state, dead)
        finally:
            runner.stop()


def post_failing(url: str, count: int) -> list[str]:
    ids = []
    signature = "sha256=" + hmac.new(b"local-demo-secret", FAILING_BODY, hashlib.sha256).hexdigest()
    for n in range(count):
        headers = {
            "content-type": "application/json",
            "x-signature": signature,
            "x-event-type": "demo.always_fails",
            "idempotency-key": f"ops-e2e-{n}",
        }
        request = urllib.request.Request(f"{url}/hooks/demo", data=FAILING_BODY, headers=headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            assert answer.status == 202
            ids.append(json.loads(answer.read())["id"])
    return ids


def inqueue(*argv: str, state: Path, terminal: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main([*argv, "--local-state", str(state)], out=out, err=err, terminal=terminal)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_dead_letters_are_redriven_with_progress_and_a_count_and_their_status_reads(running: Running) -> None:
    # GIVEN events that failed and were dead-lettered by the running pipeline
    ids = post_failing(running.url, EVENTS)
    assert running.dead(EVENTS), "the DLQ did not fill"
    code, listing, _ = inqueue("dlq", "list", "--json", state=running.state)
    assert code == 0
    assert set(ids) <= {row["id"] for row in json.loads(listing)}

    # WHEN the operator redrives them all, on a terminal
    code, output, err = inqueue("dlq", "redrive", "--all", state=running.state, terminal=True)

    # THEN a progress bar reached the end, and the count says every one moved
    assert code == 0, err
    assert f"{EVENTS}/{EVENTS}" in err
    method = "StartMessageMoveTask" if running.runner.backend.name == "localstack" else "SendMessageBatch"
    assert output.splitlines()[-1] == f"moved {EVENTS}, failed 0 (by {method})"

    # AND the status of one of them reads through the state file's DynamoDB endpoint
    code, record, err = inqueue("status", ids[0], "--json", state=running.state)
    assert code == 0, err
    assert json.loads(record)["status"] in ("queued", "processing", "retrying", "dead")
    code, table, _ = inqueue("status", ids[0], state=running.state)
    assert (code, table.splitlines()[0].split()) == (0, ["FIELD", "VALUE"])


SENDABLE = sorted(p.name for p in (ROOT / "events").glob("apigw-*.json") if p.name != "apigw-demo-status.json")


@pytest.mark.e2e
@pytest.mark.enable_socket
@pytest.mark.parametrize("name", SENDABLE)
def test_make_send_of_every_example_is_accepted_now(
    running: Running, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an example signed (or, for Bitrix24, sent) long ago; WHEN `make send` posts it to the runner
    from inqueue_local import __main__ as runner_cli

    code = runner_cli.main(["send", str(ROOT / "events" / name), "--url", running.url])

    # THEN it was made fresh (re-signed, or its ts set to now) and accepted, and make send exits 0
    status = capsys.readouterr().out.split(" ", 1)[0]
    assert (code, status) in ((0, "202"), (0, "200"))
