"""`inqueue --local` against the local runner's pipeline, through the state file it writes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from inqueue_local.backends import Endpoint, InProcess, MotoServer
from inqueue_local.clock import FakeClock
from inqueue_local.endpoints import describe, write_state
from inqueue_local.localstack import LocalStack
from inqueue_local.pipeline import Log, Pipeline
from inqueue_local.template import Template
from inqueue_ops import cli
from tests.factories import make_envelope

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


def test_localstack_names_moto_for_dynamodb_and_itself_for_the_rest(tmp_path: Path) -> None:
    # GIVEN a LocalStack backend as it is once started: its own endpoint, and moto's for DynamoDB
    backend = LocalStack(root=tmp_path)
    backend.endpoint_url = "http://127.0.0.1:4566"
    backend.dynamodb.endpoint_url = "http://127.0.0.1:5123"

    # THEN the state file, the functions and the runner's own clients all send DynamoDB to moto
    endpoints = backend.endpoints()
    assert endpoints["dynamodb"] == "http://127.0.0.1:5123"
    assert {endpoints[s] for s in ("sqs", "s3", "ssm", "secretsmanager", "sts")} == {"http://127.0.0.1:4566"}
    env = backend.function_environment()
    assert (env["AWS_ENDPOINT_URL"], env["AWS_ENDPOINT_URL_DYNAMODB"]) == (
        "http://127.0.0.1:4566",
        "http://127.0.0.1:5123",
    )
    assert "AWS_ENDPOINT_URL_SQS" not in env
    assert backend.client("dynamodb").meta.endpoint_url == "http://127.0.0.1:5123"
    assert backend.client("sqs").meta.endpoint_url == "http://127.0.0.1:4566"


def test_moto_is_one_endpoint_for_every_service() -> None:
    backend = MotoServer()
    backend.endpoint_url = "http://127.0.0.1:5000"

    assert set(backend.endpoints().values()) == {"http://127.0.0.1:5000"}
    assert [name for name in backend.function_environment() if name.startswith("AWS_ENDPOINT_URL")] == [
        "AWS_ENDPOINT_URL"
    ]


def test_an_endpoint_takes_the_sdks_per_service_variables() -> None:
    backend = Endpoint.from_environment(
        "http://127.0.0.1:4566", "us-east-1", env={"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000/"}
    )

    assert backend.endpoint("dynamodb") == "http://127.0.0.1:8000"
    assert backend.endpoint("sqs") == "http://127.0.0.1:4566"
    assert backend.function_environment()["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:8000"
    assert "dynamodb at http://127.0.0.1:8000" in backend.describe()
