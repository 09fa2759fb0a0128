"""A second ``Runtime``, inside this process: for the stepped-clock conformance tests and the soak only.

``make run`` never uses it: functions run in child processes there (``runtime.ProcessRuntime``).
This one exists because the conformance tests in ``tests/local/`` and the soak
(``soak.py``) step one clock that moto's in-process SQS, the runner and the handler all
read (a ``FakeClock``, freezegun), so that visibility timeouts, batching windows and
deadlines pass without sleeping; a child process cannot share that clock.

How it keeps functions apart without a process: one invocation at a time in the whole
process (one lock), and while a function's code runs (its cold start, each invocation)
``os.environ`` holds that environment's variables and ``sys.modules`` that environment's
own copies of the layer's packages (``inqueue``, Powertools) and of its code's modules;
both are put back when it returns. Nothing is replaced for good and nothing overlaps, so
no state passes between functions or environments; but it is not isolation (a handler
could still import the test's modules), which is what ``ProcessRuntime`` and its tests
are for. A handler cannot be stopped here: a timeout is judged on the injected clock when
the handler returns, and a ``BaseException`` escaping it (the soak's simulated kill)
counts as the environment dying; either way the environment is discarded, as Lambda does.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from inqueue_local.clock import Clock
from inqueue_local.runtime import (
    MAX_PAYLOAD,
    FunctionError,
    Invocation,
    LogLine,
    reserved_environment,
    timed_out,
    too_large,
)
from inqueue_local.template import FunctionSpec

_one_at_a_time = threading.RLock()
# Loaded per environment: the layer's package and the library that keeps per-function singletons.
LAYER_PACKAGES = frozenset({"inqueue", "aws_lambda_powertools"})


@dataclass
class LambdaContext:
    """What the Python runtime passes as ``context``, fresh per invocation, on the injected clock."""

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


@dataclass
class _Environment:
    handler: Callable[[Any, Any], Any]
    modules: dict[str, ModuleType]
    generation: int
    invocations: int = 0


class InProcessRuntime:
    """A function of the template run in this process; same interface as ``ProcessRuntime``."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        *,
        clock: Clock,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        log: LogLine = lambda _name, _line: None,
        **_: Any,
    ):
        self.spec = spec
        self.name = spec.logical_id
        self.clock = clock
        self.arn = f"arn:aws:lambda:{region}:{account_id}:function:{self.name}"
        self.log = log
        self.environment: dict[str, str] = {
            **dict(environment),
            **reserved_environment(spec, region),
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        }
        # Called with an environment's modules after its cold start (the soak adds its processor).
        self.on_cold_start: list[Callable[[dict[str, ModuleType]], None]] = []
        self._owned = LAYER_PACKAGES | _top_level_names(spec.code_uri)
        self._idle: list[_Environment] = []
        self._generation = 0

    def _owns(self, name: str) -> bool:
        return name.partition(".")[0] in self._owned

    @contextmanager
    def _entered(self, modules: dict[str, ModuleType]) -> Iterator[None]:
        """This environment's variables and modules in place while its code runs; the caller's back after."""
        saved_environ = dict(os.environ)
        saved_modules = {name: module for name, module in list(sys.modules.items()) if self._owns(name)}
        for name in saved_modules:
            del sys.modules[name]
        sys.modules.update(modules)
        os.environ.clear()
        os.environ.update(self.environment)
        code_dir = str(self.spec.code_uri)
        sys.path.insert(0, code_dir)
        try:
            yield
        finally:
            sys.path.remove(code_dir)
            for name in [name for name in list(sys.modules) if self._owns(name)]:
                modules[name] = sys.modules.pop(name)
            sys.modules.update(saved_modules)
            os.environ.clear()
            os.environ.update(saved_environ)

    def _cold_start(self) -> _Environment:
        module_name, _, attribute = self.spec.handler.rpartition(".")
        modules: dict[str, ModuleType] = {}
        with self._entered(modules):
            module = importlib.import_module(module_name)
            handler = getattr(module, attribute)
        environment = _Environment(handler, modules, self._generation)
        for hook in self.on_cold_start:
            hook(modules)
        return environment

    def warm_up(self) -> Invocation:
        started = time.perf_counter()
        with _one_at_a_time:
            try:
                self._idle.append(self._cold_start())
                error = None
            except Exception as failure:  # noqa: BLE001 - an init error is reported, as Lambda reports it
                error = _function_error(failure, "Runtime.ImportModuleError")
        init_ms = (time.perf_counter() - started) * 1000
        return Invocation(
            self.name, "", cold=True, error=error, status="error" if error else "success", init_ms=init_ms,
            memory_size=self.spec.memory_size,
        )  # fmt: skip

    def retire_warm(self) -> int:
        with _one_at_a_time:
            self._generation += 1
            count, self._idle = len(self._idle), []
        return count

    def close(self) -> None:
        self.retire_warm()

    def invoke(self, event: Any) -> Invocation:
        request_id = str(uuid.uuid4())
        invocation = Invocation(self.name, request_id, cold=False, memory_size=self.spec.memory_size)
        payload = json.dumps(event)
        if len(payload.encode()) > MAX_PAYLOAD:
            invocation.error, invocation.status = too_large(len(payload.encode())), "error"
            return invocation
        with _one_at_a_time:
            environment = self._checkout(invocation)
            if environment is None:
                self.log(self.name, invocation.report())
                return invocation
            keep = self._run(environment, invocation, json.loads(payload))
            if keep and environment.generation == self._generation:
                self._idle.append(environment)
        self.log(self.name, invocation.report())
        return invocation

    def _checkout(self, invocation: Invocation) -> _Environment | None:
        if self._idle:
            return self._idle.pop()
        invocation.cold = True
        started = time.perf_counter()
        try:
            return self._cold_start()
        except Exception as failure:  # noqa: BLE001 - an init error is the invocation's error, as in Lambda
            invocation.error, invocation.status = _function_error(failure, "Runtime.ImportModuleError"), "error"
            return None
        finally:
            invocation.init_ms = (time.perf_counter() - started) * 1000

    def _run(self, environment: _Environment, invocation: Invocation, event: Any) -> bool:
        """Call the handler; False when the environment must be discarded (timed out or died)."""
        started_at = self.clock.now()
        context = LambdaContext(
            function_name=self.name,
            memory_limit_in_mb=self.spec.memory_size,
            invoked_function_arn=self.arn,
            aws_request_id=invocation.request_id,
            log_group_name=f"/aws/lambda/{self.name}",
            log_stream_name="local",
            deadline=started_at + self.spec.timeout,
            clock=self.clock,
        )
        started = time.perf_counter()
        died: BaseException | None = None
        result: Any = None
        try:
            with self._entered(environment.modules):
                result = environment.handler(event, context)
        except Exception as error:  # noqa: BLE001 - a function error is an outcome, not the runner's crash
            invocation.error, invocation.status = _function_error(error), "error"
            self.log(self.name, f"[ERROR] {invocation.error}")
        except (KeyboardInterrupt, GeneratorExit):
            raise
        except BaseException as error:  # noqa: BLE001 - SystemExit or a simulated kill: the environment died
            died = error
        invocation.duration_ms = (time.perf_counter() - started) * 1000
        environment.invocations += 1
        if self.clock.now() - started_at > self.spec.timeout:
            invocation.result = None
            invocation.error, invocation.status = timed_out(self.spec), "timeout"
            invocation.duration_ms = self.spec.timeout * 1000.0
            return False
        if died is not None:
            status = died.code if isinstance(died, SystemExit) else None
            detail = f"exit status {status}" if isinstance(status, int) and status else "signal: killed"
            invocation.error = FunctionError("Runtime.ExitError", f"Runtime exited with error: {detail}")
            invocation.status = "error"
            return False
        if invocation.error is None:
            try:
                invocation.result = json.loads(json.dumps(result))
            except (TypeError, ValueError) as error:
                invocation.error = FunctionError("Runtime.MarshalError", f"Unable to marshal response: {error}")
                invocation.status = "error"
        return True


def _function_error(error: BaseException, wrap: str | None = None) -> FunctionError:
    trace = tuple(traceback.format_tb(error.__traceback__))
    if wrap is not None and isinstance(error, ImportError):
        return FunctionError(wrap, f"Unable to import module: {error}", trace)
    return FunctionError(type(error).__name__, str(error), trace)


def _top_level_names(code_uri: Path) -> frozenset[str]:
    """The importable names a function's own code provides (its ``.py`` files and packages)."""
    names = {p.stem for p in code_uri.glob("*.py")} | {
        p.name for p in code_uri.iterdir() if (p / "__init__.py").exists()
    }
    return frozenset(names)
