"""The deployed shape of infra/template.yaml, read from SAM's transform (no network).

Each ``check_*`` states one property of the template. The tests run every check on the
real template, then prove each check can fail by running it on a copy of the template
with exactly that property broken (``test_check_catches``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from inqueue_local.template import NO_VALUE
from tests.template.cfn import PSEUDO, Resolver, Template, load_sam, number, props, resources_of_type, transform

SAM = load_sam()

# Everything the ingress role may do. A tripwire, not a formality: when the ingress needs more
# (a status table, Secrets Manager), add the action here in the same change, scoped in the template.
INGRESS_ACTIONS = {
    "sqs:SendMessage",
    "kms:GenerateDataKey",
    "kms:Decrypt",
    "ssm:GetParameter",
    "secretsmanager:GetSecretValue",
    "dynamodb:PutItem",  # the queued record
    "dynamodb:DeleteItem",  # ... withdrawn when SendMessage then failed (the sender got 503)
    "s3:PutObject",  # bodies over InlineLimitBytes (claim checks)
}
# The FifoQueue parameter switches both queues; the checks that depend on it run in both modes.
MODES = ({}, {"FifoQueue": "true"})
FIFO_SWITCHED_BATCH_SIZE = {"Fn::If": ["IsFifo", {"Ref": "FifoWorkerBatchSize"}, {"Ref": "WorkerBatchSize"}]}
FIFO_SWITCHED_WINDOW = {"Fn::If": ["IsFifo", {"Ref": "AWS::NoValue"}, {"Ref": "WorkerBatchingWindowSeconds"}]}


@pytest.fixture(scope="module")
def cfn() -> Template:
    return transform(SAM)


def only(items: dict[str, Any], what: str) -> tuple[str, Any]:
    assert len(items) == 1, f"expected one {what}, found {sorted(items)}"
    return next(iter(items.items()))


def worker_mapping(cfn: Template) -> Template:
    mappings = {
        name: res
        for name, res in resources_of_type(cfn, "AWS::Lambda::EventSourceMapping").items()
        if res["Properties"]["FunctionName"] == {"Ref": "WorkerFunction"}
    }
    return only(mappings, "event source mapping for WorkerFunction")[1]["Properties"]


def statements(role: Template) -> list[Template]:
    found = []
    for policy in role["Properties"].get("Policies", []):
        body = policy["PolicyDocument"]["Statement"]
        found.extend(body if isinstance(body, list) else [body])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def function_role(cfn: Template, function: str) -> Template:
    role = props(cfn, function)["Role"]
    assert isinstance(role, dict), f"{function}'s role is not a role of this stack"
    assert "Fn::GetAtt" in role, f"{function}'s role is not a role of this stack"
    return cfn["Resources"][role["Fn::GetAtt"][0]]


# ---------------------------------------------------------------- the checks


def check_reports_batch_item_failures(cfn: Template) -> None:
    mapping = worker_mapping(cfn)
    assert mapping.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], (
        "without ReportBatchItemFailures the worker's batchItemFailures are ignored and a normal return "
        f"deletes the whole batch; got {mapping.get('FunctionResponseTypes')!r}"
    )


def check_mapping_settings_are_parameters(cfn: Template) -> None:
    mapping = worker_mapping(cfn)
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    # FIFO allows at most 10 per batch and no batching window: both switch with the queue type.
    assert mapping["BatchSize"] == FIFO_SWITCHED_BATCH_SIZE
    assert mapping["MaximumBatchingWindowInSeconds"] == FIFO_SWITCHED_WINDOW
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "WorkerMaxConcurrency"}}
    assert mapping.get("Enabled", True) is True


def check_redrive_policy(cfn: Template) -> None:
    redrive = props(cfn, "EventsQueue").get("RedrivePolicy")
    assert redrive, "the events queue has no RedrivePolicy: failing events would retry until retention ends"
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert number(cfn["Parameters"]["MaxReceiveCount"]["Default"]) == 5


def check_visibility_covers_worker_timeout(cfn: Template) -> None:
    resolve = Resolver(cfn)
    visibility = number(resolve(props(cfn, "EventsQueue").get("VisibilityTimeout", 30)))
    timeout = number(resolve(props(cfn, "WorkerFunction")["Timeout"]))
    window = number(resolve(worker_mapping(cfn).get("MaximumBatchingWindowInSeconds", 0)))
    assert visibility >= 6 * timeout + window, (
        f"visibility timeout {visibility}s < 6 x worker timeout {timeout}s + batching window {window}s: "
        "a message still being processed would be received again"
    )


def check_queues_encrypted(cfn: Template) -> None:
    resolve = Resolver(cfn)
    for name in ("EventsQueue", "DeadLetterQueue"):
        queue = props(cfn, name)
        key = resolve(queue.get("KmsMasterKeyId"))
        assert isinstance(key, str), f"{name} is not encrypted with a KMS key"
        assert key, f"{name} is not encrypted with a KMS key"
        assert queue.get("SqsManagedSseEnabled") in (None, False), f"{name}: KMS and SSE-SQS exclude each other"
    assert resolve(props(cfn, "EventsQueue")["KmsMasterKeyId"]) == "alias/aws/sqs"


def check_dlq_outlives_events(cfn: Template) -> None:
    events = number(props(cfn, "EventsQueue").get("MessageRetentionPeriod", 345600))
    dead = number(props(cfn, "DeadLetterQueue").get("MessageRetentionPeriod", 345600))
    # SQS keeps a message's original enqueue time when it moves to the DLQ.
    assert dead > events, f"DLQ retention {dead}s must exceed the events queue's {events}s"
    assert dead == 14 * 24 * 3600


def check_dlq_accepts_only_events_queue(cfn: Template) -> None:
    for mode in MODES:
        resolve = Resolver(cfn, mode)
        allow = resolve(props(cfn, "DeadLetterQueue").get("RedriveAllowPolicy"))
        assert isinstance(allow, dict), "DeadLetterQueue has no RedriveAllowPolicy"
        assert allow["redrivePermission"] == "byQueue"
        assert allow["sourceQueueArns"] == [resolve({"Fn::GetAtt": ["EventsQueue", "Arn"]})], mode


def check_queue_shape(cfn: Template) -> None:
    events = Resolver(cfn)(props(cfn, "EventsQueue"))
    assert not events.get("FifoQueue"), "the events queue is a standard queue by default"
    fifo = Resolver(cfn, {"FifoQueue": "true"})
    for name in ("EventsQueue", "DeadLetterQueue"):  # a FIFO queue needs a FIFO dead-letter queue
        queue = fifo(props(cfn, name))
        assert queue.get("FifoQueue") is True, f"{name} does not follow FifoQueue"
        assert str(queue.get("QueueName", "")).endswith(".fifo"), f"{name}: a FIFO queue's name ends in .fifo"
    assert number(events["MaximumMessageSize"]) == 1024 * 1024


def check_sqs_access_scoped(cfn: Template) -> None:
    resolve = Resolver(cfn)
    queue_arn = resolve({"Fn::GetAtt": ["EventsQueue", "Arn"]})
    dlq_arn = resolve({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})
    for role_name, role in resources_of_type(cfn, "AWS::IAM::Role").items():
        managed = json.dumps(role["Properties"].get("ManagedPolicyArns", []))
        assert "AWSLambdaSQSQueueExecutionRole" not in managed, f"{role_name} may read every queue ('*')"
        for statement in statements(role):
            actions = as_list(statement["Action"])
            if not any(action.lower().startswith("sqs:") for action in actions):
                continue
            assert statement["Effect"] == "Allow"
            assert "NotResource" not in statement
            for resource in as_list(resolve(statement["Resource"])):
                # The one exception: the worker sends permanent failures to the DLQ itself.
                if role_name == "WorkerRole" and actions == ["sqs:SendMessage"] and resource == dlq_arn:
                    continue
                assert resource == queue_arn, f"{role_name} grants {actions} on {resource!r}, not the events queue"


def check_ingress_may_only_send(cfn: Template) -> None:
    resolve = Resolver(cfn)
    role = function_role(cfn, "IngressFunction")
    granted = {action for st in statements(role) for action in as_list(st["Action"])}
    assert {a for a in granted if a.startswith("sqs:")} == {"sqs:SendMessage"}
    assert granted <= INGRESS_ACTIONS, f"not in INGRESS_ACTIONS: {sorted(granted - INGRESS_ACTIONS)}"
    for statement in statements(role):
        actions = as_list(statement["Action"])
        resource = resolve(statement["Resource"])
        if any(a.startswith("kms:") for a in actions):
            condition = resolve(statement["Condition"]["StringEquals"])
            assert condition.get("kms:ViaService") == f"sqs.{PSEUDO['AWS::Region']}.amazonaws.com"
            assert condition.get("kms:EncryptionContext:aws:sqs:arn") == resolve({"Fn::GetAtt": ["EventsQueue", "Arn"]})
        if "ssm:GetParameter" in actions:
            assert resource == f"arn:aws:ssm:us-east-1:123456789012:parameter{resolve({'Ref': 'SecretsPathPrefix'})}/*"
        if "secretsmanager:GetSecretValue" in actions:
            prefix = resolve({"Ref": "SecretsManagerPrefix"})
            assert resource == f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{prefix}*"
        if any(a.startswith("dynamodb:") for a in actions):
            assert resource == ("GetAtt", "StatusTable", "Arn")
        if "s3:PutObject" in actions:
            assert resource == "('GetAtt', 'PayloadBucket', 'Arn')/*"


def check_worker_role(cfn: Template) -> None:
    resolve = Resolver(cfn)
    role = function_role(cfn, "WorkerFunction")
    granted = {action for st in statements(role) for action in as_list(st["Action"])}
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= granted
    queue_arn = resolve({"Fn::GetAtt": ["EventsQueue", "Arn"]})
    dlq_arn = resolve({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})
    sends_to = set()
    for statement in statements(role):
        actions = as_list(statement["Action"])
        # Permanent failures to the dead-letter queue; deferred copies and callback jobs to the events queue.
        if "sqs:SendMessage" in actions:
            assert actions == ["sqs:SendMessage"], actions
            sends_to.add(str(resolve(statement["Resource"])))
        if any(a.startswith("kms:") for a in actions):
            condition = resolve(statement["Condition"]["StringEquals"])
            context = condition.get("kms:EncryptionContext:aws:sqs:arn")
            assert context in (queue_arn, dlq_arn), context
    assert sends_to == {str(dlq_arn), str(queue_arn)}, sends_to


def check_no_function_dlq(cfn: Template) -> None:
    for name, function in resources_of_type(cfn, "AWS::Lambda::Function").items():
        assert "DeadLetterConfig" not in function["Properties"], (
            f"{name} has a function-level DLQ: it catches asynchronous invocations only; "
            "the events queue's RedrivePolicy is the DLQ"
        )
    invoke_configs = resources_of_type(cfn, "AWS::Lambda::EventInvokeConfig")
    assert not invoke_configs, f"asynchronous invoke configs are not used: {sorted(invoke_configs)}"


def check_runtime_and_architecture(cfn: Template) -> None:
    functions = resources_of_type(cfn, "AWS::Lambda::Function")
    assert {"IngressFunction", "WorkerFunction"} <= set(functions)
    for name, function in functions.items():
        assert function["Properties"]["Runtime"] == "python3.13", name
        assert function["Properties"].get("Architectures") == ["arm64"], name
    _, layer = only(resources_of_type(cfn, "AWS::Lambda::LayerVersion"), "layer")
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]


def check_ingress_sizing(cfn: Template) -> None:
    ingress = props(cfn, "IngressFunction")
    assert number(ingress["MemorySize"]) <= 512
    assert number(ingress["Timeout"]) <= 10, "senders give up after 3 to 10 s"


def check_ingress_environment(cfn: Template) -> None:
    env = props(cfn, "IngressFunction")["Environment"]["Variables"]
    assert env.get("INQUEUE_QUEUE_URL") == {"Ref": "EventsQueue"}
    assert env.get("INQUEUE_SOURCES") == {"Ref": "SourcesConfig"}
    assert env.get("INQUEUE_QUEUED_STATUS") == {"Ref": "QueuedStatus"}
    assert cfn["Parameters"]["QueuedStatus"]["Default"] == "true"
    json.loads(cfn["Parameters"]["SourcesConfig"]["Default"])


def check_worker_environment(cfn: Template) -> None:
    # Required by the worker's settings, from the very resources and parameter the redrive policy uses.
    env = props(cfn, "WorkerFunction")["Environment"]["Variables"]
    assert env.get("INQUEUE_QUEUE_URL") == {"Ref": "EventsQueue"}
    assert env.get("INQUEUE_DLQ_URL") == {"Ref": "DeadLetterQueue"}
    redrive = props(cfn, "EventsQueue")["RedrivePolicy"]
    assert env.get("INQUEUE_MAX_RECEIVE_COUNT") == redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    # Destinations: their configuration, and the timeout every delivery must fit in (checked at start).
    assert env.get("INQUEUE_DESTINATIONS") == {"Ref": "DestinationsConfig"}
    assert env.get("INQUEUE_WORKER_TIMEOUT_SECONDS") == props(cfn, "WorkerFunction")["Timeout"]


def check_one_record_per_event(cfn: Template) -> None:
    # One table holds each event's status, idempotency state and history; every function names the same one.
    tables = resources_of_type(cfn, "AWS::DynamoDB::Table")
    assert set(tables) == {"StatusTable"}, f"one record per event lives in StatusTable alone, not {sorted(tables)}"
    table = props(cfn, "StatusTable")
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    for function in ("IngressFunction", "WorkerFunction", "StatusFunction"):
        env = props(cfn, function)["Environment"]["Variables"]
        assert env.get("INQUEUE_STATUS_TABLE") == {"Ref": "StatusTable"}, function
    worker = {a for st in statements(function_role(cfn, "WorkerFunction")) for a in as_list(st["Action"])}
    assert {a for a in worker if a.startswith("dynamodb:")} == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert cfn["Outputs"]["StatusTableName"]["Value"] == {"Ref": "StatusTable"}


def managed_policies(resolve: Resolver, role: Template) -> list[str]:
    arns = resolve(role["Properties"].get("ManagedPolicyArns", []))
    return [str(arn) for arn in arns] if isinstance(arns, list) else []


def check_tracing_off_by_default(cfn: Template) -> None:
    # X-Ray costs about $5 per million traces and samples nearly every request at webhook rates.
    assert cfn["Parameters"]["TracingMode"]["Default"] == "Disabled"
    resolve = Resolver(cfn)
    for name, function in resources_of_type(cfn, "AWS::Lambda::Function").items():
        assert "TracingConfig" not in function["Properties"], f"{name} is traced by default"
        assert function["Properties"]["Environment"]["Variables"].get("INQUEUE_TRACING_MODE") == {"Ref": "TracingMode"}
        managed = managed_policies(resolve, function_role(cfn, name))
        assert not [arn for arn in managed if "Xray" in arn], f"{name}'s role may write X-Ray traces: {managed}"


def check_environment_is_plain(cfn: Template) -> None:
    # The local runner resolves Ref, GetAtt and Sub; anything else it would pass on unresolved.
    for name, function in resources_of_type(cfn, "AWS::Lambda::Function").items():
        for var, value in function["Properties"].get("Environment", {}).get("Variables", {}).items():
            plain = isinstance(value, str) or (
                isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Sub")
            )
            assert plain, f"{name} {var} = {value!r}: use a literal, !Ref, !GetAtt or !Sub"


def check_http_api(cfn: Template) -> None:
    api = props(cfn, "HttpApi")["Body"]["paths"]
    route = api["/hooks/{source}"]
    # ANY, so that the ingress (not API Gateway) answers other methods with 405 and our error body.
    assert set(route) == {"x-amazon-apigateway-any-method"}
    integration = route["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
    assert "${IngressFunction.Arn}" in integration["uri"]["Fn::Sub"]
    assert integration["payloadFormatVersion"] == "2.0"
    _, stage = only(resources_of_type(cfn, "AWS::ApiGatewayV2::Stage"), "HTTP API stage")
    settings = stage["Properties"].get("DefaultRouteSettings", {})
    assert settings.get("ThrottlingRateLimit") == {"Ref": "ApiThrottlingRateLimit"}, "no stage throttling"
    assert settings.get("ThrottlingBurstLimit") == {"Ref": "ApiThrottlingBurstLimit"}, "no stage throttling"
    log = stage["Properties"]["AccessLogSettings"]
    assert log["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json_object(log["Format"])
    assert fields is not None, f"the access log format is not JSON: {log['Format']!r}"
    assert {"requestId", "status", "routeKey", "ip"} <= set(fields)


def check_log_groups(cfn: Template) -> None:
    groups = resources_of_type(cfn, "AWS::Logs::LogGroup")
    assert {"IngressLogGroup", "WorkerLogGroup", "ApiAccessLogGroup"} <= set(groups)
    for name, group in groups.items():
        assert group["Properties"].get("RetentionInDays") == {"Ref": "LogRetentionDays"}, name
    for function, group in (("IngressFunction", "IngressLogGroup"), ("WorkerFunction", "WorkerLogGroup")):
        assert props(cfn, function)["LoggingConfig"]["LogGroup"] == {"Ref": group}


def check_alarms(cfn: Template) -> None:
    resolve = Resolver(cfn)
    watched = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"], str(resolve(a["Properties"]["Dimensions"])))
        for a in resources_of_type(cfn, "AWS::CloudWatch::Alarm").values()
    }
    dlq_name = resolve({"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]})
    events_name = resolve({"Fn::GetAtt": ["EventsQueue", "QueueName"]})
    expected = {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", str([{"Name": "QueueName", "Value": dlq_name}])),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", str([{"Name": "QueueName", "Value": events_name}])),
        ("AWS/Lambda", "Errors", str([{"Name": "FunctionName", "Value": ("Ref", "WorkerFunction")}])),
    }
    assert expected <= watched, expected - watched
    oldest = props(cfn, "OldestEventAlarm")
    assert oldest["Threshold"] == {"Ref": "OldestMessageAlarmSeconds"}


def check_outputs(cfn: Template) -> None:
    values = {name: output["Value"] for name, output in cfn.get("Outputs", {}).items()}
    assert values.get("ApiUrl") == {"Fn::GetAtt": ["HttpApi", "ApiEndpoint"]}
    assert values.get("EventsQueueUrl") == {"Ref": "EventsQueue"}
    assert values.get("DeadLetterQueueUrl") == {"Ref": "DeadLetterQueue"}
    # The console reads these (inqueue console --stack): how to list events, whether envelopes are kept.
    assert values.get("EventIndexShards") == {"Ref": "EventIndexShards"}
    assert values.get("EnvelopeArchive") == {"Ref": "EnvelopeArchive"}


def check_recent_events_index(cfn: Template) -> None:
    # The console lists events from a sparse index whose every attribute is written once, at the record's
    # creation: projecting anything a status write changes would make every such write an index write too.
    from inqueue import status

    table = Resolver(cfn)(props(cfn, "StatusTable"))
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == status.RECENT_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": status.RECENT_KEY, "KeyType": "HASH"},
        {"AttributeName": status.RECENT_SORT, "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(status.RECENT_PROJECTED)}
    assert {status.RECENT_KEY, status.RECENT_SORT, *status.RECENT_PROJECTED} <= WRITTEN_ONCE
    types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert types == {"id": "S", status.RECENT_KEY: "S", status.RECENT_SORT: "S"}
    assert cfn["Parameters"]["EventIndexShards"]["Default"] == status.DEFAULT_INDEX_SHARDS
    # 0 drops the index, and its attribute definitions with it (CloudFormation refuses unused ones).
    none = Resolver(cfn, {"EventIndexShards": 0})(props(cfn, "StatusTable"))
    assert "GlobalSecondaryIndexes" not in none or none["GlobalSecondaryIndexes"] is NO_VALUE
    assert none["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    for function in ("IngressFunction", "WorkerFunction"):
        env = props(cfn, function)["Environment"]["Variables"]
        assert env.get("INQUEUE_EVENT_INDEX_SHARDS") == {"Ref": "EventIndexShards"}, function
    ingress = props(cfn, "IngressFunction")["Environment"]["Variables"]
    assert ingress.get("INQUEUE_ENVELOPE_ARCHIVE") == {"Ref": "EnvelopeArchive"}
    assert cfn["Parameters"]["EnvelopeArchive"]["Default"] == "false", "the archive is a write per event: opt-in"


# What the record's writers set only when they create it (src/inqueue/status.py: queued, and claim's if_not_exists).
WRITTEN_ONCE = {"id", "recent_key", "received_at", "source", "type", "correlation_id"}


CHECKS: list[Callable[[Template], None]] = [
    check_reports_batch_item_failures,
    check_mapping_settings_are_parameters,
    check_redrive_policy,
    check_visibility_covers_worker_timeout,
    check_queues_encrypted,
    check_dlq_outlives_events,
    check_dlq_accepts_only_events_queue,
    check_queue_shape,
    check_sqs_access_scoped,
    check_ingress_may_only_send,
    check_worker_role,
    check_no_function_dlq,
    check_runtime_and_architecture,
    check_ingress_sizing,
    check_ingress_environment,
    check_worker_environment,
    check_one_record_per_event,
    check_tracing_off_by_default,
    check_environment_is_plain,
    check_http_api,
    check_log_groups,
    check_alarms,
    check_outputs,
    check_recent_events_index,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_template(cfn: Template, check: Callable[[Template], None]) -> None:
    # GIVEN the transformed template / WHEN the property is checked / THEN it holds
    check(cfn)


# ---------------------------------------------------------------- each check can fail


def resource(sam: Template, name: str) -> Template:
    return sam["Resources"][name]["Properties"]


def queue_event(sam: Template) -> Template:
    return resource(sam, "WorkerFunction")["Events"]["Queue"]["Properties"]


def ingress_statements(sam: Template) -> list[Template]:
    return resource(sam, "IngressFunction")["Policies"][0]["Statement"]


def typo_response_types(sam: Template) -> None:
    queue_event(sam)["FunctionResponseTypes"] = ["ReportBatchItemFailure"]


def drop_response_types(sam: Template) -> None:
    del queue_event(sam)["FunctionResponseTypes"]


def hardcode_batch_size(sam: Template) -> None:
    queue_event(sam)["BatchSize"] = 10


def drop_redrive(sam: Template) -> None:
    del resource(sam, "EventsQueue")["RedrivePolicy"]


def default_receive_count_3(sam: Template) -> None:
    sam["Parameters"]["MaxReceiveCount"]["Default"] = 3


def longer_worker_timeout(sam: Template) -> None:
    sam["Parameters"]["WorkerTimeout"]["Default"] = 31


def add_batching_window(sam: Template) -> None:
    sam["Parameters"]["WorkerBatchingWindowSeconds"]["Default"] = 5


def unencrypted_dlq(sam: Template) -> None:
    del resource(sam, "DeadLetterQueue")["KmsMasterKeyId"]


def short_dlq_retention(sam: Template) -> None:
    resource(sam, "DeadLetterQueue")["MessageRetentionPeriod"] = 345600


def allow_any_queue(sam: Template) -> None:
    resource(sam, "DeadLetterQueue")["RedriveAllowPolicy"] = {"redrivePermission": "allowAll"}


def allow_another_queue(sam: Template) -> None:
    allow = resource(sam, "DeadLetterQueue")["RedriveAllowPolicy"]
    allow["sourceQueueArns"] = [*allow["sourceQueueArns"], {"Fn::Sub": "arn:${AWS::Partition}:sqs:::other"}]


def rename_events_queue(sam: Template) -> None:
    resource(sam, "EventsQueue")["QueueName"] = {"Fn::Sub": "${AWS::StackName}-incoming"}


def fifo_events_queue(sam: Template) -> None:
    resource(sam, "EventsQueue")["FifoQueue"] = True


def standard_dlq_for_fifo(sam: Template) -> None:
    del resource(sam, "DeadLetterQueue")["FifoQueue"]


def worker_sends_to_events_queue(sam: Template) -> None:
    statement = resource(sam, "WorkerRole")["Policies"][1]["PolicyDocument"]["Statement"][0]
    statement["Resource"] = {"Fn::GetAtt": ["EventsQueue", "Arn"]}


def send_anywhere(sam: Template) -> None:
    ingress_statements(sam)[0]["Resource"] = "*"


def ingress_may_receive(sam: Template) -> None:
    ingress_statements(sam)[0]["Action"] = ["sqs:SendMessage", "sqs:ReceiveMessage"]


def kms_without_context(sam: Template) -> None:
    del ingress_statements(sam)[1]["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sqs:arn"]


def all_parameters(sam: Template) -> None:
    ingress_statements(sam)[2]["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:*:parameter/*"}


def worker_may_send(sam: Template) -> None:
    statement = resource(sam, "WorkerRole")["Policies"][0]["PolicyDocument"]["Statement"][0]
    statement["Action"] = [*statement["Action"], "sqs:SendMessage"]


def worker_role_by_sam(sam: Template) -> None:
    del resource(sam, "WorkerFunction")["Role"]


def dlq_in_globals(sam: Template) -> None:
    sam["Globals"]["Function"]["DeadLetterQueue"] = {
        "Type": "SQS",
        "TargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
    }


def x86_in_globals(sam: Template) -> None:
    sam["Globals"]["Function"]["Architectures"] = ["x86_64"]


def older_runtime(sam: Template) -> None:
    resource(sam, "WorkerFunction")["Runtime"] = "python3.12"


def big_ingress(sam: Template) -> None:
    resource(sam, "IngressFunction")["Timeout"] = 30


def renamed_queue_variable(sam: Template) -> None:
    env = resource(sam, "IngressFunction")["Environment"]["Variables"]
    env["QUEUE_URL"] = env.pop("INQUEUE_QUEUE_URL")


def joined_variable(sam: Template) -> None:
    env = resource(sam, "IngressFunction")["Environment"]["Variables"]
    env["INQUEUE_EXTRA"] = {"Fn::Join": ["", ["a", "b"]]}


def status_write_always_on(sam: Template) -> None:
    del resource(sam, "IngressFunction")["Environment"]["Variables"]["INQUEUE_QUEUED_STATUS"]


def receive_count_written_twice(sam: Template) -> None:
    resource(sam, "WorkerFunction")["Environment"]["Variables"]["INQUEUE_MAX_RECEIVE_COUNT"] = "5"


def a_second_table(sam: Template) -> None:
    sam["Resources"]["IdempotencyTable"] = copy.deepcopy(sam["Resources"]["StatusTable"])


def worker_deletes_records(sam: Template) -> None:
    statements = resource(sam, "WorkerRole")["Policies"][1]["PolicyDocument"]["Statement"]
    records = next(st for st in statements if st.get("Sid") == "EventRecords")
    records["Action"] = [*records["Action"], "dynamodb:DeleteItem"]


def traced_by_default(sam: Template) -> None:
    sam["Parameters"]["TracingMode"]["Default"] = "Active"


def post_only(sam: Template) -> None:
    resource(sam, "IngressFunction")["Events"]["Hook"]["Properties"]["Method"] = "POST"


def no_throttling(sam: Template) -> None:
    del resource(sam, "HttpApi")["DefaultRouteSettings"]


def text_access_log(sam: Template) -> None:
    resource(sam, "HttpApi")["AccessLogSettings"]["Format"] = "$context.requestId $context.status"


def keep_logs_forever(sam: Template) -> None:
    del resource(sam, "WorkerLogGroup")["RetentionInDays"]


def no_dlq_alarm(sam: Template) -> None:
    del sam["Resources"]["DeadLetterQueueAlarm"]


def no_api_url(sam: Template) -> None:
    del sam["Outputs"]["ApiUrl"]


def index_projects_status(sam: Template) -> None:
    index = resource(sam, "StatusTable")["GlobalSecondaryIndexes"]["Fn::If"][1][0]
    index["Projection"]["NonKeyAttributes"] = ["source", "type", "status"]


def archive_on_by_default(sam: Template) -> None:
    sam["Parameters"]["EnvelopeArchive"]["Default"] = "true"


def worker_without_index_shards(sam: Template) -> None:
    del resource(sam, "WorkerFunction")["Environment"]["Variables"]["INQUEUE_EVENT_INDEX_SHARDS"]


def no_shards_output(sam: Template) -> None:
    del sam["Outputs"]["EventIndexShards"]


MUTATIONS: list[tuple[Callable[[Template], None], Callable[[Template], None]]] = [
    (typo_response_types, check_reports_batch_item_failures),
    (drop_response_types, check_reports_batch_item_failures),
    (hardcode_batch_size, check_mapping_settings_are_parameters),
    (drop_redrive, check_redrive_policy),
    (default_receive_count_3, check_redrive_policy),
    (longer_worker_timeout, check_visibility_covers_worker_timeout),
    (add_batching_window, check_visibility_covers_worker_timeout),
    (unencrypted_dlq, check_queues_encrypted),
    (short_dlq_retention, check_dlq_outlives_events),
    (allow_any_queue, check_dlq_accepts_only_events_queue),
    (allow_another_queue, check_dlq_accepts_only_events_queue),
    (rename_events_queue, check_dlq_accepts_only_events_queue),
    (fifo_events_queue, check_queue_shape),
    (standard_dlq_for_fifo, check_queue_shape),
    (worker_sends_to_events_queue, check_worker_role),
    (send_anywhere, check_sqs_access_scoped),
    (ingress_may_receive, check_ingress_may_only_send),
    (kms_without_context, check_ingress_may_only_send),
    (all_parameters, check_ingress_may_only_send),
    (worker_may_send, check_worker_role),
    (worker_role_by_sam, check_sqs_access_scoped),
    (dlq_in_globals, check_no_function_dlq),
    (x86_in_globals, check_runtime_and_architecture),
    (older_runtime, check_runtime_and_architecture),
    (big_ingress, check_ingress_sizing),
    (renamed_queue_variable, check_ingress_environment),
    (status_write_always_on, check_ingress_environment),
    (receive_count_written_twice, check_worker_environment),
    (a_second_table, check_one_record_per_event),
    (worker_deletes_records, check_one_record_per_event),
    (traced_by_default, check_tracing_off_by_default),
    (joined_variable, check_environment_is_plain),
    (post_only, check_http_api),
    (no_throttling, check_http_api),
    (text_access_log, check_http_api),
    (keep_logs_forever, check_log_groups),
    (no_dlq_alarm, check_alarms),
    (no_api_url, check_outputs),
    (no_shards_output, check_outputs),
    (index_projects_status, check_recent_events_index),
    (archive_on_by_default, check_recent_events_index),
    (worker_without_index_shards, check_recent_events_index),
]


def test_every_check_has_a_mutation() -> None:
    assert {check for _, check in MUTATIONS} >= set(CHECKS)


@pytest.mark.parametrize(("mutate", "check"), MUTATIONS, ids=[mutate.__name__ for mutate, _ in MUTATIONS])
def test_check_catches(mutate: Callable[[Template], None], check: Callable[[Template], None]) -> None:
    # GIVEN a copy of the template with one property broken
    broken = copy.deepcopy(SAM)
    mutate(broken)
    # WHEN SAM transforms it (the linters would accept it)
    transformed = transform(broken)
    # THEN the check for that property fails
    with pytest.raises(AssertionError):
        check(transformed)


def test_active_tracing_traces_every_function_and_lets_it_write_traces() -> None:
    # GIVEN the template deployed with TracingMode=Active
    traced = copy.deepcopy(SAM)
    traced["Parameters"]["TracingMode"]["Default"] = "Active"

    # WHEN SAM transforms it
    cfn = transform(traced)

    # THEN every function records traces, and its role may send them
    resolve = Resolver(cfn)
    for name, function in resources_of_type(cfn, "AWS::Lambda::Function").items():
        assert resolve(function["Properties"]["TracingConfig"]) == {"Mode": "Active"}, name
        managed = managed_policies(resolve, function_role(cfn, name))
        assert [arn for arn in managed if "AWSXrayWriteOnlyAccess" in arn], name
