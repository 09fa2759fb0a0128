"""The Lambda runtime, locally: a child process per execution environment, running the real client.

What the gateway and the pollers invoke is a ``Runtime``: ``invoke(event) -> Invocation``.
``ProcessRuntime`` (here, what ``make run`` uses) is built the way Lambda is built:

* An execution environment is a child process, ``python -S -m awslambdaric <Handler>``:
  the AWS Lambda Runtime Interface Client (pinned in requirements/dev.txt), in the
  function's ``CodeUri`` as its working directory, with the function's code, its layer and
  the runtime client on ``PYTHONPATH`` and nothing else (``layer.py``), and only the
  environment Lambda gives: the template's variables, the reserved ``AWS_LAMBDA_*``,
  ``LAMBDA_*`` and ``_HANDLER`` variables, region and dummy credentials, and the local
  backend's endpoint variables. Nothing of the runner's own environment reaches it.
* The runner serves the Lambda Runtime API to each environment on its own 127.0.0.1 port
  (``/2018-06-01/runtime/invocation/next``, ``/{id}/response``, ``/{id}/error``,
  ``/init/error``), so a request id, a deadline and the function's ARN arrive as Lambda
  sends them and the client builds the context itself.
* Init runs once per environment (a cold start); warm environments are reused, one
  invocation at a time each; ``max_environments`` bounds concurrency. Edits to the code
  (``retire_warm``, driven by ``reload.py``) make the next invocation cold-start.
* At the function's ``Timeout`` the environment is killed (its process group, SIGKILL), so
  nothing after that point runs, and the invocation fails with ``Task timed out after N.NN
  seconds``. A process that exits, is killed, or uses more than ``MemorySize`` (its
  resident memory, sampled while it runs, and its peak afterwards) fails the invocation
  the same way, and the next invocation gets a fresh environment.
* After each invocation the function's log gets Lambda's ``REPORT`` line, with the
  child's own peak memory (``VmHWM``) and, on a cold start, its init duration (billed too,
  as on-demand Lambda bills the init phase since August 2025).

Output: the child's stdout and stderr reach the runner's log line by line, prefixed with
the function's name; the runner's own ``sys.stdout``, ``os.environ`` and imports are never
touched. Time here is real time: the child reads its deadline with ``time.time()``. The
stepped-clock tests and the soak use ``inprocess.InProcessRuntime`` instead.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import queue
import secrets
import select
import signal
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from inqueue_local.layer import CodeView, LayerSource
from inqueue_local.template import FunctionSpec

MAX_PAYLOAD = 6 * 1024 * 1024  # bytes, synchronous invocation request and response (Lambda's quota)
INIT_SECONDS = 10.0  # Lambda's limit on the init phase; past it, init is retried within the function's timeout
MEMORY_SAMPLE_SECONDS = 0.02
API = "/2018-06-01/runtime"

LogLine = Callable[[str, str], None]


# ---------------------------------------------------------------- what every runtime returns


@dataclass(frozen=True)
class FunctionError:
    """An invocation's error as Lambda reports it (``errorType``, ``errorMessage``, ``stackTrace``)."""

    type: str
    message: str = ""
    trace: tuple[str, ...] = ()

    def __str__(self) -> str:
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return f"{self.type}: {first}" if first else self.type


@dataclass
class Invocation:
    """One invocation's outcome: the function's result or error, and what Lambda's REPORT line says."""

    function: str
    request_id: str
    cold: bool
    duration_ms: float = 0.0
    result: Any = None
    error: FunctionError | None = None
    status: str = "success"  # REPORT's Status: success, error or timeout
    init_ms: float | None = None
    memory_size: int = 128
    max_memory_mb: int | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def timed_out(self) -> bool:
        return self.status == "timeout"

    def describe_error(self) -> str:
        return "" if self.error is None else str(self.error)

    @property
    def billed_ms(self) -> int:
        return max(1, math.ceil(self.duration_ms + (self.init_ms or 0.0)))

    def report(self) -> str:
        """Lambda's REPORT line (tab-separated, as Lambda writes it)."""
        parts = [
            f"REPORT RequestId: {self.request_id}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_ms} ms",
            f"Memory Size: {self.memory_size} MB",
            f"Max Memory Used: {self.max_memory_mb if self.max_memory_mb is not None else '-'} MB",
        ]
        if self.init_ms is not None:
            parts.append(f"Init Duration: {self.init_ms:.2f} ms")
        if self.status != "success":
            parts.append(f"Status: {self.status}")
            if self.status == "error" and self.error is not None and self.error.type.startswith("Runtime."):
                parts.append(f"Error Type: {self.error.type}")
        return "\t".join(parts)


class Runtime(Protocol):
    """What the gateway and the event source mappings invoke; ``ProcessRuntime`` or ``InProcessRuntime``."""

    name: str
    spec: FunctionSpec
    environment: dict[str, str]

    def invoke(self, event: Any) -> Invocation: ...

    def warm_up(self) -> Invocation: ...

    def retire_warm(self) -> int: ...

    def close(self) -> None: ...


def timed_out(spec: FunctionSpec) -> FunctionError:
    return FunctionError("Sandbox.Timedout", f"Task timed out after {float(spec.timeout):.2f} seconds")


def too_large(size: int) -> FunctionError:
    return FunctionError(
        "RequestEntityTooLargeException",
        f"{size} byte payload is too large for the RequestResponse invocation type (limit {MAX_PAYLOAD} bytes)",
    )


def function_environment(
    spec: FunctionSpec, resolve: Callable[[Any], Any], backend_environment: Mapping[str, str]
) -> dict[str, str]:
    """The template's variables resolved to local resources, over the backend's endpoint and credentials."""
    local_defaults = {
        # No X-Ray daemon and no CloudWatch here: keep the handlers' output to their logs.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        # Lambda has no ~/.aws: your profiles' settings (an endpoint, a CA bundle) must not reach a function.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    variables = {name: resolve(value) for name, value in spec.environment.items()}
    return {
        **local_defaults,
        **dict(backend_environment),
        **{k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in variables.items() if v is not None},
    }


def reserved_environment(spec: FunctionSpec, region: str) -> dict[str, str]:
    """The variables Lambda itself sets for every function (the runtime client reads several)."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "LAMBDA_TASK_ROOT": str(spec.code_uri),
        "_HANDLER": spec.handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
    }


def log_stream_name() -> str:
    """Lambda's per-environment stream name: ``YYYY/MM/DD/[$LATEST]<32 hex>``."""
    return time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + secrets.token_hex(16)


# ---------------------------------------------------------------- the Runtime API, per environment


@dataclass
class _Pending:
    request_id: str
    payload: bytes
    headers: dict[str, str]
    done: threading.Event = field(default_factory=threading.Event)
    result: bytes | None = None
    error: FunctionError | None = None
    handed_at: float | None = None
    finished_at: float | None = None


class _RuntimeApiHandler(socketserver.StreamRequestHandler):
    """The Runtime API's HTTP/1.1 on one keep-alive connection from the runtime client.

    Framing only (request line, headers, a Content-Length or chunked body; each answer in
    one write): http.server's email-based header parsing was half the runner's CPU per
    invocation, and its client is always the runtime client on loopback.
    """

    # Answers go out in one write, but never wait on Nagle's algorithm for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _RuntimeApiServer

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return
            method, _, rest = line.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0]
            headers: dict[str, str] = {}
            while (header := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = self._body(headers)
            status, extra, payload = self.server.environment.answer(method, path, headers, body)
            if status == 0:  # the environment is going away: drop the connection
                return
            head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}", "Content-Type: application/json",
                    f"Content-Length: {len(payload)}", *(f"{k}: {v}" for k, v in extra.items())]  # fmt: skip
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
            if headers.get("connection", "").lower() == "close":
                return

    def _body(self, headers: Mapping[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        length = int(headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}


class _RuntimeApiServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, environment: Environment):
        self.environment = environment
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A killed environment resets its connection: expected, not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _json(data: Mapping[str, str]) -> bytes:
    return json.dumps(data).encode()


def _error_from(body: bytes, header_type: str | None) -> FunctionError:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(data, dict):
        data = {"errorMessage": str(data)}
    trace = data.get("stackTrace") or []
    return FunctionError(
        str(data.get("errorType") or header_type or "Unhandled"),
        str(data.get("errorMessage") or ""),
        tuple(str(line) for line in trace) if isinstance(trace, list) else (),
    )


# ---------------------------------------------------------------- one execution environment


def _memory_mb(pid: int) -> tuple[int, int] | None:
    """(``VmRSS``, ``VmHWM``) of a process: resident memory now and at its peak, in MB rounded up."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            text = status.read()
    except OSError:
        return None
    values = []
    for name in (b"\nVmRSS:", b"\nVmHWM:"):
        at = text.find(name)
        if at < 0:
            return None  # a zombie has no memory lines
        values.append(math.ceil(int(text[at + len(name) :].split(None, 1)[0]) / 1024))
    return values[0], values[1]


def _exit_error(status: int | None) -> FunctionError:
    if status is None or status == 0:
        return FunctionError("Runtime.ExitError", "Runtime exited without providing a reason")
    if status < 0:
        name = (signal.strsignal(-status) or f"signal {-status}").lower()
        return FunctionError("Runtime.ExitError", f"Runtime exited with error: signal: {name}")
    return FunctionError("Runtime.ExitError", f"Runtime exited with error: exit status {status}")


class Environment:
    """One execution environment: the child process, its Runtime API server, its output."""

    def __init__(self, runtime: ProcessRuntime, number: int, generation: int):
        self.runtime = runtime
        self.number = number
        self.generation = generation
        self.server = _RuntimeApiServer(self)
        self.process: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0
        self.init_ms: float | None = None
        self.init_error: FunctionError | None = None
        self.initialized = threading.Event()  # set at the first /next, or when the process ends first
        self.exited = threading.Event()
        self.exit_status: int | None = None
        self.peak_mb: int | None = None
        self.invocations = 0
        self._handoff: queue.Queue[_Pending | None] = queue.Queue(maxsize=1)
        self._current: _Pending | None = None
        self._lock = threading.Lock()
        self._reports: list[str] = []
        self._wake_read, self._wake_write = os.pipe()
        self._reader: threading.Thread | None = None
        self._killed = False

    # ------------------------------------------------------------ process
    def start(self, environment: Mapping[str, str], python: str, python_path: str) -> None:
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True,
            name=f"runtime-api-{self.runtime.name}-{self.number}",
        ).start()  # fmt: skip
        spec = self.runtime.spec
        env = {
            **environment,
            "AWS_LAMBDA_RUNTIME_API": self.server.address,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name(),
            "LAMBDA_RUNTIME_DIR": python_path.rsplit(":", 1)[-1],
            "PYTHONPATH": python_path,
            # Lambda's PATH, with this interpreter's directory for /var/lang/bin.
            "PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin",
        }
        self.spawned_at = time.perf_counter()
        # -S: no site-packages, so only PYTHONPATH is importable. Its own process group: the
        # terminal's Ctrl-C is the runner's to handle (it drains first), and a kill takes the
        # function's own children too.
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter and the runtime client
            [python, "-S", "-m", "awslambdaric", spec.handler],
            cwd=spec.code_uri, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, process_group=0,
        )  # fmt: skip
        self._reader = threading.Thread(
            target=self._pump, daemon=True, name=f"output-{self.runtime.name}-{self.number}"
        )
        self._reader.start()

    def kill(self) -> None:
        """Stop the process at once (nothing more of the function runs), then the Runtime API. Idempotent."""
        with self._lock:
            if self._killed:
                return
            self._killed = True
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        if process is not None:
            process.wait()
        if self._reader is not None:
            self._reader.join(5)
        while True:  # release a /next still waiting
            try:
                self._handoff.put_nowait(None)
                break
            except queue.Full:
                self._handoff.get_nowait()
        threading.Thread(target=self._close_server, daemon=True).start()

    def _close_server(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def memory(self) -> int | None:
        """Resident memory now, in MB; also keeps the peak (``peak_mb``) while the process can be read."""
        read = None if self.process is None else _memory_mb(self.process.pid)
        if read is None:
            return None
        resident, peak = read
        self.peak_mb = max(self.peak_mb or 0, peak)
        return resident

    def peak(self) -> int | None:
        """The process's peak resident memory so far (what REPORT calls Max Memory Used)."""
        self.memory()
        return self.peak_mb

    # ------------------------------------------------------------ the Runtime API's side
    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """One Runtime API request: (status, headers, body); status 0 closes the connection unanswered."""
        if method == "GET" and path == f"{API}/invocation/next":
            pending = self.next_invocation()
            if pending is None:
                return 0, {}, b""
            return 200, pending.headers, pending.payload
        error_type = headers.get("lambda-runtime-function-error-type")
        if method == "POST" and path == f"{API}/init/error":
            self.init_failed(_error_from(body, error_type))
            return 202, {}, _json({"status": "OK"})
        prefix = f"{API}/invocation/"
        request_id, _, what = path.removeprefix(prefix).partition("/")
        if method != "POST" or not path.startswith(prefix) or what not in ("response", "error"):
            return 404, {}, _json({"errorMessage": f"no such path {path}", "errorType": "InvalidPath"})
        error = _error_from(body, error_type) if what == "error" else None
        if not self.complete(request_id, body, error):
            return 400, {}, _json({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
        return 202, {}, _json({"status": "OK"})

    def next_invocation(self) -> _Pending | None:
        if not self.initialized.is_set():
            self.init_ms = (time.perf_counter() - self.spawned_at) * 1000
            self.initialized.set()
        pending = self._handoff.get()
        if pending is not None:
            pending.handed_at = time.perf_counter()
        return pending

    def complete(self, request_id: str, body: bytes, error: FunctionError | None) -> bool:
        with self._lock:
            pending = self._current
            if pending is None or pending.request_id != request_id or pending.done.is_set():
                return False
            pending.finished_at = time.perf_counter()
            if error is None:
                pending.result = body
            else:
                pending.error = error
            pending.done.set()
        return True

    def init_failed(self, error: FunctionError) -> None:
        self.init_error = error

    # ------------------------------------------------------------ the invoker's side
    def wait_initialized(self, timeout: float) -> FunctionError | None:
        if not self.initialized.wait(timeout):
            return FunctionError("Runtime.InitTimeout", f"init did not finish within {timeout:.2f} seconds")
        if self.init_error is not None:
            return self.init_error
        if self.exited.is_set():
            return _exit_error(self.exit_status)
        return None

    def run(self, pending: _Pending, timeout: float, memory_limit: int) -> str:
        """Hand one invocation over and wait: ``done``, ``timeout``, ``exited`` or ``memory``."""
        with self._lock:
            self._current = pending
        self._handoff.put(pending)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            if pending.done.wait(min(remaining, MEMORY_SAMPLE_SECONDS)):
                break
            if self.exited.is_set():
                return "exited"
            resident = self.memory()
            if resident is not None and resident > memory_limit:
                return "memory"
        with self._lock:
            self._current = None
        if self.exited.is_set() and pending.result is None and pending.error is None:
            return "exited"
        return "done"

    # ------------------------------------------------------------ output
    def log_after_output(self, lines: list[str]) -> None:
        """Log these after what the function has written so far (its output is still in the pipe)."""
        with self._lock:
            if self._reader is not None and self._reader.is_alive():
                self._reports.extend(lines)
                with contextlib.suppress(OSError):
                    os.write(self._wake_write, b"x")
                return
        for line in lines:
            self.runtime.log(self.runtime.name, line)

    def _pump(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        out = self.process.stdout.fileno()
        partial = b""
        name = self.runtime.name
        while True:
            ready, _, _ = select.select([out, self._wake_read], [], [])
            if out in ready:
                chunk = os.read(out, 65536)
                if not chunk:
                    break
                *lines, partial = (partial + chunk).split(b"\n")
                for line in lines:
                    self._emit(name, line)
                continue  # the function's output first, then any REPORT waiting behind it
            os.read(self._wake_read, 4096)
            self._flush_reports(name)
        if partial:
            self._emit(name, partial)
        self.exit_status = self.process.wait()
        with self._lock:
            self.exited.set()
            self.initialized.set()
            pending = self._current
            if pending is not None and not pending.done.is_set():
                pending.done.set()
        self._flush_reports(name)
        self.process.stdout.close()

    def _emit(self, name: str, raw: bytes) -> None:
        # The runtime client joins an error's lines with \r (one CloudWatch event); a terminal needs \n.
        for piece in raw.decode("utf-8", "replace").split("\r"):
            self.runtime.log(name, piece)

    def _flush_reports(self, name: str) -> None:
        with self._lock:
            lines, self._reports = self._reports, []
        for line in lines:
            self.runtime.log(name, line)


# ---------------------------------------------------------------- a function's environments


class ProcessRuntime:
    """One function of the template: its environment variables and its pool of execution environments."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        *,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        max_environments: int = 10,
        log: LogLine = lambda _name, _line: None,
        python: str = sys.executable,
        **_: Any,
    ):
        self.spec = spec
        self.name = spec.logical_id
        self.region = region
        self.arn = f"arn:aws:lambda:{region}:{account_id}:function:{self.name}"
        self.log = log
        self.python = python
        # What every environment of this function is given; add to it before the first cold start.
        self.environment: dict[str, str] = {**dict(environment), **reserved_environment(spec, region)}
        self._view: CodeView | None = None
        self._idle: list[Environment] = []
        self._busy: set[Environment] = set()
        self._slots = threading.BoundedSemaphore(max_environments)
        self._lock = threading.Lock()
        self._generation = 0
        self._numbers = itertools.count(1)
        self._closed = False

    @property
    def view(self) -> CodeView:
        with self._lock:
            if self._view is None:
                self._view = CodeView(LayerSource.from_makefile(path) for path in self.spec.layers)
            return self._view

    # ------------------------------------------------------------ pool
    def _spawn(self) -> Environment:
        view = self.view
        with self._lock:
            environment = Environment(self, next(self._numbers), self._generation)
        environment.start(self.environment, self.python, view.python_path(self.spec.code_uri))
        return environment

    def _checkout(self) -> tuple[Environment, bool]:
        with self._lock:
            while self._idle:
                environment = self._idle.pop()
                if environment.generation == self._generation and not environment.exited.is_set():
                    self._busy.add(environment)
                    return environment, False
                threading.Thread(target=environment.kill, daemon=True).start()
        environment = self._spawn()
        with self._lock:
            self._busy.add(environment)
        return environment, True

    def _checkin(self, environment: Environment, keep: bool) -> None:
        with self._lock:
            self._busy.discard(environment)
            keep = keep and not self._closed and environment.generation == self._generation
            if keep:
                self._idle.append(environment)
        if not keep:
            environment.kill()

    def retire_warm(self) -> int:
        """Make the next invocation cold-start: idle environments now, busy ones after their invocation."""
        with self._lock:
            self._generation += 1
            idle, self._idle = self._idle, []
            count = len(idle) + len(self._busy)
        for environment in idle:
            environment.kill()
        return count

    def close(self) -> None:
        with self._lock:
            self._closed = True
            environments = [*self._idle, *self._busy]
            self._idle = []
        for environment in environments:
            environment.kill()
        if self._view is not None:
            self._view.close()

    # ------------------------------------------------------------ invoking
    def warm_up(self) -> Invocation:
        """Start one environment and run its init, so a broken function shows at start-up, not at its first event."""
        with self._slots:
            environment, _ = self._checkout()
            error = environment.wait_initialized(INIT_SECONDS + self.spec.timeout)
            outcome = Invocation(
                self.name, "", cold=True, error=error, status="error" if error else "success",
                init_ms=environment.init_ms, memory_size=self.spec.memory_size, max_memory_mb=environment.peak(),
            )  # fmt: skip
            self._checkin(environment, keep=error is None)
        return outcome

    def invoke(self, event: Any) -> Invocation:
        request_id = str(uuid.uuid4())
        invocation = Invocation(self.name, request_id, cold=False, memory_size=self.spec.memory_size)
        try:
            payload = json.dumps(event).encode()
        except (TypeError, ValueError) as error:
            invocation.error = FunctionError("InvalidRequestContentException", str(error))
            invocation.status = "error"
            return invocation
        if len(payload) > MAX_PAYLOAD:
            # Refused before any environment is involved, as the Invoke API refuses it.
            invocation.error = too_large(len(payload))
            invocation.status = "error"
            return invocation
        with self._slots:
            environment, invocation.cold = self._checkout()
            keep = False
            try:
                keep = self._run(environment, invocation, payload)
            finally:
                self._checkin(environment, keep)
        return invocation

    def _run(self, environment: Environment, invocation: Invocation, payload: bytes) -> bool:
        spec = self.spec
        if invocation.cold:
            error = environment.wait_initialized(INIT_SECONDS + spec.timeout)
            invocation.init_ms = environment.init_ms
            if error is not None:
                invocation.error, invocation.status = error, "error"
                invocation.max_memory_mb = environment.peak()
                environment.kill()
                self.log(self.name, invocation.report())
                return False
        pending = _Pending(invocation.request_id, payload, self._headers(invocation.request_id))
        outcome = environment.run(pending, spec.timeout, spec.memory_size)
        started = pending.handed_at or time.perf_counter()
        ended = pending.finished_at or time.perf_counter()
        invocation.duration_ms = (ended - started) * 1000
        invocation.max_memory_mb = environment.peak()
        lines: list[str] = []
        keep = outcome == "done"
        if outcome == "timeout":
            environment.kill()
            invocation.duration_ms = spec.timeout * 1000.0
            invocation.error, invocation.status = timed_out(spec), "timeout"
            lines.append(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {invocation.request_id} "
                         f"{invocation.error.message}")  # fmt: skip
        elif outcome == "memory" or (keep and (invocation.max_memory_mb or 0) > spec.memory_size):
            environment.kill()
            keep = False
            invocation.error = FunctionError("Runtime.OutOfMemory", "Runtime exited with error: signal: killed")
            invocation.status = "error"
        elif outcome == "exited":
            environment.kill()
            invocation.error, invocation.status = _exit_error(environment.exit_status), "error"
        elif pending.error is not None:
            invocation.error, invocation.status = pending.error, "error"
        else:
            self._result(invocation, pending.result or b"null")
        environment.invocations += 1
        lines.append(invocation.report())
        if keep:
            environment.log_after_output(lines)
        else:
            for line in lines:
                self.log(self.name, line)
        return keep

    @staticmethod
    def _result(invocation: Invocation, body: bytes) -> None:
        if len(body) > MAX_PAYLOAD:
            invocation.error = FunctionError(
                "Function.ResponseSizeTooLarge",
                f"Response payload size ({len(body)} bytes) exceeded the maximum allowed ({MAX_PAYLOAD} bytes).",
            )
            invocation.status = "error"
            return
        try:
            invocation.result = json.loads(body)
        except ValueError:
            invocation.result = body.decode("utf-8", "replace")

    def _headers(self, request_id: str) -> dict[str, str]:
        now = time.time()
        return {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((now + self.spec.timeout) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": self.arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(now):08x}-{secrets.token_hex(12)};"
            f"Parent={secrets.token_hex(8)};Sampled=0",
        }
