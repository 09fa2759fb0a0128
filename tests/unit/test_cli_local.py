"""`inqueue --local` against the local runner's pipeline, through the state file it writes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from tests.factories import make_envelope

from inqueue import cli
from inqueue_local.backends import InProcess
from inqueue_local.clock import FakeClock
from inqueue_local.endpoints import describe, write_state
from inqueue_local.pipeline import Log, Pipeline
from inqueue_local.template import Template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner(aws: None) -> Pipeline:
    template = Template.load(ROOT / "infra" / "template.yaml")
    return Pipeline(template, InProcess(), FakeClock(), log=Log(write=lambda _line: None)).start()


def test_the_cli_finds_the_runners_queues_and_status_table_through_the_state_file(
    runner: Pipeline, tmp_path: Path
) -> None:
    # GIVEN the state file the runner writes when it is ready, and a dead letter in its DLQ
    state = write_state(
        describe(runner.template, runner.refs, runner.backend, "http://127.0.0.1:3000"), tmp_path / "e.json"
    )
    outputs = json.loads(state.read_text())["outputs"]
    sqs = runner.backend.client("sqs")
    dead = make_envelope("evt-local", correlation_id="c")
    sqs.send_message(QueueUrl=outputs["DeadLetterQueueUrl"], MessageBody=dead.to_json())

    # WHEN the operator lists the DLQ with --local
    out = io.StringIO()
    code = cli.main(["dlq", "list", "--local", "--local-state", str(state), "--json"], env={}, out=out)

    # THEN the state file names the template's outputs, and the CLI reads the runner's DLQ
    assert {"EventsQueueUrl", "DeadLetterQueueUrl", "StatusTableName", "ApiUrl"} <= set(outputs)
    assert code == 0
    assert [row["id"] for row in json.loads(out.getvalue())] == ["evt-local"]


def test_without_a_running_runner_the_cli_says_to_start_it(tmp_path: Path, capsys: Any) -> None:
    code = cli.main(["dlq", "list", "--local", "--local-state", str(tmp_path / "missing.json")], env={})

    assert code == 1
    assert "make run" in capsys.readouterr().err
