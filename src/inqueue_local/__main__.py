"""``python -m inqueue_local run|send``: the local runner's command line (``make run``, ``make send``).

Every failure a user can cause is one line on stderr and a non-zero exit: 2 for what was
given (a template, ``PARAMS``, an event file), 1 for what was found (a busy port, an
endpoint that does not answer, a runner that is not running, a 4xx/5xx answer). What can
be checked before anything is provisioned is checked first.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import urllib.parse
from pathlib import Path

from inqueue_local.backends import Backend, Endpoint, MotoServer
from inqueue_local.overrides import OverrideError, parse
from inqueue_local.template import Template, TemplateError

ROOT = Path.cwd()


class PreflightError(RuntimeError):
    """Found before provisioning: the port is taken, or the endpoint does not answer."""


def _backend(args: argparse.Namespace) -> Backend:
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    endpoint = args.endpoint or (os.environ.get("AWS_ENDPOINT_URL") if args.backend is None else None)
    if endpoint:
        return Endpoint.from_environment(endpoint, region)
    if args.backend == "localstack":
        from inqueue_local.localstack import LocalStack

        return LocalStack(region=region, root=ROOT / ".local" / "localstack")
    return MotoServer(region)


def check_sources(template: Template) -> None:
    """``SourcesConfig`` reads as the ingress will read it (JSON, names, kinds)."""
    text = template.parameters.get("SourcesConfig")
    if text is None:
        return
    from inqueue.sources import ConfigError, parse_config

    try:
        parse_config(str(text))
    except ConfigError as exc:
        raise TemplateError(f"SourcesConfig: {exc}") from None


def check_port(host: str, port: int, variable: str = "PORT") -> None:
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PreflightError(
                    f"port {port} on {host} is in use (another make run?): stop it, or pass {variable}=<another port>"
                ) from None
            raise PreflightError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def check_endpoints(backend: Backend, named_by: str) -> None:
    """Every endpoint of an ``Endpoint`` backend accepts a connection."""
    if not isinstance(backend, Endpoint):
        return
    for url in sorted(set(backend.endpoints().values())):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PreflightError(f"{named_by} {url!r} is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname, port), timeout=3):
                pass
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise PreflightError(
                f"{named_by} {url} does not answer ({why}): start it first, or leave it unset for the embedded moto"
            ) from None


def _run(args: argparse.Namespace) -> int:
    from inqueue_local.forward import LocalDestinations, forward_to
    from inqueue_local.runner import Runner
    from inqueue_ops.console.server import ConsoleService

    # Locally every envelope is kept, so the console can replay any event (on AWS it is the opt-in EnvelopeArchive).
    overrides = {"EnvelopeArchive": "true", **parse(args.parameter_overrides, base=ROOT)}
    template = Template.load(args.template, overrides)
    check_sources(template)
    if args.forward_to:
        forward_to(template, args.forward_to, overrides)
    # Before anything starts: DestinationsConfig (and its routes' source names) reads as the worker will read it.
    destinations = LocalDestinations(template, forward_to=args.forward_to or None, config_dir=ROOT / "config")
    port = int(args.port or os.environ.get("PORT") or 3000)
    check_port("127.0.0.1", port)
    console_port = int(args.console_port or os.environ.get("CONSOLE_PORT") or port + 1)
    if console_port == port:
        raise PreflightError(f"the console needs a port of its own, not the runner's {port}: pass CONSOLE_PORT=...")
    check_port("127.0.0.1", console_port, "CONSOLE_PORT")
    backend = _backend(args)
    check_endpoints(backend, "ENDPOINT" if args.endpoint else "AWS_ENDPOINT_URL")
    services = [destinations, ConsoleService(console_port)]
    runner = Runner(template, backend, port=port, config_dir=ROOT / "config", services=services)
    try:
        runner.run_forever()
    except BaseException:
        # A start that failed half way (the port taken since the check, a backend that refused):
        # leave no child process behind. A stop that ran already makes this a no-op.
        backend.stop()
        raise
    return 0


def _send(args: argparse.Namespace) -> int:
    from inqueue_local.send import send

    template = Template.load(args.template)
    port = int(args.port or os.environ.get("PORT") or 3000)
    status, body = send(
        Path(args.event),
        args.url or f"http://127.0.0.1:{port}",
        template.parameters.get("SourcesConfig", "{}"),
        ROOT / "config",
    )
    print(status, body.decode("utf-8", "replace"))
    return 0 if status < 400 else 1


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(prog="python -m inqueue_local", description=__doc__)
    commands = made.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the pipeline in the foreground")
    run.add_argument("--template", default="infra/template.yaml", help="the SAM template (default: %(default)s)")
    run.add_argument(
        "--backend", choices=["moto", "localstack"], default=None, help="data plane (default: embedded moto)"
    )
    run.add_argument(
        "--endpoint", help="use this SQS/SSM/DynamoDB/S3 endpoint instead (default: AWS_ENDPOINT_URL when set)"
    )
    run.add_argument("--port", help="HTTP port on 127.0.0.1 (default: PORT or 3000)")
    run.add_argument("--console-port", help="the console's port on 127.0.0.1 (default: CONSOLE_PORT or the port + 1)")
    run.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="Name=Value",
        help="template parameters, exactly as sam deploy --parameter-overrides takes them",
    )
    run.add_argument(
        "--forward-to",
        metavar="URL",
        help="deliver every source without processors to this app (make run FORWARD_TO=http://127.0.0.1:9000/hooks)",
    )
    send = commands.add_parser("send", help="post an example API Gateway event to the running runner")
    send.add_argument("event", help="a file under events/")
    send.add_argument("--template", default="infra/template.yaml", help="the SAM template (for SourcesConfig)")
    send.add_argument("--port", help="the runner's port (default: PORT or 3000)")
    send.add_argument("--url", help="the runner's base URL (default: http://127.0.0.1:PORT)")
    return made


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _run(args) if args.command == "run" else _send(args)
    except KeyboardInterrupt:  # a second Ctrl-C: the runner stopped at once
        return 130
    except Exception as error:
        status = exit_status(error)
        if status is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        return status


def exit_status(error: Exception) -> int | None:
    """2: what was given is wrong; 1: what was found is (or AWS said no); None: a bug, shown as a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from inqueue_local.send import SendError

    if isinstance(error, TemplateError | OverrideError):
        return 2
    if isinstance(error, SendError):
        return error.exit_status
    # OSError: a file that is not there, the port taken between the check and the bind.
    # RuntimeError: LocalStackError (could not install, start, or start it safely), moto's server not starting.
    if isinstance(error, PreflightError | BotoCoreError | ClientError | OSError | RuntimeError):
        return 1
    return None


if __name__ == "__main__":
    sys.exit(main())
