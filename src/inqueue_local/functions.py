"""Lambda functions, invoked in-process: containers, the context, and the environment each sees.

A container is what Lambda calls an execution environment, made as far as one Python
process allows:

* Its own environment. ``os.environ`` is replaced once by ``LayeredEnviron``: while a
  container's code runs (its import, i.e. the cold start, and each invocation) reads and
  writes go to that container's own copy, selected through a context variable. So the
  ingress and the worker each see their own template variables, concurrently, and
  nothing of the user's shell ``AWS_*`` (no real credentials or profile leak in).
* Its own modules. The handler module, the rest of its ``CodeUri``, the ``inqueue``
  layer package and Powertools are imported afresh per container, under its environment,
  and kept in the container's ``Namespace``, not in ``sys.modules``. Module-level
  singletons (Powertools' Logger and Metrics, the ``BatchProcessor``, clients, settings)
  are therefore per container, as in Lambda. Imports that run during an invocation
  (lazy ones, such as a source kind's module) are resolved in the same namespace by a
  thin wrapper around ``__import__`` and ``importlib.import_module``. Third-party
  packages without per-function state (boto3, botocore) are shared.
* One invocation at a time. Concurrency means more containers, each with its own
  cold start; a container whose invocation timed out is discarded, as Lambda does.
"""

from __future__ import annotations

import builtins
import contextvars
import importlib
import importlib.util
import io
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inqueue_local.clock import Clock
from inqueue_local.template import FunctionSpec

_environment: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("environment", default=None)
_function_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("function_name", default=None)
_namespace: contextvars.ContextVar[Namespace | None] = contextvars.ContextVar("namespace", default=None)
_import_lock = threading.RLock()

# Imported per container: the layer's package and the library that keeps per-function singletons.
ISOLATED_PACKAGES = frozenset({"inqueue", "aws_lambda_powertools"})

# Never inherited from the user's shell: a local run must not reach a real account.
_SCRUBBED_PREFIXES = ("AWS_", "POWERTOOLS_", "LAMBDA_", "_HANDLER", "_X_AMZN")


class LayeredEnviron(MutableMapping[str, str]):
    """``os.environ`` that is a function's own environment while that function's code runs."""

    def __init__(self, base: MutableMapping[str, str]):
        self.base = base

    def _target(self) -> MutableMapping[str, str]:
        layer = _environment.get()
        return self.base if layer is None else layer

    def __getitem__(self, key: str) -> str:
        return self._target()[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._target()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._target()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._target()))

    def __len__(self) -> int:
        return len(self._target())

    def copy(self) -> dict[str, str]:
        return dict(self._target())

    def __repr__(self) -> str:
        return f"LayeredEnviron({dict(self._target())!r})"


def install_layered_environ() -> None:
    if not isinstance(os.environ, LayeredEnviron):
        os.environ = LayeredEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003 - replaced, not cleared


NAME_WIDTH = 16


def format_line(name: str, message: str) -> str:
    """The runner's one line format: time, who (a function name, ``sqs``, ``runner``), what."""
    return f"{time.strftime('%H:%M:%S')} {name:<{NAME_WIDTH}} | {message}"


class PrefixedStream(io.TextIOBase):
    """stdout/stderr that prefixes each line written by a function's code with the function's name."""

    def __init__(self, target: Any):
        self.target = target
        self._pending = threading.local()
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        name = _function_name.get()
        if name is None:
            with self._lock:
                self.target.write(text)
            return len(text)
        buffered = getattr(self._pending, "text", "") + text
        *lines, rest = buffered.split("\n")
        self._pending.text = rest
        if lines:
            with self._lock:
                self.target.write("".join(format_line(name, line) + "\n" for line in lines))
                self.target.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self.target.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.target, "isatty", lambda: False)())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.target, "encoding", "utf-8"))


def install_prefixed_output() -> None:
    if not isinstance(sys.stdout, PrefixedStream):
        sys.stdout = PrefixedStream(sys.stdout)
    if not isinstance(sys.stderr, PrefixedStream):
        sys.stderr = PrefixedStream(sys.stderr)


class Namespace:
    """A container's private modules: what ``sys.modules`` holds for it while its imports run."""

    def __init__(self, tops: frozenset[str]):
        self.tops = tops
        self.modules: dict[str, Any] = {}
        self._depth = 0

    def owns(self, name: str) -> bool:
        return name.partition(".")[0] in self.tops

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Swap this namespace into ``sys.modules``; the caller holds ``_import_lock``."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        saved = {name: module for name, module in list(sys.modules.items()) if self.owns(name)}
        for name in saved:
            del sys.modules[name]
        sys.modules.update(self.modules)
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            for name in [name for name in list(sys.modules) if self.owns(name)]:
                self.modules[name] = sys.modules.pop(name)
            sys.modules.update(saved)


_original_import = builtins.__import__
_original_import_module = importlib.import_module


def _namespaced_import(
    name: str,
    globals: Mapping[str, Any] | None = None,  # noqa: A002 - the signature of __import__
    locals: Mapping[str, Any] | None = None,  # noqa: A002
    fromlist: Sequence[str] | None = (),
    level: int = 0,
) -> Any:
    namespace = _namespace.get()
    if namespace is None:
        return _original_import(name, globals, locals, fromlist or (), level)
    absolute = name if level == 0 else _resolve_relative(name, globals, level)
    if not namespace.owns(absolute):
        return _original_import(name, globals, locals, fromlist or (), level)
    modules = namespace.modules
    # Fast path: already imported in this container (most imports inside functions).
    if absolute in modules and modules[absolute] is not None:
        if not fromlist:
            top = absolute.partition(".")[0]
            if level == 0 and top in modules:
                return modules[top]
        elif all(hasattr(modules[absolute], item) for item in fromlist if item != "*"):
            return modules[absolute]
    with _import_lock, namespace.installed():
        return _original_import(name, globals, locals, fromlist or (), level)


def _namespaced_import_module(name: str, package: str | None = None) -> Any:
    namespace = _namespace.get()
    if namespace is None:
        return _original_import_module(name, package)
    absolute = importlib.util.resolve_name(name, package) if name.startswith(".") else name
    if not namespace.owns(absolute):
        return _original_import_module(name, package)
    if namespace.modules.get(absolute) is not None:
        return namespace.modules[absolute]
    with _import_lock, namespace.installed():
        return _original_import_module(name, package)


def _resolve_relative(name: str, globals: Mapping[str, Any] | None, level: int) -> str:  # noqa: A002
    package = str((globals or {}).get("__package__") or "")
    base = package.rsplit(".", level - 1)[0] if level > 1 else package
    return f"{base}.{name}" if name else base


def install_namespaced_imports() -> None:
    if builtins.__import__ is not _namespaced_import:
        builtins.__import__ = _namespaced_import
        importlib.import_module = _namespaced_import_module


@contextmanager
def running_as(name: str, environment: dict[str, str], namespace: Namespace | None = None) -> Iterator[None]:
    env_token = _environment.set(environment)
    name_token = _function_name.set(name)
    ns_token = _namespace.set(namespace)
    try:
        yield
    finally:
        _namespace.reset(ns_token)
        _function_name.reset(name_token)
        _environment.reset(env_token)


def base_environment() -> dict[str, str]:
    source = os.environ.base if isinstance(os.environ, LayeredEnviron) else os.environ
    return {k: v for k, v in source.items() if not k.startswith(_SCRUBBED_PREFIXES)}


# ---------------------------------------------------------------- the context object


@dataclass
class LambdaContext:
    """What the Python runtime passes as ``context``, fresh per invocation."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float
    clock: Clock
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock.now()) * 1000))


# ---------------------------------------------------------------- containers and invocations


class FunctionTimeout(Exception):
    pass


@dataclass
class Invocation:
    function: str
    request_id: str
    cold: bool
    duration_ms: float
    result: Any = None
    error: BaseException | None = None
    timed_out: bool = False

    @property
    def failed(self) -> bool:
        return self.error is not None or self.timed_out

    def describe_error(self) -> str:
        if self.timed_out:
            return "Task timed out"
        if self.error is None:
            return ""
        # One line: Powertools' BatchProcessingError carries every record's traceback after its first line.
        first = str(self.error).strip().splitlines()[0] if str(self.error).strip() else ""
        return f"{type(self.error).__name__}: {first}".rstrip(": ")


@dataclass
class Container:
    handler: Callable[[Any, Any], Any]
    environment: dict[str, str]
    namespace: Namespace
    invocations: int = 0


class Function:
    """A function of the template: its settings, environment and a pool of warm containers."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        clock: Clock,
        *,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        max_containers: int = 10,
        log: Callable[[str], None] = lambda _line: None,
    ):
        self.spec = spec
        self.name = spec.logical_id
        self.clock = clock
        self.region = region
        self.account_id = account_id
        self.arn = f"arn:aws:lambda:{region}:{account_id}:function:{self.name}"
        self.log = log
        self.environment = {
            **base_environment(),
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": str(spec.code_uri),
            "_HANDLER": spec.handler,
            "TZ": ":UTC",
            **dict(environment),
        }
        self._idle: list[Container] = []
        self._slots = threading.BoundedSemaphore(max_containers)
        self._pool_lock = threading.Lock()

    def _cold_start(self) -> Container:
        module_name, _, attribute = self.spec.handler.rpartition(".")
        code_dir = str(self.spec.code_uri)
        environment = dict(self.environment)
        namespace = Namespace(ISOLATED_PACKAGES | _top_level_names(self.spec.code_uri))
        # Serialized: sys.path and sys.modules are process-wide while the import runs.
        with _import_lock, running_as(self.name, environment, namespace), namespace.installed():
            sys.path.insert(0, code_dir)
            try:
                module = importlib.import_module(module_name)
            finally:
                sys.path.remove(code_dir)
        return Container(getattr(module, attribute), environment, namespace)

    def _checkout(self) -> tuple[Container, bool]:
        self._slots.acquire()
        with self._pool_lock:
            if self._idle:
                return self._idle.pop(), False
        try:
            return self._cold_start(), True
        except BaseException:
            self._slots.release()
            raise

    def _checkin(self, container: Container | None) -> None:
        if container is not None:
            with self._pool_lock:
                self._idle.append(container)
        self._slots.release()

    def warm_up(self) -> None:
        """Import the handler once at start-up, so a broken function fails ``make run``, not the first event."""
        container, _ = self._checkout()
        self._checkin(container)

    def invoke(self, event: Any) -> Invocation:
        request_id = str(uuid.uuid4())
        try:
            container, cold = self._checkout()
        except Exception as error:  # noqa: BLE001 - an init error is the invocation's error, as in Lambda
            return Invocation(self.name, request_id, cold=True, duration_ms=0.0, error=error)
        started = self.clock.now()
        context = LambdaContext(
            function_name=self.name,
            memory_limit_in_mb=self.spec.memory_size,
            invoked_function_arn=self.arn,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{self.name}",
            log_stream_name="local",
            deadline=started + self.spec.timeout,
            clock=self.clock,
        )
        invocation = Invocation(self.name, request_id, cold=cold, duration_ms=0.0)
        keep: Container | None = container
        try:
            with running_as(self.name, container.environment, container.namespace):
                invocation.result = container.handler(event, context)
        except Exception as error:  # noqa: BLE001 - a function error is an outcome, not the runner's crash
            invocation.error = error
        finally:
            elapsed = self.clock.now() - started
            invocation.duration_ms = elapsed * 1000
            if elapsed > self.spec.timeout:
                # Lambda discards a timed-out invocation's result and restarts the runtime.
                invocation.timed_out = True
                invocation.result = None
                keep = None
            container.invocations += 1
            self._checkin(keep)
        return invocation


def function_environment(
    spec: FunctionSpec, resolve: Callable[[Any], Any], backend_environment: Mapping[str, str]
) -> dict[str, str]:
    """Template variables resolved to local resources, over the backend's endpoint and dummy credentials."""
    local_defaults = {
        # No X-Ray daemon and no CloudWatch here: keep the handlers' output to their logs.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
    }
    variables = {name: resolve(value) for name, value in spec.environment.items()}
    return {
        **local_defaults,
        **dict(backend_environment),
        **{k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in variables.items() if v is not None},
    }


def _top_level_names(code_uri: Path) -> frozenset[str]:
    """The importable names a function's own code provides (its ``.py`` files and packages)."""
    names = {p.stem for p in code_uri.glob("*.py")} | {
        p.name for p in code_uri.iterdir() if (p / "__init__.py").exists()
    }
    return frozenset(names)
