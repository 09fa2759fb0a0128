"""Where an Inqueue is: its queues, its status table, its region, and an endpoint per service.

In order of precedence: explicit URLs (``--queue-url``, ``--dlq-url``, ``--status-table``),
the local runner's state file (``--local``: ``.local/endpoints.json``, written by
``make run`` while it runs), or a CloudFormation stack's outputs (``--stack``, default
``$AWS_SAM_STACK_NAME``). A stack's outputs and the state file use the template's Output
names, so the two are read alike.

The state file names an endpoint per service because they differ on some backends
(``make run BACKEND=localstack``: SQS, S3 and SSM in LocalStack, DynamoDB in moto).
For a stack the SDK's own endpoints apply, including ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>`` when they are set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inqueue_ops.dlq import DlqError

LOCAL_STATE = Path(".local") / "endpoints.json"

# The template's Outputs read here; the local runner writes the same names into its state file.
OUTPUT_QUEUE = "EventsQueueUrl"
OUTPUT_DLQ = "DeadLetterQueueUrl"
OUTPUT_STATUS_TABLE = "StatusTableName"
# What the runner provisions: an old state file with one endpoint_url means it for all of them.
SERVICES = ("sqs", "dynamodb", "s3", "ssm", "secretsmanager", "sts")


@dataclass(frozen=True, slots=True)
class Targets:
    queue_url: str
    dlq_url: str
    status_table: str | None
    region: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)  # service -> URL; empty: the SDK's own
    state_file: Path | None = None  # the local runner's, when read from one
    outputs: Mapping[str, str] = field(default_factory=dict)  # the stack's (or the local runner's) Outputs

    @property
    def local(self) -> bool:
        return self.state_file is not None

    def endpoint(self, service: str) -> str | None:
        return self.endpoints.get(service)


ClientFactory = Callable[[str, Targets], Any]


def boto_client(service: str, targets: Targets) -> Any:
    """A boto3 client for ``service`` at that service's endpoint."""
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {"region_name": targets.region} if targets.region else {}
    endpoint = targets.endpoint(service)
    if endpoint:
        options["endpoint_url"] = endpoint
    if targets.local:
        # A local backend accepts any credentials; do not make a new user configure some.
        if not os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_PROFILE"):
            options.update(aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106
        # Loopback answers at once or not at all: a stopped runner is said in seconds, not minutes.
        options["config"] = Config(connect_timeout=2, read_timeout=30, retries={"mode": "standard", "max_attempts": 2})
    else:
        options["config"] = Config(retries={"mode": "standard", "max_attempts": 5})
    # A session of its own: what the environment says now (credentials, profile), not what boto3's
    # default session cached earlier in a long-lived process (a console, a test run).
    return boto3.session.Session().client(service, **options)  # type: ignore[call-overload]


def find_local_state(start: Path | None = None) -> Path:
    """``.local/endpoints.json`` in this directory or the nearest parent that has one."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / LOCAL_STATE
        if candidate.is_file():
            return candidate
    return here / LOCAL_STATE


def read_local_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise DlqError(f"{path} does not exist: start the local runner (make run) first") from None
    except ValueError as exc:
        raise DlqError(f"{path} is not JSON: {exc}") from None
    if not isinstance(state, dict) or not isinstance(state.get("outputs"), dict):
        raise DlqError(f"{path} has no 'outputs' object")
    return state


def local_endpoints(state: Mapping[str, Any]) -> dict[str, str]:
    endpoints = state.get("endpoints")
    if isinstance(endpoints, dict) and endpoints:
        return {str(name): str(url) for name, url in endpoints.items()}
    default = state.get("endpoint_url")
    return dict.fromkeys(SERVICES, str(default)) if default else {}


def stack_outputs(stack: str, cloudformation: Any) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def resolve(
    *,
    local: bool = False,
    local_state: str | Path | None = None,
    stack: str | None = None,
    queue_url: str | None = None,
    dlq_url: str | None = None,
    status_table: str | None = None,
    region: str | None = None,
    env: Mapping[str, str] | None = None,
    clients: ClientFactory = boto_client,
) -> Targets:
    env = os.environ if env is None else env
    outputs: Mapping[str, str] = {}
    endpoints: dict[str, str] = {}
    state_file: Path | None = None
    region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if local or local_state:
        state_file = Path(local_state) if local_state else find_local_state()
        state = read_local_state(state_file)
        outputs = state["outputs"]
        endpoints = local_endpoints(state)
        region = region or state.get("region") or "us-east-1"
    elif not (queue_url and dlq_url):
        stack = stack or env.get("AWS_SAM_STACK_NAME")
        if not stack:
            raise DlqError("say where the queues are: --stack NAME (or AWS_SAM_STACK_NAME), --local, or --queue-url")
        outputs = stack_outputs(stack, clients("cloudformation", Targets("", "", None, region)))
    queue_url = queue_url or outputs.get(OUTPUT_QUEUE)
    dlq_url = dlq_url or outputs.get(OUTPUT_DLQ)
    if not queue_url or not dlq_url:
        raise DlqError(f"cannot find the queues: need {OUTPUT_QUEUE} and {OUTPUT_DLQ} (or --queue-url/--dlq-url)")
    return Targets(
        queue_url=queue_url,
        dlq_url=dlq_url,
        status_table=status_table or outputs.get(OUTPUT_STATUS_TABLE),
        region=region,
        endpoints=endpoints,
        state_file=state_file,
        outputs=dict(outputs),
    )
