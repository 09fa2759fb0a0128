"""The status route as deployed: IAM-authorised, read-only on the status table, long enough to wait."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from inqueue.status_api import MAX_WAIT_SECONDS
from tests.template.cfn import Template, load_sam, number, props, transform

SAM = load_sam()


@pytest.fixture(scope="module")
def cfn() -> Template:
    return transform(SAM)


def paths(cfn: Template) -> dict[str, Any]:
    return dict(props(cfn, "HttpApi")["Body"]["paths"])


def test_the_status_route_requires_iam_auth(cfn: Template) -> None:
    # GIVEN the deployed HTTP API
    route = paths(cfn)["/events/{id}"]

    # THEN GET /events/{id} is its only method, goes to the status function, and needs SigV4
    assert set(route) == {"get"}
    assert "${StatusFunction.Arn}" in route["get"]["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
    assert route["get"]["security"] == [{"AWS_IAM": []}]
    schemes = props(cfn, "HttpApi")["Body"]["components"]["securitySchemes"]
    assert schemes["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_the_webhook_route_stays_open_to_senders(cfn: Template) -> None:
    route = paths(cfn)["/hooks/{source}"]

    assert all("security" not in operation for operation in route.values())


def test_the_status_function_may_only_get_items_from_the_status_table(cfn: Template) -> None:
    role = props(cfn, "StatusFunctionRole")

    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert statements == [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["StatusTable", "Arn"]}}
    ]


def test_the_status_function_outlives_the_longest_wait_within_api_gateways_limit(cfn: Template) -> None:
    timeout = number(props(cfn, "StatusFunction")["Timeout"])

    assert MAX_WAIT_SECONDS + 1 <= timeout <= 30


def test_readers_get_a_policy_for_exactly_this_route(cfn: Template) -> None:
    (statement,) = props(cfn, "StatusReaderPolicy")["PolicyDocument"]["Statement"]

    assert statement["Action"] == "execute-api:Invoke"
    assert statement["Resource"]["Fn::Sub"].endswith("${HttpApi}/$default/GET/events/*")
    assert cfn["Outputs"]["StatusReaderPolicyArn"]["Value"] == {"Ref": "StatusReaderPolicy"}
    assert cfn["Outputs"]["StatusTableName"]["Value"] == {"Ref": "StatusTable"}


def test_without_the_iam_authorizer_the_route_would_be_public() -> None:
    # GIVEN the template with the route's Auth removed (proves the first test can fail)
    sam = copy.deepcopy(SAM)
    del sam["Resources"]["StatusFunction"]["Properties"]["Events"]["Status"]["Properties"]["Auth"]

    route = paths(transform(sam))["/events/{id}"]

    assert "security" not in route["get"]
