"""The pipeline assembled from the template: data plane, functions, gateway, pollers.

``Pipeline`` has no threads and no sockets of its own: tests build one over moto's
in-process mock and a ``FakeClock`` and call ``gateway.handle`` and ``pollers[...].poll_once``
directly. ``runner.py`` adds the HTTP server and poller threads for ``make run``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inqueue_local.backends import Backend
from inqueue_local.clock import Clock
from inqueue_local.functions import (
    Function,
    format_line,
    function_environment,
    install_layered_environ,
    install_namespaced_imports,
    install_prefixed_output,
)
from inqueue_local.gateway import Gateway
from inqueue_local.poller import DEFAULT_POLLERS, DeadLetterWatch, Poller, QueueInfo
from inqueue_local.provision import Refs, load_local_secrets, provision, seed_secrets
from inqueue_local.template import SqsSource, Template, TemplateError


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
                out = getattr(sys.stdout, "target", sys.stdout)  # past the function prefixer
                out.write(line + "\n")
                out.flush()


@dataclass
class Pipeline:
    template: Template
    backend: Backend
    clock: Clock
    log: Log = field(default_factory=Log)
    config_dir: Path | None = None
    max_containers: int = 10
    refs: Refs = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    queues: dict[str, QueueInfo] = field(default_factory=dict)
    pollers: dict[str, Poller] = field(default_factory=dict)
    gateway: Gateway | None = None
    warnings: list[str] = field(default_factory=list)
    secrets: dict[str, Any] = field(default_factory=dict)

    def start(self, *, prefix_output: bool = True) -> Pipeline:
        # Metrics are disabled locally (no CloudWatch); Powertools still warns once per container.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        install_layered_environ()
        install_namespaced_imports()
        if prefix_output:
            install_prefixed_output()
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
            self.functions[name] = Function(
                spec, env, self.clock, region=self.backend.region, account_id=self.backend.account_id,
                max_containers=self.max_containers,
            )  # fmt: skip
        routes = self.template.http_routes()
        self.gateway = Gateway(
            [(route, self.functions[route.function]) for route in routes], self.clock,
            account_id=self.backend.account_id, log=self.log,
        )  # fmt: skip
        for source in sources:
            self.pollers[f"{source.function}.{source.event_name}"] = self.make_poller(source)
        return self

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
        for function in self.functions.values():
            started = time.perf_counter()
            function.warm_up()
            self.log(
                function.name,
                f"cold start: imported {function.spec.handler} in {(time.perf_counter() - started) * 1000:.0f} ms",
            )


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
