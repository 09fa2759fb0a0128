"""Read ``infra/template.yaml``: parameters, globals, conditions and the intrinsics used.

The template is the single source of every setting; nothing here duplicates it. The
model keeps what the runner plays locally: functions, their HttpApi routes and SQS
event sources, and the data-plane resources (queues, tables, buckets, parameters).
Log groups, alarms, roles and policies are read and ignored.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inqueue_local.filters import FilterCriteriaError, FilterPattern, parse_filter_criteria
from inqueue_local.overrides import OverrideError, parse

DATA_PLANE_TYPES = {
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::Serverless::SimpleTable",
    "AWS::S3::Bucket",
    "AWS::SSM::Parameter",
}


class TemplateError(ValueError):
    """The template (or an override) asks for something AWS would refuse."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags into their long form."""


def _tag_constructor(tag: str) -> Callable[[yaml.Loader, yaml.Node], dict[str, Any]]:
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def construct(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _tag in (
    "Ref", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
    "FindInMap", "Base64", "GetAZs", "ImportValue", "Condition", "Cidr", "ToJsonString", "Length",
):  # fmt: skip
    _CfnLoader.add_constructor(f"!{_tag}", _tag_constructor(_tag))


def load_yaml(text: str) -> dict[str, Any]:
    loaded = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(loaded, dict):
        raise TemplateError("the template is not a mapping")
    return loaded


@dataclass(frozen=True, slots=True)
class HttpRoute:
    function: str
    method: str  # "ANY" or an HTTP method
    path: str  # "/hooks/{source}", "$default" or with {proxy+}
    api: str  # the HttpApi's logical id ("ServerlessHttpApi" when implicit)
    event_name: str

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class SqsSource:
    """One SQS event source mapping, with AWS's defaults applied."""

    function: str
    event_name: str
    queue: str  # the queue's logical id
    batch_size: int = 10
    batching_window: float = 0
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None
    filters: tuple[FilterPattern, ...] = ()
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    timeout: int
    memory_size: int
    environment: Mapping[str, Any]  # unresolved: resources get their local names at start-up
    runtime: str = "python3.13"
    layers: tuple[Path, ...] = ()  # each layer's ContentUri, in the function's order


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    logical_id: str
    type: str
    properties: Mapping[str, Any]


@dataclass
class Template:
    path: Path
    document: dict[str, Any]
    parameters: dict[str, str]
    stack_name: str = "inqueue"
    region: str = "us-east-1"
    account_id: str = "123456789012"
    conditions: dict[str, bool] = field(default_factory=dict)

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(
        cls,
        path: str | Path,
        overrides: Mapping[str, str] | None = None,
        *,
        stack_name: str | None = None,
        region: str | None = None,
        account_id: str = "123456789012",
        samconfig: str | Path | None = None,
    ) -> Template:
        path = Path(path)
        document = load_yaml(path.read_text(encoding="utf-8"))
        config_overrides, config_stack = _samconfig(
            Path(samconfig) if samconfig else path.parent.parent / "samconfig.toml"
        )
        declared = document.get("Parameters") or {}
        # samconfig.toml may carry overrides for a parameter this template dropped; the command line may not.
        merged = {**{k: v for k, v in config_overrides.items() if k in declared}, **(overrides or {})}
        template = cls(
            path=path,
            document=document,
            parameters={},
            stack_name=stack_name or config_stack or "inqueue",
            region=region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
            account_id=account_id,
        )
        template.parameters = template._resolve_parameters(merged)
        template.conditions = template.intrinsics({}).conditions
        return template

    def _resolve_parameters(self, overrides: Mapping[str, str]) -> dict[str, str]:
        declared: dict[str, Any] = self.document.get("Parameters") or {}
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(f"parameter override for undeclared parameter(s): {', '.join(sorted(unknown))}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                value: Any = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no default; pass --parameter-overrides {name}=...")
            values[name] = _check_parameter(name, spec, value)
        return values

    # ---------------------------------------------------------------- the model
    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return {
            name: body
            for name, body in (self.document.get("Resources") or {}).items()
            if not body.get("Condition") or self.conditions.get(body["Condition"], True)
        }

    def data_plane(self) -> list[ResourceSpec]:
        return [
            ResourceSpec(name, body["Type"], body.get("Properties") or {})
            for name, body in self.resources.items()
            if body.get("Type") in DATA_PLANE_TYPES
        ]

    def functions(self) -> dict[str, FunctionSpec]:
        globals_ = ((self.document.get("Globals") or {}).get("Function")) or {}
        found: dict[str, FunctionSpec] = {}
        for name, body in self.resources.items():
            if body.get("Type") != "AWS::Serverless::Function":
                continue
            props = body.get("Properties") or {}
            env = {
                **(((globals_.get("Environment") or {}).get("Variables")) or {}),
                **(((props.get("Environment") or {}).get("Variables")) or {}),
            }
            code_uri = self.resolve(props.get("CodeUri", globals_.get("CodeUri", ".")), {})
            layers = self._layers(name, props.get("Layers", globals_.get("Layers")) or [])
            found[name] = FunctionSpec(
                logical_id=name,
                code_uri=(self.path.parent / str(code_uri)).resolve(),
                handler=str(self.resolve(props.get("Handler", globals_.get("Handler")), {})),
                timeout=int(self.resolve(props.get("Timeout", globals_.get("Timeout", 3)), {})),
                memory_size=int(self.resolve(props.get("MemorySize", globals_.get("MemorySize", 128)), {})),
                environment=env,
                runtime=str(props.get("Runtime", globals_.get("Runtime", "python3.13"))),
                layers=layers,
            )
        return found

    def _layers(self, function: str, layers: list[Any]) -> tuple[Path, ...]:
        """Each layer's content directory; only layers built from this template can run locally."""
        found = []
        for layer in layers:
            logical = layer.get("Ref") if isinstance(layer, dict) else None
            body = self.resources.get(str(logical)) or {}
            if body.get("Type") != "AWS::Serverless::LayerVersion":
                raise TemplateError(
                    f"{function}: layer {layer!r} is not an AWS::Serverless::LayerVersion of this template; "
                    "the runner can only run layers it can build from source"
                )
            content = self.resolve((body.get("Properties") or {}).get("ContentUri"), {})
            found.append((self.path.parent / str(content)).resolve())
        return tuple(found)

    def http_routes(self) -> list[HttpRoute]:
        routes: list[HttpRoute] = []
        for name, body in self.resources.items():
            if body.get("Type") != "AWS::Serverless::Function":
                continue
            for event_name, event in ((body.get("Properties") or {}).get("Events") or {}).items():
                if event.get("Type") != "HttpApi":
                    continue
                props = event.get("Properties") or {}
                api = props.get("ApiId")
                api_id = api["Ref"] if isinstance(api, dict) and "Ref" in api else "ServerlessHttpApi"
                method = str(props.get("Method", "ANY")).upper()
                path = str(props.get("Path", "$default"))
                routes.append(
                    HttpRoute(
                        name,
                        "ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method,
                        path,
                        api_id,
                        event_name,
                    )
                )
        return routes

    def sqs_sources(self) -> list[SqsSource]:
        sources: list[SqsSource] = []
        mapped: dict[tuple[str, str], str] = {}
        for name, body in self.resources.items():
            if body.get("Type") != "AWS::Serverless::Function":
                continue
            for event_name, event in ((body.get("Properties") or {}).get("Events") or {}).items():
                if event.get("Type") != "SQS":
                    continue
                source = self._sqs_source(name, event_name, event.get("Properties") or {})
                earlier = mapped.setdefault((source.function, source.queue), event_name)
                if earlier != event_name:
                    # CreateEventSourceMapping: ResourceConflictException, one mapping per queue and function.
                    raise TemplateError(
                        f"{name} events {earlier} and {event_name} both map queue {source.queue} to it; AWS refuses "
                        "a second event source mapping of the same queue to the same function"
                    )
                sources.append(source)
        return sources

    def _sqs_source(self, function: str, event_name: str, props: Mapping[str, Any]) -> SqsSource:
        queue = props.get("Queue")
        if isinstance(queue, dict) and "Fn::GetAtt" in queue:
            queue_id = str(queue["Fn::GetAtt"][0])
        elif isinstance(queue, dict) and "Ref" in queue:
            queue_id = str(queue["Ref"])
        else:
            raise TemplateError(
                f"{function}.{event_name}: Queue must be !GetAtt <Queue>.Arn of a queue in this template"
            )
        queue_body = self.resources.get(queue_id) or {}
        fifo = bool(self.resolve((queue_body.get("Properties") or {}).get("FifoQueue", False), {}))
        where = f"{function} event {event_name}"
        batch_size = int(self.resolve(props.get("BatchSize", 10), {}) or 10)
        window = float(self.resolve(props.get("MaximumBatchingWindowInSeconds", 0), {}) or 0)
        if fifo:
            if not 1 <= batch_size <= 10:
                raise TemplateError(f"{where}: BatchSize must be 1..10 for a FIFO queue, not {batch_size}")
            if window > 0:
                # AWS accepts 0 (the default) and refuses any window on a FIFO queue.
                raise TemplateError(
                    f"{where}: MaximumBatchingWindowInSeconds must be 0 for a FIFO queue, not {window:g}"
                )
        elif not 1 <= batch_size <= 10_000:
            raise TemplateError(f"{where}: BatchSize must be 1..10000, not {batch_size}")
        if not 0 <= window <= 300:
            raise TemplateError(f"{where}: MaximumBatchingWindowInSeconds must be 0..300, not {window:g}")
        if batch_size > 10 and window < 1:
            raise TemplateError(f"{where}: MaximumBatchingWindowInSeconds must be >= 1 when BatchSize > 10")
        scaling = self.resolve(props.get("ScalingConfig") or {}, {})
        concurrency = scaling.get("MaximumConcurrency") if isinstance(scaling, dict) else None
        if concurrency is not None and not 2 <= int(concurrency) <= 1000:
            raise TemplateError(f"{where}: ScalingConfig.MaximumConcurrency must be 2..1000, not {concurrency}")
        types = self.resolve(props.get("FunctionResponseTypes") or [], {})
        try:
            filters = parse_filter_criteria(self.resolve(props.get("FilterCriteria") or {}, {}))
        except FilterCriteriaError as error:
            raise TemplateError(f"{where}: FilterCriteria refused, as AWS would refuse it: {error}") from None
        return SqsSource(
            function=function,
            event_name=event_name,
            queue=queue_id,
            batch_size=batch_size,
            batching_window=window,
            report_batch_item_failures="ReportBatchItemFailures" in types,
            maximum_concurrency=None if concurrency is None else int(concurrency),
            filters=filters,
            enabled=_truthy(self.resolve(props.get("Enabled", True), {})),
        )

    # ---------------------------------------------------------------- intrinsics
    def pseudo(self, name: str) -> Any:
        return pseudo_parameters(self.region, self.account_id, self.stack_name)[name]

    def intrinsics(self, refs: Mapping[str, Mapping[str, Any]]) -> Intrinsics:
        """The template's intrinsic functions, with ``refs`` (logical id -> {"Ref": ..., "<Attr>": ...}) for
        the resources provisioned so far; any other resource of the template stands in as its logical id."""

        def resource(logical: str, attribute: str | None) -> Any:
            if logical in refs and (attribute or "Ref") in refs[logical]:
                return refs[logical][attribute or "Ref"]
            if attribute is None:
                return logical  # not played locally (a role, a log group): its logical id stands in
            kind = str(self.document["Resources"][logical].get("Type", "")).split("::")[-1].lower()
            return f"arn:aws:{kind}:{self.region}:{self.account_id}:{logical}"

        return Intrinsics(
            self.document, self.parameters, pseudo_parameters(self.region, self.account_id, self.stack_name),
            resource, self.conditions or None,
        )  # fmt: skip

    def resolve(self, value: Any, refs: Mapping[str, Mapping[str, Any]]) -> Any:
        """Resolve intrinsics; ``refs`` maps logical ids to {"Ref": ..., "<Attr>": ...} of provisioned resources."""
        return self.intrinsics(refs).resolve(value)


def pseudo_parameters(region: str, account_id: str, stack_name: str) -> dict[str, Any]:
    return {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::StackName": stack_name,
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/local",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NoValue": NO_VALUE,
        "AWS::NotificationARNs": [],
    }


class Intrinsics:
    """CloudFormation's intrinsic functions over one template document: the one resolver of this repository.

    Parameters, pseudo parameters and conditions are the document's; a resource's ``Ref`` or
    ``Fn::GetAtt`` is whatever ``resource(logical_id, attribute_or_None)`` answers (the
    runner gives provisioned names and ARNs; the template tests keep them symbolic).
    ``AWS::NoValue`` removes the property or list item it stands in.
    """

    def __init__(
        self,
        document: Mapping[str, Any],
        parameters: Mapping[str, Any],
        pseudo: Mapping[str, Any],
        resource: Callable[[str, str | None], Any],
        conditions: Mapping[str, bool] | None = None,
    ):
        self.document = document
        self.parameters = parameters
        self.pseudo = pseudo
        self.resource = resource
        self._conditions = dict(conditions) if conditions is not None else None

    @property
    def conditions(self) -> dict[str, bool]:
        if self._conditions is None:
            self._conditions = {}
            for name in self.document.get("Conditions") or {}:
                self.condition(name)
        return self._conditions

    def condition(self, name: str) -> bool:
        if self._conditions is not None and name in self._conditions:
            return self._conditions[name]
        expressions = self.document.get("Conditions") or {}
        if name not in expressions:
            raise TemplateError(f"condition {name} is not declared")
        value = bool(self._resolve(expressions[name]))
        if self._conditions is None:
            self._conditions = {}
        self._conditions[name] = value
        return value

    def resolve(self, value: Any) -> Any:
        resolved = self._resolve(value)
        return None if resolved is NO_VALUE else resolved

    def _resolve(self, value: Any) -> Any:  # noqa: PLR0911, PLR0912
        if isinstance(value, list):
            return [item for item in (self._resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: r for k, v in value.items() if (r := self._resolve(v)) is not NO_VALUE}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self.ref(str(arg))
        if key == "Fn::GetAtt":
            logical, attr = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(str(logical), str(attr))
        if key == "Fn::Sub":
            return self.sub(arg)
        if key == "Fn::Join":
            sep, items = arg
            return str(sep).join(str(i) for i in self._resolve(items))
        if key == "Fn::Select":
            index, items = arg
            return self._resolve(items)[int(self._resolve(index))]
        if key == "Fn::Split":
            sep, text = arg
            return str(self._resolve(text)).split(str(sep))
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self._resolve(when_true if self.condition(name) else when_false)
        if key == "Fn::Equals":
            left, right = (self._resolve(a) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._resolve(arg[0])
        if key == "Fn::And":
            return all(self._resolve(a) for a in arg)
        if key == "Fn::Or":
            return any(self._resolve(a) for a in arg)
        if key in ("Condition", "Fn::Condition"):
            return self.condition(str(arg))
        if key == "Fn::FindInMap":
            name, top, second = (self._resolve(a) for a in arg)
            return self.document["Mappings"][name][top][second]
        if key == "Fn::ToJsonString":
            return json.dumps(self._resolve(arg), separators=(",", ":"))
        if key == "Fn::Length":
            return len(self._resolve(arg))
        return {key: self._resolve(arg)}

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in (self.document.get("Resources") or {}):
            return self.resource(name, None)
        raise TemplateError(f"!Ref {name}: no parameter or resource of that name")

    def get_att(self, logical: str, attr: str) -> Any:
        if logical not in (self.document.get("Resources") or {}):
            raise TemplateError(f"!GetAtt {logical}.{attr}: no resource of that name")
        return self.resource(logical, attr)

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {k: self._resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attr = name.split(".", 1)
                return str(self.get_att(logical, attr))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))


# What `!Ref AWS::NoValue` resolves to: the property or list item is removed.
NO_VALUE: Any = type("NoValue", (), {"__repr__": lambda _self: "NO_VALUE"})()


def _truthy(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _check_parameter(name: str, spec: Mapping[str, Any], value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if spec.get("Type") == "Number":
        try:
            number = float(text)
        except ValueError:
            raise TemplateError(f"parameter {name} must be a number, not {text!r}") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={text} is below its MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={text} is above its MaxValue {spec['MaxValue']}")
    allowed = spec.get("AllowedValues")
    if allowed is not None and text not in [str(a) for a in allowed]:
        raise TemplateError(f"parameter {name}={text} is not one of its AllowedValues")
    pattern = spec.get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, text):
        raise TemplateError(f"parameter {name}={text!r} does not match its AllowedPattern")
    return text


def _samconfig(path: Path) -> tuple[dict[str, str], str | None]:
    """samconfig.toml's default deploy parameter overrides and stack name, when the file exists."""
    if not path.is_file():
        return {}, None
    config = tomllib.loads(path.read_text(encoding="utf-8")).get("default", {})
    stack = (config.get("global", {}).get("parameters", {}) or {}).get("stack_name")
    overrides = (config.get("deploy", {}).get("parameters", {}) or {}).get("parameter_overrides")
    try:
        # SAM's own grammar, as for PARAMS: shlex would take a quoted JSON value apart
        return parse(overrides, base=path.parent), stack
    except OverrideError as exc:
        raise TemplateError(f"{path.name}: parameter_overrides: {exc}") from None
