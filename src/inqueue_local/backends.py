"""Where the queues, tables, buckets and parameters live: the AWS data plane.

``MotoServer`` (default) runs moto's server in a child process on 127.0.0.1; ``Endpoint``
names one already running (LocalStack, ElasticMQ, ...); ``InProcess`` uses moto's
in-process mock, for tests with no sockets; ``LocalStack`` starts LocalStack's core in
host mode (no Docker) and stops it with the runner (see ``localstack.py``).
Every backend gets dummy credentials and a region: no AWS account is ever touched.

A backend has an endpoint per service (``endpoint(service)``): one for all of them on
moto, DynamoDB elsewhere on LocalStack. The functions get them as the SDK's own
variables (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_DYNAMODB``, ...), the ``inqueue`` CLI
through ``.local/endpoints.json``.
"""

from __future__ import annotations

import selectors
import subprocess
import sys
from typing import Any

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
# The services the runner provisions or the functions call, with the SDK's variable for each one's endpoint.
SERVICE_ENDPOINT_VARIABLES = {
    "sqs": "AWS_ENDPOINT_URL_SQS",
    "dynamodb": "AWS_ENDPOINT_URL_DYNAMODB",
    "s3": "AWS_ENDPOINT_URL_S3",
    "ssm": "AWS_ENDPOINT_URL_SSM",
    "secretsmanager": "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "sts": "AWS_ENDPOINT_URL_STS",
}


class Backend:
    name = "backend"
    endpoint_url: str | None = None
    account_id = "123456789012"

    def __init__(self, region: str = "us-east-1"):
        self.region = region
        self._clients: dict[str, Any] = {}

    def start(self) -> None:
        """Make the data plane reachable."""

    def stop(self) -> None:
        """Release what ``start`` took."""

    def endpoint(self, service: str) -> str | None:
        """Where ``service`` answers; ``None``: AWS's own endpoint."""
        return self.endpoint_url

    def endpoints(self) -> dict[str, str]:
        """Service -> endpoint URL, for every service the pipeline uses (empty when they are AWS's)."""
        return {service: url for service in SERVICE_ENDPOINT_VARIABLES if (url := self.endpoint(service))}

    def function_environment(self) -> dict[str, str]:
        """What every in-process function needs to reach this backend and nothing else."""
        env = {**DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region}
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        for service, url in self.endpoints().items():
            if url != self.endpoint_url:
                env[SERVICE_ENDPOINT_VARIABLES[service]] = url
        return env

    def client(self, service: str) -> Any:
        made = self._clients.get(service)
        if made is None:
            import boto3
            from botocore.config import Config

            made = boto3.session.Session().client(
                service,  # type: ignore[call-overload]
                region_name=self.region,
                endpoint_url=self.endpoint(service),
                aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
                config=Config(retries={"mode": "standard", "total_max_attempts": 3}, max_pool_connections=50),
            )
            self._clients[service] = made
        return made

    def describe(self) -> str:
        return f"{self.name} at {self.endpoint_url}"


class InProcess(Backend):
    """moto's in-process mock: the caller holds ``mock_aws()`` open. For tests: no sockets."""

    name = "moto (in-process)"

    def describe(self) -> str:
        return self.name


class MotoServer(Backend):
    """moto's server on 127.0.0.1 on a free port: in a child process (default) or in this one.

    The child process (``motoserver.py``) runs moto on another core than the runner's own
    Python, and with fixes to moto's cost per queued message; ``in_process=True`` keeps the
    server in this process (the fixes apply there too).
    """

    name = "moto"
    START_SECONDS = 60.0

    def __init__(self, region: str = "us-east-1", port: int = 0, *, in_process: bool = False):
        super().__init__(region)
        self.port = port
        self.in_process = in_process
        self._server: Any = None
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        if self.in_process:
            self._start_here()
            return
        self._process = subprocess.Popen(  # noqa: S603 - our own module, run by this interpreter
            [sys.executable, "-m", "inqueue_local.motoserver", "--port", str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            ready = selector.select(self.START_SECONDS)
        line = self._process.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            exited = self._process.poll()
            self.stop()
            why = f"exited with status {exited}" if exited is not None else f"gave no URL in {self.START_SECONDS:g} s"
            raise RuntimeError(f"moto's server did not start: it {why} (its errors are above)")
        self.endpoint_url = line

    def _start_here(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        from inqueue_local.motoserver import speed_up

        speed_up()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call would drown the pipeline's
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None
            process.stdin.close()  # the child's signal to stop
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait(10)
            if process.stdout is not None:
                process.stdout.close()


class Endpoint(Backend):
    """Any SQS/SSM/DynamoDB/S3 implementation already running, e.g. a LocalStack started separately.

    ``services`` names another endpoint for some services (from ``AWS_ENDPOINT_URL_DYNAMODB``
    and the like, as the SDK reads them), e.g. DynamoDB in moto beside a LocalStack.
    """

    name = "endpoint"

    def __init__(
        self,
        endpoint_url: str,
        region: str = "us-east-1",
        account_id: str | None = None,
        services: dict[str, str] | None = None,
    ):
        super().__init__(region)
        self.endpoint_url = endpoint_url.rstrip("/")
        self._account_id = account_id
        self.services = {name: url.rstrip("/") for name, url in (services or {}).items()}

    @classmethod
    def from_environment(cls, endpoint_url: str, region: str, env: dict[str, str] | None = None) -> Endpoint:
        """``endpoint_url`` for every service, except those the SDK's per-service variables name."""
        import os

        env = dict(os.environ) if env is None else env
        services = {name: env[variable] for name, variable in SERVICE_ENDPOINT_VARIABLES.items() if env.get(variable)}
        return cls(endpoint_url, region, services=services)

    def endpoint(self, service: str) -> str | None:
        return self.services.get(service, self.endpoint_url)

    def describe(self) -> str:
        others = "".join(f", {name} at {url}" for name, url in sorted(self.services.items()))
        return f"{self.name} at {self.endpoint_url}{others}"

    def start(self) -> None:
        # LocalStack's account is 000000000000, moto's 123456789012: ask rather than guess.
        try:
            self.account_id = self._account_id or str(self.client("sts").get_caller_identity()["Account"])
        except Exception:  # noqa: BLE001 - an emulator without STS keeps the default
            self.account_id = self._account_id or self.account_id
