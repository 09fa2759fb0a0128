"""The ``inqueue`` command line itself: version, help, progress, and one clear line for each failure."""

from __future__ import annotations

import argparse
import io
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from inqueue.attributes import CALLBACK_FOR, CALLBACK_JOB, JOB
from inqueue_ops import __version__, cli
from tests.ops.conftest import envelope, kill, run


def every_parser(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += every_parser(sub)
    return found


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out == f"inqueue {__version__}\n"
    assert __version__[0].isdigit()


PARSERS = every_parser(cli.parser())


@pytest.mark.parametrize(("prog", "parser"), PARSERS, ids=[prog for prog, _ in PARSERS])
def test_every_command_has_examples_and_every_option_says_what_it_does(
    prog: str, parser: argparse.ArgumentParser
) -> None:
    # GIVEN a command's parser THEN its help shows examples, and no option or argument lacks help text
    assert "examples:" in (parser.epilog or ""), prog
    undocumented = [action.dest for action in parser._actions if not action.help or action.help == argparse.SUPPRESS]
    assert undocumented == [], prog


def test_help_runs_and_shows_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["dlq", "redrive", "--help"])

    shown = capsys.readouterr().out
    assert "inqueue dlq redrive --all --local" in shown
    assert "--no-move-task" in shown


def test_a_long_redrive_shows_progress_on_a_terminal(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN 25 dead letters and a terminal
    kill(sqs, queues, *(envelope(n) for n in range(25)))

    # WHEN they are redriven
    code, output, err = run("dlq", "redrive", "--all", queues=queues, terminal=True)

    # THEN stderr showed a progress bar that reached 25 of 25, and stdout ends with the count
    assert code == 0
    assert "redriving" in err
    assert "25/25" in err
    assert output.splitlines()[-1].endswith("moved 25, failed 0 (by SendMessageBatch)")


def test_no_progress_bar_when_stderr_is_not_a_terminal(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))

    code, _, err = run("dlq", "redrive", "--all", queues=queues, terminal=False)

    assert (code, err) == (0, "")


def test_listing_on_a_terminal_draws_a_table(sqs: Any, queues: dict[str, str]) -> None:
    kill(sqs, queues, envelope(1))

    code, output, _ = run("dlq", "list", queues=queues, terminal=True)

    assert code == 0
    assert "─" in output  # the header rule
    assert "evt-1" in output


def test_a_dead_callback_job_is_listed_as_the_job_of_its_event(sqs: Any, queues: dict[str, str]) -> None:
    # GIVEN a result callback the worker queued as a job of its own (no event id), dead-lettered
    sqs.send_message(
        QueueUrl=queues["queue"],
        MessageBody=json.dumps({"job": CALLBACK_JOB, "event_id": "evt-9"}),
        MessageAttributes={
            JOB: {"DataType": "String", "StringValue": CALLBACK_JOB},
            CALLBACK_FOR: {"DataType": "String", "StringValue": "evt-9"},
        },
    )
    kill(sqs, queues)

    # WHEN the dead letters are listed
    code, output, _ = run("dlq", "list", queues=queues, terminal=False)
    _, machine, _ = run("dlq", "list", "--json", queues=queues)

    # THEN the table names the job and its event, and the JSON has both fields
    assert code == 0
    assert "(callback job for evt-9)" in output
    [row] = json.loads(machine)
    assert (row["id"], row["job"], row["job_for"]) == ("", CALLBACK_JOB, "evt-9")


# -- failures: one line on stderr, exit 1, no traceback --------------------------------------


def one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert err.startswith("inqueue: ")
    return err


def test_without_any_target_the_cli_says_how_to_name_one() -> None:
    err = io.StringIO()

    code = cli.main(["dlq", "list"], env={}, err=err)

    assert code == 1
    assert "--stack" in one_line(err.getvalue())


def test_an_aws_refusal_is_one_line_naming_the_call(aws: None) -> None:
    # GIVEN a stack name that does not exist (moto's CloudFormation answers ValidationError)
    err = io.StringIO()

    code = cli.main(["dlq", "list", "--stack", "nope", "--region", "us-east-1"], env={}, err=err)

    assert code == 1
    assert one_line(err.getvalue()).startswith("inqueue: AWS refused DescribeStacks: ValidationError:")


def test_missing_credentials_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    err = io.StringIO()

    code = cli.main(["status", "x", "--stack", "inqueue", "--region", "us-east-1"], env={}, err=err)

    assert code == 1
    assert "no AWS credentials" in one_line(err.getvalue())


@pytest.mark.enable_socket
def test_a_stopped_local_runner_is_one_line_saying_to_start_it(tmp_path: Path) -> None:
    # GIVEN the state file a killed runner left behind, naming a port where nothing listens now
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state = tmp_path / "endpoints.json"
    url = f"http://127.0.0.1:{port}"
    outputs = {"EventsQueueUrl": f"{url}/q", "DeadLetterQueueUrl": f"{url}/d", "StatusTableName": "t"}
    state.write_text(json.dumps({"endpoint_url": url, "region": "us-east-1", "outputs": outputs}))
    err = io.StringIO()

    # WHEN the operator asks for a status
    code = cli.main(["status", "evt-1", "--local-state", str(state)], env={}, err=err)

    # THEN one line says the runner does not answer, and where the stale file is
    assert code == 1
    line = one_line(err.getvalue())
    assert "the local runner does not answer" in line
    assert str(state) in line


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["dlq", "redrive"])

    assert exited.value.code == 2
    assert "one of the arguments --all ID is required" in capsys.readouterr().err
