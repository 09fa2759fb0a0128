"""infra/template.yaml as CloudFormation sees it: parsed, transformed by SAM, values resolved.

SAM event properties and Globals escape sam validate, cfn-lint and checkov (a typo in
``FunctionResponseTypes`` passes all three), so the template tests read the output of
aws-sam-translator, run in-process with no network and no credentials.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from inqueue_local.template import NO_VALUE, Intrinsics

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"

STACK = "inqueue"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::StackName": STACK,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}

Template = dict[str, Any]


def load_sam(path: Path = TEMPLATE) -> Template:
    """The template as written (the SAM dialect), short-form tags turned into ``Fn::`` keys."""
    return yaml_parse(path.read_text())


def transform(sam: Template) -> Template:
    """What CloudFormation deploys: SAM's own translator, as `sam deploy` would run it."""
    sam = copy.deepcopy(sam)
    for resource in sam["Resources"].values():
        # The translator wants artifacts in S3; `sam build`/`sam package` put them there.
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/function.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://artifacts/layer.zip"

    def no_managed_policy_names() -> dict[str, str]:
        raise AssertionError("the template names a managed policy by name; use its ARN")

    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    return translator.translate(sam, parameter_values={}, get_managed_policy_map=no_managed_policy_names)


def resources_of_type(cfn: Template, type_: str) -> dict[str, Template]:
    return {name: res for name, res in cfn["Resources"].items() if res["Type"] == type_}


def props(cfn: Template, logical_id: str) -> Template:
    return cfn["Resources"][logical_id].get("Properties", {})


def defaults(cfn: Template) -> dict[str, Any]:
    return {name: p["Default"] for name, p in cfn.get("Parameters", {}).items() if "Default" in p}


def number(value: Any) -> int:
    return int(value)


class Resolver:
    """The template's intrinsics with the parameters' defaults, by the runner's resolver (``template.Intrinsics``).

    A reference to a resource stays symbolic (``("Ref", id)``, ``("GetAtt", id, attr)``),
    except a queue's ARN and name, which are computed as SQS would make them so that the
    DLQ's RedriveAllowPolicy (written as an ARN string) can be compared with the queue.
    """

    def __init__(self, cfn: Template, overrides: dict[str, Any] | None = None):
        self.cfn = cfn
        self.params = {**defaults(cfn), **(overrides or {})}
        pseudo = {**PSEUDO, "AWS::NoValue": NO_VALUE}
        self.intrinsics = Intrinsics(cfn, self.params, pseudo, self._resource)

    def __call__(self, value: Any) -> Any:
        return self.intrinsics.resolve(value)

    def condition(self, name: str) -> bool:
        return self.intrinsics.condition(name)

    def _resource(self, name: str, attr: str | None) -> Any:
        if attr is None:
            return ("Ref", name)
        if self.cfn["Resources"][name]["Type"] == "AWS::SQS::Queue" and attr in ("Arn", "QueueName"):
            queue_name = self.queue_name(name)
            return queue_name if attr == "QueueName" else f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}"
        return ("GetAtt", name, attr)

    def queue_name(self, name: str) -> str:
        given = self(props(self.cfn, name).get("QueueName"))
        # CloudFormation's generated names look like this; what matters is that they differ.
        return str(given) if given is not None else f"{STACK}-{name}-GENERATED"
