"""``make run``: the pipeline in the foreground, until Ctrl-C.

Order of stopping, so that nothing accepted is lost: stop accepting requests (those in
flight are answered), let the pollers drain what is visible in the queues and finish
their batches, then stop the backend.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inqueue_local.backends import Backend
from inqueue_local.clock import SystemClock
from inqueue_local.endpoints import describe, remove_state, write_state
from inqueue_local.pipeline import Log, Pipeline
from inqueue_local.poller import Mapping
from inqueue_local.server import GatewayServer
from inqueue_local.template import Template

DRAIN_SECONDS = 10.0


@dataclass
class Runner:
    template: Template
    backend: Backend
    host: str = "127.0.0.1"
    port: int = 3000
    config_dir: Path | None = None
    log: Log = field(default_factory=Log)
    pipeline: Pipeline | None = None
    server: GatewayServer | None = None
    mappings: list[Mapping] = field(default_factory=list)
    _watch_stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> str:
        self.backend.start()
        self.pipeline = Pipeline(self.template, self.backend, SystemClock(), log=self.log, config_dir=self.config_dir)
        self.pipeline.start()
        self.pipeline.warm_up()
        for source in self.template.sqs_sources():
            if not source.enabled:
                continue
            count = self.pipeline.poller_count(source)
            mapping = Mapping(lambda stop, s=source: self.pipeline.make_poller(s, stop), count)  # type: ignore[union-attr]
            mapping.start()
            self.mappings.append(mapping)
            self.log(source.function, f"polling {source.queue}: {_describe(source)}, {count} poller(s)")
        threading.Thread(target=self._watch_dead_letters, name="dlq-watch", daemon=True).start()
        assert self.pipeline.gateway is not None
        self.server = GatewayServer(self.pipeline.gateway, self.host, self.port)
        self.server.start()
        routes = ", ".join(sorted({r.route_key for r in self.template.http_routes()}))
        ready = f"ready: {self.server.url} ({routes}) -> backend {self.backend.describe()}; Ctrl-C to stop"
        self.log("runner", ready)
        write_state(describe(self.template, self.pipeline.refs, self.backend, self.server.url))  # for `inqueue --local`
        return self.server.url

    def _watch_dead_letters(self) -> None:
        assert self.pipeline is not None
        watches = self.pipeline.dead_letter_watches()
        while not self._watch_stop.wait(1.0):
            for watch in watches:
                try:
                    watch.check()
                except Exception:  # noqa: BLE001, S112 - a watch is a convenience; the next tick retries
                    continue

    def stop(self) -> None:
        remove_state()
        if self.server is not None:
            self.log("runner", "stopping: no new requests; answering those in flight")
            self.server.stop()
        self._drain()
        for mapping in self.mappings:
            mapping.close()
        self._watch_stop.set()
        self._report_left()
        self.backend.stop()
        self.log("runner", "stopped")

    def _drain(self) -> None:
        """Let the pollers take what is visible, so an accepted event is processed before the data plane goes."""
        assert self.pipeline is not None
        sqs = self.backend.client("sqs")
        polled = {self.pipeline.queues[s.queue].url for s in self.template.sqs_sources() if s.enabled}
        deadline = time.monotonic() + DRAIN_SECONDS
        while polled and time.monotonic() < deadline:
            visible = sum(_count(sqs, url, "ApproximateNumberOfMessages") for url in polled)
            if visible == 0:
                return
            self.log("runner", f"draining: {visible} event(s) still to process")
            time.sleep(0.5)

    def _report_left(self) -> None:
        assert self.pipeline is not None
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
        self.start()
        stopping = threading.Event()

        def on_signal(_signum: int, _frame: Any) -> None:
            if stopping.is_set():
                raise KeyboardInterrupt
            stopping.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            while not stopping.wait(0.5):
                pass
        finally:
            self.stop()


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
