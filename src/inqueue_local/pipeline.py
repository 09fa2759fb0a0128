"""The pipeline assembled from the template: data plane, functions, gateway, pollers.

``Pipeline`` has no threads of its own: tests build one over moto's in-process mock and a
``FakeClock`` and call ``gateway.handle`` and ``pollers[...].poll_once`` directly.
``runner.py`` adds the HTTP server and poller threads for ``make run``.

Each function is a ``Runtime`` made by ``runtime`` (the factory): ``ProcessRuntime`` by
default, a child process per execution environment; the stepped-clock tests and the soak
pass ``InProcessRuntime``. ``extra_environment`` adds variables to functions' environments
(by logical id, ``"*"`` for all), for services the runner starts beside the pipeline.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inqueue_local.backends import Backend
from inqueue_local.clock import Clock
from inqueue_local.gateway import Gateway
from inqueue_local.poller import DEFAULT_POLLERS, DeadLetterWatch, Poller, QueueInfo
from inqueue_local.provision import Refs, load_local_secrets, provision, seed_secrets
from inqueue_local.runtime import ProcessRuntime, Runtime, function_environment
from inqueue_local.template import SqsSource, Template, TemplateError

NAME_WIDTH = 16
RuntimeFactory = Callable[..., Runtime]


def format_line(name: str, message: str) -> str:
    """The runner's one line format: time, who (a function name, ``sqs``, ``runner``), what."""
    return f"{time.strftime('%H:%M:%S')} {name:<{NAME_WIDTH}} | {message}"


class Log:
    """One readable line per event, prefixed with who it is about (a function name, ``sqs``, ``runner``)."""

    def __init__(self, write: Callable[[str], None] | None = None):
        self._write = write
        self._lock = threading.Lock()
        self.lines: list[str] = []

    def __call__(self, name: str, message: str) -> None:
        line = format_line(name, message)
        with self._lock:
            self.lines.append(line)
            if len(self.lines) > 10_000:
                del self.lines[:5_000]
            if self._write is not None:
                self._write(line)
            else:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()


@dataclass
class Pipeline:
    template: Template
    backend: Backend
    clock: Clock
    log: Log = field(default_factory=Log)
    config_dir: Path | None = None
    max_environments: int = 10
    runtime: RuntimeFactory = ProcessRuntime
    extra_environment: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    refs: Refs = field(default_factory=dict)
    functions: dict[str, Runtime] = field(default_factory=dict)
    queues: dict[str, QueueInfo] = field(default_factory=dict)
    pollers: dict[str, Poller] = field(default_factory=dict)
    gateway: Gateway | None = None
    warnings: list[str] = field(default_factory=list)
    secrets: dict[str, Any] = field(default_factory=dict)

    def start(self) -> Pipeline:
        self.template.account_id = self.backend.account_id
        self.template.region = self.backend.region
        self.refs = provision(self.template, self.backend, lambda line: self.log("runner", f"created {line}"))
        if self.config_dir is not None:
            self.secrets = load_local_secrets(self.config_dir)
            for ref in seed_secrets(self.backend, self.secrets):
                self.log("runner", f"seeded secret {ref}")
        self.queues = {name: _queue_info(name, refs) for name, refs in self.refs.items() if "QueueUrl" in refs}
        specs = self.template.functions()
        sources = self.template.sqs_sources()
        for source in sources:
            self._check_mapping(source, specs[source.function].timeout)
        backend_env = self.backend.function_environment()
        for name, spec in specs.items():
            env = function_environment(spec, lambda value: self.template.resolve(value, self.refs), backend_env)
            env.update(self.extra_environment.get("*", {}))
            env.update(self.extra_environment.get(name, {}))
            self.functions[name] = self.runtime(
                spec, env, clock=self.clock, region=self.backend.region, account_id=self.backend.account_id,
                max_environments=self.max_environments, log=self.log,
            )  # fmt: skip
        routes = self.template.http_routes()
        self.gateway = Gateway(
            [(route, self.functions[route.function]) for route in routes], self.clock,
            account_id=self.backend.account_id, log=self.log,
        )  # fmt: skip
        for source in sources:
            self.pollers[f"{source.function}.{source.event_name}"] = self.make_poller(source)
        return self

    def close(self) -> None:
        """Stop every function's execution environments."""
        for function in self.functions.values():
            function.close()

    def make_poller(self, source: SqsSource, stop: threading.Event | None = None) -> Poller:
        return Poller(
            source, self.functions[source.function], self.backend.client("sqs"), self.queues[source.queue], self.clock,
            region=self.backend.region, log=self.log, stop=stop,
        )  # fmt: skip

    def poller_count(self, source: SqsSource) -> int:
        return source.maximum_concurrency or DEFAULT_POLLERS

    def dead_letter_watches(self) -> list[DeadLetterWatch]:
        watches = []
        by_arn = {info.arn: info for info in self.queues.values()}
        for info in self.queues.values():
            target = by_arn.get(info.dead_letter_arn or "")
            if target is not None:
                watches.append(DeadLetterWatch(self.backend.client("sqs"), target.url, target.logical_id, self.log))
        return watches

    def _check_mapping(self, source: SqsSource, timeout: int) -> None:
        queue = self.queues[source.queue]
        where = f"{source.function} event {source.event_name}"
        if queue.visibility_timeout < timeout:
            # AWS refuses to create this mapping (InvalidParameterValueException).
            raise TemplateError(
                f"{where}: queue {source.queue} visibility timeout ({queue.visibility_timeout} s) is less than "
                f"the function timeout ({timeout} s); AWS refuses this trigger"
            )
        advised = 6 * timeout + source.batching_window
        if queue.visibility_timeout < advised:
            warning = (
                f"{where}: queue {source.queue} visibility timeout {queue.visibility_timeout} s "
                "is under AWS's advice of "
                f"6 x timeout + batching window = {advised:g} s; a slow batch may be delivered twice"
            )
            self.warnings.append(warning)
            self.log("runner", f"warning: {warning}")
        if not source.enabled:
            self.log(source.function, f"event {source.event_name}: Enabled is false, not polling {source.queue}")

    def warm_up(self) -> None:
        """One execution environment per function, initialized in parallel, so a broken function shows at start."""
        outcomes: dict[str, Any] = {}

        def start(name: str, function: Runtime) -> None:
            outcomes[name] = function.warm_up()

        threads = [threading.Thread(target=start, args=item, daemon=True) for item in self.functions.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for name, outcome in outcomes.items():
            init = f"{outcome.init_ms:.0f} ms" if outcome.init_ms is not None else "?"
            if outcome.failed:
                self.log(
                    name,
                    f"init failed after {init}: {outcome.describe_error()}; every invocation retries the init "
                    "(edits under functions/ and src/inqueue/ are picked up)",
                )
            else:
                memory = f", {outcome.max_memory_mb} MB" if outcome.max_memory_mb is not None else ""
                self.log(name, f"cold start: {self.functions[name].spec.handler} initialized in {init}{memory}")


def _queue_info(logical_id: str, refs: dict[str, Any]) -> QueueInfo:
    attributes = refs.get("attributes") or {}
    redrive = json.loads(attributes["RedrivePolicy"]) if attributes.get("RedrivePolicy") else {}
    return QueueInfo(
        logical_id=logical_id,
        url=refs["QueueUrl"],
        arn=refs["Arn"],
        fifo=bool(refs.get("fifo")),
        visibility_timeout=int(attributes.get("VisibilityTimeout", 30)),
        max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
        dead_letter_arn=redrive.get("deadLetterTargetArn"),
    )
