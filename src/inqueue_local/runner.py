"""``make run``: the pipeline in the foreground, until Ctrl-C.

Start-up, in order: the backend; the services' environment variables (``Service``); the
pipeline (provisioning, one runtime per function); one warm environment per function;
the event source mappings; the services; the code watch (hot reload); the HTTP server.
A service is anything else ``make run`` should run beside the pipeline (an app the worker
forwards to, a console): it may add variables to functions' environments before they
start, and says in the ready line where it is.

Order of stopping, so that nothing accepted is lost: stop accepting requests (those in
flight are answered), let the pollers drain what is visible in the queues and finish
their batches, stop the services and the functions' environments, then the backend.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from inqueue_local.backends import Backend
from inqueue_local.clock import SystemClock
from inqueue_local.endpoints import describe, remove_state, write_state
from inqueue_local.layer import source_paths
from inqueue_local.pipeline import Log, Pipeline
from inqueue_local.poller import EventSourceMapping
from inqueue_local.reload import CodeWatch, under
from inqueue_local.server import GatewayServer
from inqueue_local.template import Template

DRAIN_SECONDS = 10.0
RELOAD_SECONDS = 1.0


class Service(Protocol):
    """Something ``make run`` runs beside the pipeline."""

    name: str

    def environment(self) -> Mapping[str, Mapping[str, str]]:
        """Variables to add to functions' environments, by logical id (``"*"``: every function)."""
        ...

    def start(self, runner: Runner) -> str:
        """Start (the pipeline is up, the HTTP server not yet); return where it is, for the ready line."""
        ...

    def stop(self) -> None: ...


@dataclass
class Runner:
    template: Template
    backend: Backend
    host: str = "127.0.0.1"
    port: int = 3000
    config_dir: Path | None = None
    log: Log = field(default_factory=Log)
    services: list[Service] = field(default_factory=list)
    reload: bool = True
    max_environments: int = 10  # per function, like an account's concurrency limit
    pipeline: Pipeline | None = None
    server: GatewayServer | None = None
    mappings: list[EventSourceMapping] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _hurry: threading.Event = field(default_factory=threading.Event)  # a second Ctrl-C: skip the waits
    _started_services: list[Service] = field(default_factory=list)

    def start(self) -> str:
        self.backend.start()
        extra: dict[str, dict[str, str]] = {}
        for service in self.services:
            for function, variables in service.environment().items():
                extra.setdefault(function, {}).update(variables)
        self.pipeline = Pipeline(
            self.template, self.backend, SystemClock(), log=self.log, config_dir=self.config_dir,
            extra_environment=extra, max_environments=self.max_environments,
        )  # fmt: skip
        self.pipeline.start()
        self.pipeline.warm_up()
        for source in self.template.sqs_sources():
            if not source.enabled:
                continue
            count = self.pipeline.poller_count(source)
            mapping = EventSourceMapping(lambda stop, s=source: self.pipeline.make_poller(s, stop), count)  # type: ignore[union-attr]
            mapping.start()
            self.mappings.append(mapping)
            self.log(source.function, f"polling {source.queue}: {_describe(source)}, {count} poller(s)")
        threading.Thread(target=self._watch_dead_letters, name="dlq-watch", daemon=True).start()
        where = []
        for service in self.services:
            where.append(f"{service.name} {service.start(self)}")
            self._started_services.append(service)
        if self.reload:
            threading.Thread(target=self._watch_code, name="code-watch", daemon=True).start()
        assert self.pipeline.gateway is not None
        self.server = GatewayServer(self.pipeline.gateway, self.host, self.port)
        self.server.start()
        routes = ", ".join(sorted({r.route_key for r in self.template.http_routes()}))
        also = "".join(f"; {line}" for line in where)
        ready = f"ready: {self.server.url} ({routes}) -> backend {self.backend.describe()}{also}; Ctrl-C to stop"
        self.log("runner", ready)
        write_state(describe(self.template, self.pipeline.refs, self.backend, self.server.url))  # for `inqueue --local`
        return self.server.url

    def _watch_dead_letters(self) -> None:
        assert self.pipeline is not None
        watches = self.pipeline.dead_letter_watches()
        while not self._stop.wait(1.0):
            for watch in watches:
                try:
                    watch.check()
                except Exception:  # noqa: BLE001, S112 - a watch is a convenience; the next tick retries
                    continue

    def _watch_code(self) -> None:
        """Hot reload: an edit under a function's code or its layer's package retires its warm environments."""
        assert self.pipeline is not None
        functions = self.pipeline.functions
        roots = {name: source_paths(f.spec.code_uri, f.spec.layers) for name, f in functions.items()}
        watch = CodeWatch(path for paths in roots.values() for path in paths)
        while not self._stop.wait(RELOAD_SECONDS):
            changed = watch.check()
            if not changed:
                continue
            retired = {name: functions[name].retire_warm() for name, paths in roots.items()
                       if any(under(path, paths) for path in changed)}  # fmt: skip
            shown = ", ".join(_relative(path) for path in changed[:3]) + (" ..." if len(changed) > 3 else "")
            names = ", ".join(f"{name} ({count})" for name, count in retired.items())
            self.log("runner", f"reload: {shown} changed; retired warm environments of {names}; "
                     "the next invocation cold-starts with the new code")  # fmt: skip

    def stop(self) -> None:
        remove_state()
        if self.server is not None:
            self.log("runner", "stopping: no new requests; answering those in flight")
            self.server.stop(hurry=self._hurry)
        self._drain()
        for mapping in self.mappings:
            mapping.close(hurry=self._hurry)
        self._stop.set()
        self._report_left()
        for service in reversed(self._started_services):
            service.stop()
        if self.pipeline is not None:
            self.pipeline.close()  # ends any invocation still running, so its poller can finish
        for mapping in self.mappings:
            mapping.close(timeout=2.0)  # the pollers end before the data plane they poll
        self.backend.stop()
        self.log("runner", "stopped")

    def hurry(self) -> None:
        """Stop without waiting for the drain, in-flight requests or batches; everything is still closed in order."""
        if not self._hurry.is_set():
            self._hurry.set()
            self.log("runner", "second Ctrl-C: not waiting for the drain or work in flight (again to quit now)")

    def _drain(self) -> None:
        """Let the pollers take what is visible, so an accepted event is processed before the data plane goes."""
        if self.pipeline is None or not self.mappings:
            return
        sqs = self.backend.client("sqs")
        polled = {self.pipeline.queues[s.queue].url for s in self.template.sqs_sources() if s.enabled}
        deadline = time.monotonic() + DRAIN_SECONDS
        while polled and time.monotonic() < deadline and not self._hurry.is_set():
            visible = sum(_count(sqs, url, "ApproximateNumberOfMessages") for url in polled)
            if visible == 0:
                return
            self.log("runner", f"draining: {visible} event(s) still to process")
            self._hurry.wait(0.5)

    def _report_left(self) -> None:
        if self.pipeline is None or not self.pipeline.queues:
            return
        sqs = self.backend.client("sqs")
        for info in self.pipeline.queues.values():
            waiting = _count(sqs, info.url, "ApproximateNumberOfMessages")
            hidden = _count(sqs, info.url, "ApproximateNumberOfMessagesNotVisible")
            if waiting or hidden:
                self.log(
                    "runner",
                    f"{info.logical_id}: {waiting} waiting, {hidden} awaiting retry "
                    "(kept only by a persistent backend)",
                )

    def run_forever(self) -> None:
        stopping = threading.Event()

        signals = 0

        def on_signal(_signum: int, _frame: Any) -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                stopping.set()
            elif signals == 2:
                self.hurry()
            else:
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            self.start()
            while not stopping.wait(0.5):
                pass
        finally:
            self.stop()


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _count(sqs: Any, url: str, attribute: str) -> int:
    try:
        return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[attribute])["Attributes"].get(attribute, 0))
    except Exception:  # noqa: BLE001 - counting is advisory during shutdown
        return 0


def _describe(source: Any) -> str:
    parts = [f"BatchSize {source.batch_size}", f"window {source.batching_window:g} s"]
    if source.report_batch_item_failures:
        parts.append("ReportBatchItemFailures")
    if source.filters:
        parts.append(f"{len(source.filters)} filter(s)")
    return ", ".join(parts)
