"""`make run` and `make send` as a user meets them: every mistake is one line and a non-zero exit,
found before anything is provisioned where it can be. Loopback sockets only, each on a free port."""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from inqueue_local import __main__ as runner_cli
from inqueue_local.backends import Backend

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = str(ROOT / "infra" / "template.yaml")

pytestmark = [pytest.mark.e2e, pytest.mark.enable_socket]
MAKE_ERROR = re.compile(r"^make(\[\d+\])?: \*\*\* ")  # make's own "Error N" line, also from a make inside make


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make(*arguments: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PARAMS", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(  # noqa: S603 - make, with fixed arguments
        ["make", "--no-print-directory", *arguments],  # noqa: S607 - the user's own make
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def our_line(stderr: str) -> str:
    """The program's own message: exactly one line before make's "Error N" line, and no traceback."""
    lines = [line for line in stderr.splitlines() if not MAKE_ERROR.match(line)]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def no_backend_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records any backend start: a check made before provisioning leaves this empty."""
    started: list[str] = []

    def start(self: Backend) -> None:
        started.append(type(self).__name__)
        raise AssertionError("a backend was started before the check")

    for name in ("MotoServer", "Endpoint"):
        monkeypatch.setattr(getattr(runner_cli, name), "start", start)
    return started


# -- PARAMS, through make: the user's shell has read it once, nothing may read it again -------------


def test_json_params_quoted_as_for_sam_deploy_reach_the_runner_intact() -> None:
    # GIVEN SourcesConfig written as `sam deploy --parameter-overrides` needs it, with a kind that does not exist
    params = """SourcesConfig='{"x": {"kind": "nope", "secret": "ssm:/inqueue/x"}}' MaxReceiveCount=2"""

    # WHEN make run is given it
    result = make("run", f"PORT={free_port()}", f"PARAMS={params}")

    # THEN the JSON arrived whole (it was parsed: the error is about its content), before anything started
    assert result.returncode != 0
    assert our_line(result.stderr) == (
        "error: SourcesConfig: source 'x' needs a kind, one of bitrix24, generic, github, shopify, slack, "
        "standard-webhooks, stripe"
    )


def test_unquoted_json_params_are_one_line_saying_how_to_quote_them() -> None:
    params = 'SourcesConfig={"orders":{"kind":"generic","auth":"hmac","secret":"ssm:/inqueue/orders"}}'

    result = make("run", f"PORT={free_port()}", f"PARAMS={params}")

    assert result.returncode != 0
    assert "quote a value with spaces or double quotes, as sam deploy needs too" in our_line(result.stderr)


def test_a_parameter_the_template_refuses_is_one_line(no_backend_starts: list[str], capsys: Any) -> None:
    code = runner_cli.main(["run", "--template", TEMPLATE, "--port", "0", "--parameter-overrides", "MaxReceiveCount=0"])

    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert no_backend_starts == []


# -- the port and the endpoint, before provisioning -------------------------------------------------


def test_a_busy_port_is_found_before_provisioning(no_backend_starts: list[str], capsys: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code = runner_cli.main(["run", "--template", TEMPLATE, "--port", str(port)])

    assert code == 1
    err = capsys.readouterr().err
    assert (
        err == f"error: port {port} on 127.0.0.1 is in use (another make run?): stop it, or pass PORT=<another port>\n"
    )
    assert no_backend_starts == []


def test_an_unreachable_endpoint_is_found_before_provisioning(no_backend_starts: list[str], capsys: Any) -> None:
    closed = free_port()

    code = runner_cli.main(["run", "--template", TEMPLATE, "--port", "0", "--endpoint", f"http://127.0.0.1:{closed}"])

    assert code == 1
    assert capsys.readouterr().err == (
        f"error: ENDPOINT http://127.0.0.1:{closed} does not answer (Connection refused): start it first, "
        "or leave it unset for the embedded moto\n"
    )
    assert no_backend_starts == []


# -- make send ------------------------------------------------------------------------------------


class Answering(http.server.BaseHTTPRequestHandler):
    status = 401
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["content-length"])))
        body = json.dumps({"error": {"code": "bad_signature", "message": "no"}}).encode()
        self.send_response(self.status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answering)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def send(*arguments: str) -> int:
    return runner_cli.main(["send", *arguments, "--template", TEMPLATE])


def test_send_exits_1_on_a_4xx_answer_and_shows_it(receiver: str, capsys: Any) -> None:
    code = send(str(ROOT / "events" / "apigw-demo-json.json"), "--url", receiver)

    assert code == 1
    assert capsys.readouterr().out.startswith('401 {"error": {"code": "bad_signature"')


def test_send_of_a_missing_file_is_one_line(capsys: Any) -> None:
    code = send("events/nope.json", "--port", str(free_port()))

    assert code == 2
    assert capsys.readouterr().err == (
        "error: events/nope.json: no such file (the examples are in events/, e.g. events/apigw-demo-json.json)\n"
    )


@pytest.mark.parametrize(
    ("content", "said"),
    [("{not json", "not JSON"), ("[1, 2]", "not an API Gateway event"), ('{"Records": []}', "an SQS event")],
)
def test_send_of_a_file_that_is_not_an_example_is_one_line(
    tmp_path: Path, capsys: Any, content: str, said: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)

    code = send(str(bad), "--port", str(free_port()))

    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert said in err


def test_send_with_no_runner_is_one_line_saying_to_start_it(capsys: Any) -> None:
    port = free_port()

    code = send(str(ROOT / "events" / "apigw-demo-json.json"), "--port", str(port))

    assert code == 1
    assert capsys.readouterr().err == (
        f"error: nothing answers at http://127.0.0.1:{port}: start the runner first (make run), on the same PORT\n"
    )


def test_make_send_of_a_missing_file_through_make_is_one_line() -> None:
    result = make("send", f"PORT={free_port()}", "EVENT=events/nope.json")

    assert result.returncode != 0
    assert our_line(result.stderr).startswith("error: events/nope.json: no such file")


def test_python_m_inqueue_local_is_the_same_command() -> None:
    result = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-m", "inqueue_local", "send", "events/nope.json", "--port", str(free_port())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )

    assert result.returncode == 2
    assert our_line(result.stderr).startswith("error: events/nope.json")
