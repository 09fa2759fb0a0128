"""``inqueue``: operator commands for a deployed stack or the local runner.

    inqueue status ID
    inqueue replay ID [--bypass-idempotency]
    inqueue dlq list | show ID | redrive (--all | ID...) | purge --yes

Where the queues and the status table are, in order of precedence: explicit flags
(``--queue-url``, ``--dlq-url``, ``--status-table``), the local runner's state file
(``--local``, ``.local/endpoints.json``), or a CloudFormation stack's outputs
(``--stack``, default ``$AWS_SAM_STACK_NAME``). Operator tooling: no Lambda imports it.

The local runner's state file, written by ``make run`` while it runs::

    {"endpoint_url": "http://127.0.0.1:PORT",     # the embedded moto server (or LocalStack ...)
     "region": "us-east-1",
     "outputs": {"EventsQueueUrl": "...", "DeadLetterQueueUrl": "...", "StatusTableName": "...", ...}}

``outputs`` uses the template's Output names, so a stack and the runner are read alike.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from inqueue_ops.dlq import DeadLetters, DlqError, OperatorStatus, StatusRecords

LOCAL_STATE = Path(".local/endpoints.json")

# The template's Outputs the CLI reads; the local runner writes the same names into its state file.
OUTPUT_QUEUE = "EventsQueueUrl"
OUTPUT_DLQ = "DeadLetterQueueUrl"
OUTPUT_STATUS_TABLE = "StatusTableName"


@dataclass(frozen=True, slots=True)
class Targets:
    queue_url: str
    dlq_url: str
    status_table: str | None
    endpoint_url: str | None = None
    region: str | None = None


ClientFactory = Callable[[str, Targets], Any]


def boto_client(service: str, targets: Targets) -> Any:
    import boto3

    options: dict[str, Any] = {"region_name": targets.region} if targets.region else {}
    if targets.endpoint_url:
        options["endpoint_url"] = targets.endpoint_url
        # A local backend accepts any credentials; do not make a new user configure some.
        if not os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_PROFILE"):
            options.update(aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106
    return boto3.client(service, **options)  # type: ignore[call-overload]


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


def stack_outputs(stack: str, cloudformation: Any) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def resolve_targets(
    args: argparse.Namespace,
    env: Mapping[str, str],
    clients: ClientFactory = boto_client,
) -> Targets:
    outputs: Mapping[str, str] = {}
    endpoint_url = None
    region = args.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    explicit = args.queue_url and args.dlq_url
    if args.local:
        state = read_local_state(Path(args.local_state))
        outputs = state["outputs"]
        endpoint_url = state.get("endpoint_url")
        region = region or state.get("region") or "us-east-1"
    elif not explicit:
        stack = args.stack or env.get("AWS_SAM_STACK_NAME")
        if not stack:
            raise DlqError("say where the queues are: --stack NAME (or AWS_SAM_STACK_NAME), --local, or --queue-url")
        outputs = stack_outputs(stack, clients("cloudformation", Targets("", "", None, None, region)))
    queue_url = args.queue_url or outputs.get(OUTPUT_QUEUE)
    dlq_url = args.dlq_url or outputs.get(OUTPUT_DLQ)
    if not queue_url or not dlq_url:
        raise DlqError(f"cannot find the queues: need {OUTPUT_QUEUE} and {OUTPUT_DLQ} (or --queue-url/--dlq-url)")
    return Targets(
        queue_url=queue_url,
        dlq_url=dlq_url,
        status_table=args.status_table or outputs.get(OUTPUT_STATUS_TABLE),
        endpoint_url=endpoint_url,
        region=region,
    )


def status_store(targets: Targets, clients: ClientFactory) -> StatusRecords | None:
    if not targets.status_table:
        return None
    from inqueue.status import StatusStore

    return OperatorStatus(StatusStore(targets.status_table, clients("dynamodb", targets)))


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where")
    where.add_argument("--stack", help="CloudFormation stack to read outputs from (default: $AWS_SAM_STACK_NAME)")
    where.add_argument("--local", action="store_true", help="use the local runner (make run)")
    where.add_argument("--local-state", default=str(LOCAL_STATE), help="the local runner's state file")
    where.add_argument("--queue-url", help="events queue URL")
    where.add_argument("--dlq-url", help="dead-letter queue URL")
    where.add_argument("--status-table", help="status table name")
    where.add_argument("--region")
    where.add_argument(
        "--poll-wait",
        type=int,
        choices=range(21),
        metavar="0-20",
        help="long-poll seconds when reading the DLQ (default 1 on AWS, 0 locally)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    top = argparse.ArgumentParser(prog="inqueue", description="Operate an Inqueue stack or the local runner.")
    commands = top.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", parents=[common], help="an event's status record")
    status.add_argument("event_id")
    replay = commands.add_parser("replay", parents=[common], help="queue a succeeded or dead event again")
    replay.add_argument("event_id")
    replay.add_argument(
        "--envelope",
        metavar="FILE",
        help="the event's envelope (JSON), for a succeeded event whose envelope is no longer kept",
    )
    replay.add_argument(
        "--bypass-idempotency",
        action="store_true",
        help="process it again even though it succeeded (the processor's side effects run twice)",
    )

    dlq = commands.add_parser("dlq", help="dead letters").add_subparsers(dest="dlq_command", required=True)
    dlq.add_parser("list", parents=[common], help="id, source, type, reason, receives, age")
    show = dlq.add_parser("show", parents=[common], help="one dead letter's envelope and status")
    show.add_argument("id", help="event id or SQS message id")
    redrive = dlq.add_parser("redrive", parents=[common], help="back to the events queue, with fresh attempts")
    chosen = redrive.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--all", action="store_true")
    chosen.add_argument("ids", nargs="*", default=[], metavar="ID")
    redrive.add_argument(
        "--no-move-task", action="store_true", help="receive/send/delete even where StartMessageMoveTask exists"
    )
    purge = dlq.add_parser("purge", parents=[common], help="delete every dead letter")
    purge.add_argument("--yes", action="store_true", help="confirm: the dead letters are gone for good")
    return top


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    clients: ClientFactory = boto_client,
    out: TextIO | None = None,
    clock: Callable[[], float] | None = None,
    stores: Callable[[Targets, ClientFactory], StatusRecords | None] | None = None,
) -> int:
    args = parser().parse_args(argv)
    out = out or sys.stdout
    try:
        targets = resolve_targets(args, os.environ if env is None else env, clients)
        store = (stores or status_store)(targets, clients)
        dead = DeadLetters(
            clients("sqs", targets),
            queue_url=targets.queue_url,
            dlq_url=targets.dlq_url,
            status=store,
            # Long polls only help against real SQS; local backends answer short polls completely.
            wait_seconds=args.poll_wait if args.poll_wait is not None else 0 if targets.endpoint_url else 1,
            clock=clock or time.time,
        )
        return _run(args, dead, store, out)
    except DlqError as exc:
        print(f"inqueue: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(exc, BotoCoreError | ClientError):
            raise
        print(f"inqueue: AWS refused or could not be reached: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, dead: DeadLetters, store: StatusRecords | None, out: TextIO) -> int:
    if args.command == "status":
        if store is None:
            raise DlqError("no status table: deploy with the status table or pass --status-table")
        record = store.get(args.event_id)
        if record is None:
            raise DlqError(f"no status for event {args.event_id!r}: unknown id, or the status write failed")
        _print(out, dict(record), args.json)
        return 0
    if args.command == "replay":
        envelope = _read_envelope(args.envelope) if args.envelope else None
        _print(
            out,
            dead.replay(args.event_id, bypass_idempotency=args.bypass_idempotency, envelope=envelope),
            args.json,
        )
        return 0
    return _run_dlq(args, dead, store, out)


def _run_dlq(args: argparse.Namespace, dead: DeadLetters, store: StatusRecords | None, out: TextIO) -> int:
    if args.dlq_command == "list":
        rows = [dead.row(letter) for letter in dead.inspect()]
        if args.json:
            out.write(json.dumps(rows, indent=2, default=str) + "\n")
        else:
            _table(out, rows)
        return 0
    if args.dlq_command == "show":
        letter = dead.show(args.id)
        shown = {
            "message_id": letter.message_id,
            "receives": max(letter.receive_count - 1, 0),
            "message_attributes": {k: v.get("StringValue") for k, v in letter.message_attributes.items()},
            "envelope": letter.envelope if letter.envelope is not None else letter.body,
            "status": dict(store.get(letter.event_id) or {}) if store and letter.event_id else None,
        }
        out.write(json.dumps(shown, indent=2, default=str) + "\n")
        return 0
    if args.dlq_command == "redrive":
        result = dead.redrive_all(allow_move_task=not args.no_move_task) if args.all else dead.redrive(args.ids)
        _print(out, result, args.json)
        return 1 if result.get("missing") else 0
    if args.dlq_command == "purge":
        if not args.yes:
            raise DlqError("purge deletes every dead letter for good; add --yes to confirm")
        dead.purge()
        out.write("purged\n")
        return 0
    raise AssertionError(args)


def _read_envelope(path: str) -> str:
    """An envelope file: the envelope itself, or ``inqueue dlq show --json`` output that holds one."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DlqError(f"--envelope {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("envelope"), dict):
        data = data["envelope"]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _print(out: TextIO, data: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    for key, value in data.items():
        shown = json.dumps(value, default=str) if isinstance(value, list | dict) else value
        out.write(f"{key}: {shown}\n")


_COLUMNS = ("id", "source", "type", "receives", "attempts", "age", "reason")


def _table(out: TextIO, rows: list[dict[str, Any]]) -> None:
    if not rows:
        out.write("the dead-letter queue is empty\n")
        return
    cells = [
        [
            str(row["id"]),
            str(row["source"]),
            str(row["type"]),
            str(row["receives"]),
            "" if row["attempts"] is None else str(row["attempts"]),
            _age(row["age_seconds"]),
            str(row["reason"])[:80],
        ]
        for row in rows
    ]
    widths = [max(len(name), *(len(cell[n]) for cell in cells)) for n, name in enumerate(_COLUMNS)]
    out.write("  ".join(name.upper().ljust(width) for name, width in zip(_COLUMNS, widths, strict=True)).rstrip())
    out.write("\n")
    for cell in cells:
        out.write("  ".join(value.ljust(width) for value, width in zip(cell, widths, strict=True)).rstrip() + "\n")
    out.write(f"{len(rows)} dead letter(s)\n")


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172_800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86_400}d"


if __name__ == "__main__":
    sys.exit(main())
