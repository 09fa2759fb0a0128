"""``inqueue``: operate an Inqueue stack or the local runner: status, replay, dead letters.

A thin layer over ``inqueue_ops.dlq`` (the operations) and ``inqueue_ops.targets`` (where
things are): it parses arguments, calls, and formats. Human output is a table on stdout;
``--json`` prints JSON instead. Long work shows its progress on stderr when stderr is a
terminal. Exit status: 0 done, 1 failed (or some of it did), 2 bad usage.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from inqueue_ops import __version__
from inqueue_ops.dlq import DeadLetter, DeadLetters, DlqError, OperatorStatus, Outcome, Progress, StatusRecords
from inqueue_ops.targets import ClientFactory, Targets, boto_client, resolve

EXAMPLES = """\
examples:
  inqueue console --stack inqueue          the web console on http://127.0.0.1:3001 (make run starts one too)
  inqueue dlq list --local                 the local runner's dead letters (make run)
  inqueue dlq redrive --all --stack inqueue
  inqueue dlq show 7ae14011-... --json > saved.json
  inqueue replay 7ae14011-... --envelope saved.json --bypass-idempotency
  inqueue status 7ae14011-...              (the stack from $AWS_SAM_STACK_NAME)

where: --local reads .local/endpoints.json (written by make run); --stack NAME (default
$AWS_SAM_STACK_NAME) reads the stack's outputs; --queue-url/--dlq-url/--status-table name
them directly. Exit status: 0 done, 1 failed or partly failed, 2 bad usage.
"""


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where")
    where.add_argument("--stack", help="CloudFormation stack to read outputs from (default: $AWS_SAM_STACK_NAME)")
    where.add_argument("--local", action="store_true", help="the local runner (make run), from .local/endpoints.json")
    where.add_argument(
        "--local-state", metavar="FILE", help="the local runner's state file (default: .local/endpoints.json)"
    )
    where.add_argument("--queue-url", metavar="URL", help="the events queue's URL")
    where.add_argument("--dlq-url", metavar="URL", help="the dead-letter queue's URL")
    where.add_argument("--status-table", metavar="NAME", help="the status table's name")
    where.add_argument("--region", help="AWS region (default: $AWS_REGION, the local runner's, or your profile's)")
    where.add_argument(
        "--poll-wait",
        type=int,
        choices=range(21),
        metavar="0-20",
        help="long-poll seconds when reading the DLQ (default 1 on AWS, 0 locally)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable JSON on stdout instead of a table")

    def command(parent: Any, name: str, summary: str, examples: str) -> argparse.ArgumentParser:
        made: argparse.ArgumentParser = parent.add_parser(
            name,
            parents=[common],
            help=summary,
            description=summary,
            epilog=f"examples:\n{examples}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return made

    top = argparse.ArgumentParser(
        prog="inqueue",
        description="Operate an Inqueue stack or the local runner: event status, replays, dead letters.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}", help="print the version")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    status = command(
        commands,
        "status",
        "an event's status record",
        "  inqueue status 7ae14011-... --local\n  inqueue status 7ae14011-... --stack inqueue --json\n",
    )
    status.add_argument("event_id", metavar="ID", help="the event id from the 202 answer")
    replay = command(
        commands,
        "replay",
        "queue a dead or succeeded event again, with the same event id",
        "  inqueue replay 7ae14011-... --local                 a dead one, from the DLQ\n"
        "  inqueue replay 7ae14011-... --envelope saved.json --bypass-idempotency\n",
    )
    replay.add_argument("event_id", metavar="ID", help="the event id")
    replay.add_argument(
        "--envelope",
        metavar="FILE",
        help="the event's envelope (JSON, or saved `inqueue dlq show --json` output), for one no longer in the DLQ",
    )
    replay.add_argument(
        "--bypass-idempotency",
        action="store_true",
        help="process it again even though it succeeded (the processor's side effects run twice)",
    )

    console = command(
        commands,
        "console",
        "the web console on 127.0.0.1: events, their attempts and results, queues, dead letters, replay",
        "  inqueue console --stack inqueue           a deployed stack, with your AWS credentials\n"
        "  inqueue console --local --port 3002       the local runner (make run serves one already)\n",
    )
    console.add_argument(
        "--port", type=int, default=3001, metavar="P", help="port on 127.0.0.1 (default 3001; 0: any free port)"
    )

    dlq_parser = commands.add_parser(
        "dlq",
        help="dead letters: list, show, redrive, purge",
        description="Dead letters: what the worker gave up on.",
        epilog="examples:\n  inqueue dlq list --local\n  inqueue dlq redrive --all --local\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dlq = dlq_parser.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND", help="what to do")
    listing = command(
        dlq,
        "list",
        "every dead letter: id, source, type, receives, attempts, age, reason",
        "  inqueue dlq list --local\n  inqueue dlq list --stack inqueue --json | jq -r '.[].id'\n",
    )
    listing.add_argument("--limit", type=int, default=10_000, metavar="N", help="read at most N (default 10000)")
    show = command(
        dlq,
        "show",
        "one dead letter's envelope, message attributes and status record",
        "  inqueue dlq show 7ae14011-... --local\n  inqueue dlq show 7ae14011-... --json > saved.json\n",
    )
    show.add_argument("id", metavar="ID", help="event id or SQS message id")
    redrive = command(
        dlq,
        "redrive",
        "back to the events queue, with fresh attempts and the status reset to queued",
        "  inqueue dlq redrive --all --local\n  inqueue dlq redrive 7ae14011-... 5743cf8b-... --stack inqueue\n",
    )
    chosen = redrive.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--all", action="store_true", help="every dead letter")
    chosen.add_argument("ids", nargs="*", default=[], metavar="ID", help="only these (event ids or SQS message ids)")
    redrive.add_argument(
        "--no-move-task",
        action="store_true",
        help="send and delete in batches even where StartMessageMoveTask exists",
    )
    redrive.add_argument(
        "--no-wait", action="store_true", help="with a move task: return once it has started, without its count"
    )
    purge = command(
        dlq,
        "purge",
        "delete dead letters for good",
        "  inqueue dlq purge --all --yes --local\n  inqueue dlq purge 7ae14011-... --yes --stack inqueue\n",
    )
    doomed = purge.add_mutually_exclusive_group(required=True)
    doomed.add_argument("--all", action="store_true", help="every dead letter there is when the purge starts")
    doomed.add_argument("ids", nargs="*", default=[], metavar="ID", help="only these (event ids or SQS message ids)")
    purge.add_argument("--yes", action="store_true", help="confirm: the dead letters are gone for good")
    return top


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    clients: ClientFactory = boto_client,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    stores: Callable[[Targets, ClientFactory], StatusRecords | None] | None = None,
    terminal: bool | None = None,
) -> int:
    args = parser().parse_args(argv)
    ui = Ui(out or sys.stdout, err or sys.stderr, terminal=terminal)
    targets: Targets | None = None
    try:
        targets = resolve(
            local=args.local,
            local_state=args.local_state,
            stack=args.stack,
            queue_url=args.queue_url,
            dlq_url=args.dlq_url,
            status_table=args.status_table,
            region=args.region,
            env=os.environ if env is None else env,
            clients=clients,
        )
        if args.command == "console":
            return serve_console(targets, clients, args.port, ui)
        store = (stores or status_store)(targets, clients)
        dead = DeadLetters(
            clients("sqs", targets),
            queue_url=targets.queue_url,
            dlq_url=targets.dlq_url,
            status=store,
            # Long polls only help against real SQS; local backends answer short polls completely.
            wait_seconds=args.poll_wait if args.poll_wait is not None else 0 if targets.local else 1,
            clock=clock or time.time,
            sleep=sleep or time.sleep,
            limit=getattr(args, "limit", 10_000),
            envelopes=archived_envelopes(targets, clients) if targets.status_table else None,
        )
        return _run(args, dead, store, ui)
    except DlqError as exc:
        ui.error(str(exc))
        return 1
    except KeyboardInterrupt:
        ui.error("interrupted; messages it was holding come back to the DLQ within a minute")
        return 130
    except Exception as exc:
        message = _aws_failure(exc, targets)
        if message is None:
            raise
        ui.error(message)
        return 1


def status_store(targets: Targets, clients: ClientFactory) -> StatusRecords | None:
    if not targets.status_table:
        return None
    from inqueue.status import StatusStore

    return OperatorStatus(StatusStore(targets.status_table, clients("dynamodb", targets)))


def serve_console(targets: Targets, clients: ClientFactory, port: int, ui: Ui, *, forever: bool = True) -> int:
    """Serve the console until Ctrl-C."""
    import threading

    from inqueue_ops.console.data import Console
    from inqueue_ops.console.server import ConsoleServer

    server = ConsoleServer(Console(targets, clients), port)
    url = server.start()
    where = "the local runner (make run)" if targets.local else targets.queue_url
    ui.say(f"console: {url} -> {where}; Ctrl-C to stop")
    ui.out.flush()
    try:
        while forever and not threading.Event().wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def archived_envelopes(targets: Targets, clients: ClientFactory) -> Callable[[str], str | None]:
    """Read an event's archived envelope (EnvelopeArchive), the archive's clients made on first use."""
    made: list[Any] = []

    def read(event_id: str) -> str | None:
        if not made:
            from inqueue.archive import EnvelopeArchive

            bucket = targets.outputs.get("PayloadBucketName")
            s3 = clients("s3", targets) if bucket else None
            made.append(EnvelopeArchive(str(targets.status_table), bucket, client=clients("dynamodb", targets), s3=s3))
        archived: str | None = made[0].get(event_id)
        return archived

    return read


def _run(args: argparse.Namespace, dead: DeadLetters, store: StatusRecords | None, ui: Ui) -> int:
    if args.command == "status":
        if store is None:
            raise DlqError("no status table: deploy with the status table or pass --status-table")
        record = store.get(args.event_id)
        if record is None:
            raise DlqError(f"no status for event {args.event_id!r}: unknown id, or the status write failed")
        ui.record(dict(record), args.json)
        return 0
    if args.command == "replay":
        envelope = _read_envelope(args.envelope) if args.envelope else None
        outcome = dead.replay(args.event_id, bypass_idempotency=args.bypass_idempotency, envelope=envelope)
        return ui.outcome(outcome, args.json)
    command = args.dlq_command
    if command == "list":
        with ui.progress("reading the DLQ") as report:
            letters = dead.inspect(report)
        rows = [dead.row(letter) for letter in letters]
        ui.dead_letters(rows, args.json)
        return 0
    if command == "show":
        letter = dead.show(args.id)
        status = store.get(letter.event_id) if store and letter.event_id else None
        ui.dead_letter(_shown(letter, status), args.json)
        return 0
    if command == "redrive":
        with ui.progress("redriving") as report:
            if args.all:
                outcome = dead.redrive_all(
                    allow_move_task=not args.no_move_task, wait=not args.no_wait, progress=report
                )
            else:
                outcome = dead.redrive(args.ids, progress=report)
        return ui.outcome(outcome, args.json)
    if command == "purge":
        if not args.yes:
            raise DlqError("purge deletes dead letters for good; add --yes to confirm")
        with ui.progress("purging") as report:
            outcome = dead.purge(None if args.all else args.ids, progress=report)
        return ui.outcome(outcome, args.json)
    raise AssertionError(args)


def _shown(letter: DeadLetter, status: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "message_id": letter.message_id,
        "receives": max(letter.receive_count - 1, 0),
        "message_attributes": {k: v.get("StringValue") for k, v in letter.message_attributes.items()},
        "envelope": letter.envelope if letter.envelope is not None else letter.body,
        "status": dict(status) if status is not None else None,
    }


def _read_envelope(path: str) -> str:
    """An envelope file: the envelope itself, or ``inqueue dlq show --json`` output that holds one."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DlqError(f"--envelope {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("envelope"), dict):
        data = data["envelope"]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _aws_failure(exc: Exception, targets: Targets | None) -> str | None:
    """One line for what the AWS SDK raised, or ``None`` when it is not the SDK's."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError) and targets is not None and targets.local:
        return (
            f"the local runner does not answer ({exc}): is `make run` still running? A runner that was killed "
            f"leaves {targets.state_file} behind; start it again"
        )
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: configure some (aws configure, AWS_PROFILE), or use --local for the local runner"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"AWS refused {exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', exc)}"
    if isinstance(exc, BotoCoreError):
        return f"AWS could not be reached: {exc}"
    return None


# ---------------------------------------------------------------- output


class Ui:
    """Tables and progress with rich on a terminal; plain aligned text and no progress elsewhere."""

    def __init__(self, out: TextIO, err: TextIO, *, terminal: bool | None = None):
        from rich.console import Console

        self.out = out
        self.err_stream = err
        self.stdout = Console(file=out, force_terminal=terminal, highlight=False, soft_wrap=False)
        self.stderr = Console(file=err, force_terminal=terminal, highlight=False, stderr=True)

    def error(self, message: str) -> None:
        self.err_stream.write(f"inqueue: {message}\n")
        self.err_stream.flush()

    @contextmanager
    def progress(self, description: str) -> Iterator[Callable[[Progress], None]]:
        """A progress bar on stderr while the block runs (on a terminal only); yields the callback to feed it."""
        if not self.stderr.is_terminal:
            yield lambda _progress: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            console=self.stderr,
            transient=False,
        )
        task = bar.add_task(description, total=None, failed="")

        def report(progress: Any) -> None:
            failed = f"failed {progress.failed}" if progress.failed else ""
            bar.update(task, description=progress.action, completed=progress.done, total=progress.total, failed=failed)

        with bar:
            yield report

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[str]], *, wide: str | None = None) -> None:
        from rich import box
        from rich.table import Table

        terminal = self.stdout.is_terminal
        table = Table(box=box.SIMPLE_HEAD if terminal else None, pad_edge=False, show_edge=False)
        for n, name in enumerate(columns):
            width = max([len(name), *(len(row[n]) for row in rows)])
            if name == wide:
                table.add_column(name.upper(), overflow="fold", ratio=1)
            else:
                table.add_column(name.upper(), no_wrap=True, min_width=min(width, 40), overflow="ellipsis")
        for row in rows:
            table.add_row(*row)
        if terminal:
            self.stdout.print(table)
            return
        # Not a terminal: one line per row, however wide, so grep and cut see whole rows.
        from rich.console import Console

        buffer = io.StringIO()
        Console(file=buffer, width=100_000, color_system=None, highlight=False).print(table)
        for line in buffer.getvalue().splitlines():
            self.out.write(line.rstrip() + "\n")

    def say(self, line: str) -> None:
        self.out.write(line + "\n")

    def json(self, data: Any) -> None:
        self.out.write(json.dumps(data, indent=2, default=str) + "\n")

    def record(self, record: Mapping[str, Any], as_json: bool) -> None:
        if as_json:
            self.json(record)
            return
        self.table(("field", "value"), [(key, _cell(value)) for key, value in record.items()], wide="value")

    def dead_letters(self, rows: list[dict[str, Any]], as_json: bool) -> None:
        if as_json:
            self.json(rows)
            return
        if not rows:
            self.say("the dead-letter queue is empty")
            return
        columns = ("id", "source", "type", "receives", "attempts", "age", "reason")
        self.table(
            columns,
            [
                (
                    _letter_id(row),
                    str(row["source"]),
                    str(row["type"]),
                    str(row["receives"]),
                    "" if row["attempts"] is None else str(row["attempts"]),
                    _age(row["age_seconds"]),
                    str(row["reason"]),
                )
                for row in rows
            ],
            wide="reason",
        )
        self.say(f"{len(rows)} dead letter(s)")

    def dead_letter(self, shown: dict[str, Any], as_json: bool) -> None:
        if as_json:
            self.json(shown)
            return
        envelope = shown["envelope"] if isinstance(shown["envelope"], dict) else {}
        status = shown["status"] or {}
        rows = [
            ("event id", str(envelope.get("id") or shown["message_attributes"].get("event_id") or "")),
            ("message id", shown["message_id"]),
            ("source", str(envelope.get("source", ""))),
            ("type", str(envelope.get("type", ""))),
            ("received at", str(envelope.get("received_at", ""))),
            ("receives", str(shown["receives"])),
            *((f"attribute {name}", str(value)) for name, value in sorted(shown["message_attributes"].items())),
            *((f"status {name}", _cell(value)) for name, value in status.items()),
        ]
        self.table(("field", "value"), rows, wide="value")
        self.say("body:")
        body = envelope.get("body", shown["envelope"]) if envelope else shown["envelope"]
        self.say(json.dumps(body, indent=2, ensure_ascii=False, default=str) if not isinstance(body, str) else body)

    def outcome(self, outcome: Outcome, as_json: bool) -> int:
        if as_json:
            self.json(outcome.as_dict())
        else:
            if outcome.failures:
                self.table(
                    ("id", "message id", "code", "message"),
                    [(f.id, f.message_id, f.code, f.message) for f in outcome.failures],
                    wide="message",
                )
            for missing in outcome.missing:
                self.say(f"not in the DLQ: {missing}")
            for note in outcome.notes:
                self.say(f"note: {note}")
            # A move task's handle is long and only of use while it runs.
            how = f"by {outcome.method}" + (f", task {outcome.task_handle}" if outcome.pending else "")
            self.say(f"{outcome.summary()} ({how})")
        return 0 if outcome.ok else 1


def _cell(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False) if isinstance(value, list | dict) else str(value)


def _letter_id(row: dict[str, Any]) -> str:
    """The event id, or for a job of the worker's own (it has none) what it is and whose."""
    if row["id"] or not row.get("job"):
        return str(row["id"])
    return f"({row['job']} job for {row['job_for']})" if row.get("job_for") else f"({row['job']} job)"


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
