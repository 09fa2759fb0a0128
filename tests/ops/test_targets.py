"""Where the CLI finds an Inqueue: the local runner's state file (an endpoint per service) or a stack's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from inqueue_ops import cli
from inqueue_ops.targets import Targets, boto_client, find_local_state, resolve

OUTPUTS = {"EventsQueueUrl": "q", "DeadLetterQueueUrl": "d", "StatusTableName": "t"}


def test_targets_come_from_the_local_runner_state_file_with_an_endpoint_per_service(tmp_path: Path) -> None:
    # GIVEN the file `make run BACKEND=localstack` writes: DynamoDB is moto's, the rest LocalStack's
    state = tmp_path / "endpoints.json"
    endpoints = {"sqs": "http://127.0.0.1:4566", "s3": "http://127.0.0.1:4566", "dynamodb": "http://127.0.0.1:5123"}
    state.write_text(
        json.dumps(
            {"endpoint_url": "http://127.0.0.1:4566", "endpoints": endpoints, "region": "eu-west-1", "outputs": OUTPUTS}
        )
    )

    # WHEN the CLI is told --local
    targets = resolve(local_state=state, env={})

    # THEN each service's client goes to that service's endpoint
    assert (targets.queue_url, targets.dlq_url, targets.status_table, targets.region) == ("q", "d", "t", "eu-west-1")
    assert targets.local
    assert boto_client("dynamodb", targets).meta.endpoint_url == "http://127.0.0.1:5123"
    assert boto_client("sqs", targets).meta.endpoint_url == "http://127.0.0.1:4566"


def test_a_state_file_with_one_endpoint_means_it_for_every_service(tmp_path: Path) -> None:
    state = tmp_path / "endpoints.json"
    state.write_text(json.dumps({"endpoint_url": "http://127.0.0.1:5000", "region": "us-east-1", "outputs": OUTPUTS}))

    targets = resolve(local_state=state, env={})

    assert targets.endpoint("dynamodb") == targets.endpoint("sqs") == "http://127.0.0.1:5000"


def test_the_state_file_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "endpoints.json").write_text("{}")
    deeper = tmp_path / "functions" / "worker"
    deeper.mkdir(parents=True)

    assert find_local_state(deeper) == tmp_path / ".local" / "endpoints.json"


def test_without_a_running_runner_the_cli_says_to_start_it(tmp_path: Path) -> None:
    with pytest.raises(cli.DlqError, match=r"start the local runner \(make run\)"):
        resolve(local_state=tmp_path / "missing.json", env={})


def test_a_stack_uses_the_sdks_own_endpoints(aws: None) -> None:
    # GIVEN a deployed stack (moto's CloudFormation) with the template's outputs
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    template = {
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "EventsQueueUrl": {"Value": "https://sqs/events"},
            "DeadLetterQueueUrl": {"Value": "https://sqs/dlq"},
            "StatusTableName": {"Value": "inqueue-status"},
        },
    }
    cfn.create_stack(StackName="inqueue", TemplateBody=json.dumps(template))

    # WHEN the stack is named by AWS_SAM_STACK_NAME
    targets = resolve(region="us-east-1", env={"AWS_SAM_STACK_NAME": "inqueue"})

    # THEN the queues and table come from its outputs, and no endpoint is forced on the SDK
    assert (targets.queue_url, targets.dlq_url, targets.status_table) == (
        "https://sqs/events",
        "https://sqs/dlq",
        "inqueue-status",
    )
    assert targets == Targets(
        "https://sqs/events", "https://sqs/dlq", "inqueue-status", "us-east-1", outputs=targets.outputs
    )
    assert targets.outputs["StatusTableName"] == "inqueue-status"
    assert boto_client("sqs", targets).meta.endpoint_url == "https://sqs.us-east-1.amazonaws.com"
