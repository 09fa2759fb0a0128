"""Create (or reuse) every queue, table, bucket and parameter the template declares.

Attributes follow the template: redrive policy, visibility timeout, retention, FIFO and
deduplication, DynamoDB keys, indexes and TTL. Encryption settings are accepted and
ignored locally. Secrets are seeded from ``config/secrets.local.json``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from inqueue_local.backends import Backend
from inqueue_local.template import ResourceSpec, Template, TemplateError

Refs = dict[str, dict[str, Any]]

# CloudFormation property -> SQS attribute, for the attributes a local queue keeps.
_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "MaximumMessageSize",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)
# Accepted and ignored: the local data plane does not encrypt.
_IGNORED_QUEUE_PROPERTIES = {
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "Tags",
    "QueueName",
}


def provision(template: Template, backend: Backend, log: Callable[[str], None] = lambda _line: None) -> Refs:
    """Create the data plane in dependency order; returns each logical id's Ref and attributes."""
    pending = {spec.logical_id: spec for spec in template.data_plane()}
    refs: Refs = {}
    while pending:
        ready = [spec for spec in pending.values() if not (_dependencies(spec.properties) & set(pending))]
        if not ready:
            raise TemplateError(f"circular references between {', '.join(sorted(pending))}")
        for spec in ready:
            properties = template.resolve(dict(spec.properties), refs)
            refs[spec.logical_id] = _CREATORS[spec.type](template, backend, spec, properties)
            log(f"{spec.type.split('::')[-1].lower()} {spec.logical_id}: {refs[spec.logical_id]['Ref']}")
            del pending[spec.logical_id]
    return refs


def _dependencies(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(str(arg[0] if isinstance(arg, list) else arg.split(".")[0]))
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found.update(part.split("}")[0].split(".")[0] for part in str(text).split("${")[1:])
            found |= _dependencies(arg)
    elif isinstance(value, list):
        for item in value:
            found |= _dependencies(item)
    return found


def _queue(template: Template, backend: Backend, spec: ResourceSpec, props: Mapping[str, Any]) -> dict[str, Any]:
    sqs = backend.client("sqs")
    fifo = str(props.get("FifoQueue", "false")).lower() == "true"
    name = props.get("QueueName") or f"{template.stack_name}-{spec.logical_id}"
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {key: _text(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        if key in props:
            attributes[key] = json.dumps(props[key]) if not isinstance(props[key], str) else props[key]
    if "RedrivePolicy" in props:
        _check_dead_letter_queue(spec, props, fifo)
    unknown = set(props) - set(_QUEUE_ATTRIBUTES) - _IGNORED_QUEUE_PROPERTIES - {"RedrivePolicy", "RedriveAllowPolicy"}
    if unknown:
        raise TemplateError(f"queue {spec.logical_id}: unsupported properties {', '.join(sorted(unknown))}")
    try:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except sqs.exceptions.QueueNameExists:
        # Reusing a queue left by an earlier run on a long-lived endpoint: make its attributes the template's.
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        settable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
        if settable:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url, "fifo": fifo, "attributes": attributes}


def _check_dead_letter_queue(spec: ResourceSpec, props: Mapping[str, Any], fifo: bool) -> None:
    policy = props["RedrivePolicy"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    target = str(policy.get("deadLetterTargetArn", ""))
    if fifo != target.endswith(".fifo"):
        raise TemplateError(
            f"queue {spec.logical_id}: a FIFO queue needs a FIFO dead-letter queue, and only a FIFO one"
        )


def _table(template: Template, backend: Backend, spec: ResourceSpec, props: Mapping[str, Any]) -> dict[str, Any]:
    dynamodb = backend.client("dynamodb")
    name = props.get("TableName") or f"{template.stack_name}-{spec.logical_id}"
    if spec.type == "AWS::Serverless::SimpleTable":
        key = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
        kind = {"String": "S", "Number": "N", "Binary": "B"}[key.get("Type", "String")]
        args: dict[str, Any] = {
            "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": kind}],
        }
    else:
        args = {"KeySchema": props["KeySchema"], "AttributeDefinitions": props["AttributeDefinitions"]}
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
            if key in props:
                args[key] = props[key]
        if "StreamSpecification" in args:
            args["StreamSpecification"] = {"StreamEnabled": True, **args["StreamSpecification"]}
    throughput = props.get("ProvisionedThroughput")
    if throughput:
        args["ProvisionedThroughput"] = {k: int(v) for k, v in throughput.items()}
    else:
        args["BillingMode"] = "PAY_PER_REQUEST"
        for index in args.get("GlobalSecondaryIndexes", []):
            index.pop("ProvisionedThroughput", None)
    try:
        described = dynamodb.create_table(TableName=name, **args)["TableDescription"]
    except dynamodb.exceptions.ResourceInUseException:
        described = dynamodb.describe_table(TableName=name)["Table"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and str(ttl.get("Enabled", "false")).lower() == "true":
        try:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        except dynamodb.exceptions.ClientError as error:  # already enabled on a reused table
            if "already enabled" not in str(error).lower():
                raise
    return {"Ref": name, "Arn": described["TableArn"], "StreamArn": described.get("LatestStreamArn", "")}


def _bucket(template: Template, backend: Backend, spec: ResourceSpec, props: Mapping[str, Any]) -> dict[str, Any]:
    s3 = backend.client("s3")
    name = props.get("BucketName") or f"{template.stack_name}-{spec.logical_id}".lower()
    args: dict[str, Any] = {"Bucket": name}
    if backend.region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": backend.region}
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(**args)
    if "LifecycleConfiguration" in props:
        # Advisory locally; emulators differ in what they accept.
        with contextlib.suppress(Exception):
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration=_lifecycle(props["LifecycleConfiguration"])
            )
    return {
        "Ref": name,
        "Arn": f"arn:aws:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{backend.region}.amazonaws.com",
    }


def _lifecycle(config: Mapping[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in config.get("Rules", []):
        made: dict[str, Any] = {
            "ID": rule.get("Id", "rule"),
            "Status": rule.get("Status", "Enabled"),
            "Filter": {"Prefix": rule.get("Prefix", "")},
        }
        if "ExpirationInDays" in rule:
            made["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        rules.append(made)
    return {"Rules": rules}


def _parameter(template: Template, backend: Backend, spec: ResourceSpec, props: Mapping[str, Any]) -> dict[str, Any]:
    name = props.get("Name") or f"/{template.stack_name}/{spec.logical_id}"
    backend.client("ssm").put_parameter(
        Name=name, Value=str(props["Value"]), Type=props.get("Type", "String"), Overwrite=True
    )
    return {"Ref": name, "Type": props.get("Type", "String"), "Value": str(props["Value"])}


_CREATORS: dict[str, Callable[[Template, Backend, ResourceSpec, Mapping[str, Any]], dict[str, Any]]] = {
    "AWS::SQS::Queue": _queue,
    "AWS::DynamoDB::Table": _table,
    "AWS::Serverless::SimpleTable": _table,
    "AWS::S3::Bucket": _bucket,
    "AWS::SSM::Parameter": _parameter,
}


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# ---------------------------------------------------------------- secrets


def load_local_secrets(config_dir: Path) -> dict[str, str | list[str]]:
    """``config/secrets.local.json``, copied from the committed example on first use."""
    local = config_dir / "secrets.local.json"
    example = config_dir / "secrets.example.json"
    if not local.exists() and example.exists():
        shutil.copyfile(example, local)
    if not local.exists():
        return {}
    loaded = json.loads(local.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise TypeError(f"{local} must be a JSON object of secret reference to value")
    return loaded


def seed_secrets(backend: Backend, secrets: Mapping[str, str | list[str]]) -> list[str]:
    """Store each secret where its reference points; a list is stored as JSON (rotation)."""
    seeded = []
    for ref, value in secrets.items():
        store, _, name = ref.partition(":")
        text = value if isinstance(value, str) else json.dumps(value)
        if store == "ssm":
            backend.client("ssm").put_parameter(Name=name, Value=text, Type="SecureString", Overwrite=True)
        elif store == "secretsmanager":
            client = backend.client("secretsmanager")
            try:
                client.create_secret(Name=name, SecretString=text)
            except client.exceptions.ResourceExistsException:
                client.put_secret_value(SecretId=name, SecretString=text)
        else:
            raise ValueError(f"secret reference {ref!r} must start with ssm: or secretsmanager:")
        seeded.append(ref)
    return seeded
