"""infra/template.yaml as CloudFormation sees it: parsed, transformed by SAM, values resolved.

SAM event properties and Globals escape sam validate, cfn-lint and checkov (a typo in
``FunctionResponseTypes`` passes all three), so the template tests read the output of
aws-sam-translator, run in-process with no network and no credentials.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

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

# What `!Ref AWS::NoValue` resolves to: the property is absent. Dropped from resolved objects and lists.
NO_VALUE: Any = type("NoValue", (), {"__repr__": lambda self: "NO_VALUE"})()


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
    """Evaluates the intrinsics the template uses, with the parameters' defaults.

    A reference to a resource stays symbolic (``("Ref", id)``, ``("GetAtt", id, attr)``),
    except a queue's ARN and name, which are computed as SQS would make them so that the
    DLQ's RedriveAllowPolicy (written as an ARN string) can be compared with the queue.
    """

    def __init__(self, cfn: Template, overrides: dict[str, Any] | None = None):
        self.cfn = cfn
        self.params = {**defaults(cfn), **(overrides or {})}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self(item) for item in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Sub", "Fn::If"):
            ((key, arg),) = value.items()
            return self._intrinsic(key, arg)
        resolved = {key: self(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _intrinsic(self, key: str, arg: Any) -> Any:
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(name, attr)
        if key == "Fn::Sub":
            return self.sub(arg)
        condition, when_true, when_false = arg  # Fn::If
        return self(when_true if self.condition(condition) else when_false)

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.cfn["Conditions"][name]))

    def _evaluate(self, expression: Any) -> Any:
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, arg),) = expression.items()
            if key == "Fn::Equals":
                return str(self._evaluate(arg[0])) == str(self._evaluate(arg[1]))
            if key == "Fn::Not":
                return not self._evaluate(arg[0])
            if key == "Fn::And":
                return all(self._evaluate(item) for item in arg)
            if key == "Fn::Or":
                return any(self._evaluate(item) for item in arg)
            if key == "Condition":
                return self.condition(arg)
        return self(expression)

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        if name not in self.cfn["Resources"]:
            raise KeyError(f"Ref to unknown {name}")
        return ("Ref", name)

    def get_att(self, name: str, attr: str) -> Any:
        if name not in self.cfn["Resources"]:
            raise KeyError(f"GetAtt of unknown {name}")
        if self.cfn["Resources"][name]["Type"] == "AWS::SQS::Queue" and attr in ("Arn", "QueueName"):
            queue_name = self.queue_name(name)
            return queue_name if attr == "QueueName" else f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}"
        return ("GetAtt", name, attr)

    def queue_name(self, name: str) -> str:
        given = self(props(self.cfn, name).get("QueueName"))
        # CloudFormation's generated names look like this; what matters is that they differ.
        return str(given) if given not in (None, NO_VALUE) else f"{STACK}-{name}-GENERATED"

    def sub(self, arg: Any) -> str:
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr in local:
                return str(self(local[expr]))
            if "." in expr and expr.split(".", 1)[0] in self.cfn["Resources"]:
                return str(self.get_att(*expr.split(".", 1)))
            return str(self.ref(expr))

        return re.sub(r"\$\{([^!}][^}]*)\}", replace, text)
