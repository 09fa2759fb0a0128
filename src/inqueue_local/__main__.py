"""``python -m inqueue_local run|send``: the local runner's command line (``make run``, ``make send``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from inqueue_local.backends import Backend, Endpoint, MotoServer
from inqueue_local.template import Template, TemplateError, parse_overrides

ROOT = Path.cwd()


def _backend(args: argparse.Namespace) -> Backend:
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    endpoint = args.endpoint or (os.environ.get("AWS_ENDPOINT_URL") if args.backend is None else None)
    if endpoint:
        return Endpoint(endpoint, region)
    if args.backend == "localstack":
        from inqueue_local.localstack import LocalStack

        return LocalStack(region=region, root=ROOT / ".local" / "localstack")
    return MotoServer(region)


def _run(args: argparse.Namespace) -> int:
    from inqueue_local.forward import LocalDestinations, forward_to
    from inqueue_local.runner import Runner

    overrides = parse_overrides(args.parameter_overrides)
    template = Template.load(args.template, overrides)
    if args.forward_to:
        forward_to(template, args.forward_to, overrides)
    port = int(args.port or os.environ.get("PORT") or 3000)
    destinations = LocalDestinations(template, forward_to=args.forward_to or None, config_dir=ROOT / "config")
    runner = Runner(template, _backend(args), port=port, config_dir=ROOT / "config", services=[destinations])
    runner.run_forever()
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
    return 0 if status < 500 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inqueue_local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the pipeline in the foreground")
    run.add_argument("--template", default="infra/template.yaml")
    run.add_argument(
        "--backend", choices=["moto", "localstack"], default=None, help="data plane (default: embedded moto)"
    )
    run.add_argument(
        "--endpoint", help="use this SQS/SSM/DynamoDB/S3 endpoint instead (default: AWS_ENDPOINT_URL when set)"
    )
    run.add_argument("--port", help="HTTP port on 127.0.0.1 (default: PORT or 3000)")
    run.add_argument("--parameter-overrides", nargs="*", default=[], metavar="Name=Value")
    run.add_argument(
        "--forward-to",
        metavar="URL",
        help="deliver every source without processors to this app (make run FORWARD_TO=http://127.0.0.1:9000/hooks)",
    )
    send = commands.add_parser("send", help="post an example API Gateway event to the running runner")
    send.add_argument("event", help="a file under events/")
    send.add_argument("--template", default="infra/template.yaml")
    send.add_argument("--port")
    send.add_argument("--url")
    args = parser.parse_args(argv)
    try:
        return _run(args) if args.command == "run" else _send(args)
    except TemplateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # LocalStackError: could not install, start, or start it safely
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
