"""Serving the console: on 127.0.0.1 only, in a thread; standalone (``inqueue console``) or beside ``make run``.

Werkzeug's threaded WSGI server (Flask's own, already what moto's server runs on): one
operator, a few requests a second, loopback only.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

from inqueue_ops.console.data import Console
from inqueue_ops.console.web import create_app
from inqueue_ops.dlq import DlqError

if TYPE_CHECKING:
    from collections.abc import Mapping

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 3001


class ConsoleServer:
    def __init__(self, console: Console, port: int = 0, host: str = LOOPBACK, *, token: str | None = None):
        if host != LOOPBACK:
            # It acts with the operator's credentials: nothing beyond this machine may reach it.
            raise ValueError(f"the console listens on {LOOPBACK} only, not {host!r}")
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self.console = console
        self.app = create_app(console, token=token, clock=console.clock)
        # Bound here, not by Werkzeug, which answers a busy port by printing and exiting the whole process.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(128)
            self.port = int(listener.getsockname()[1])
            self.server = make_server(host, self.port, self.app, threaded=True, fd=listener.fileno())
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DlqError(f"port {port} on {host} is in use (another console?): pass another port") from None
            raise
        finally:
            listener.close()  # the server holds its own duplicate of the socket
        self.app.config["INQUEUE_HOSTS"] = {f"{LOOPBACK}:{self.port}", f"localhost:{self.port}"}
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread: threading.Thread | None = None

    @property
    def token(self) -> str:
        return str(self.app.config["INQUEUE_TOKEN"])

    def start(self) -> str:
        self._thread = threading.Thread(target=self.server.serve_forever, name="console", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)


class ConsoleService:
    """The console as one of ``make run``'s services (``Runner.services``), on the runner's own resources."""

    name = "console"

    def __init__(self, port: int = 0):
        self.port = port
        self.server: ConsoleServer | None = None

    def environment(self) -> Mapping[str, Mapping[str, str]]:
        return {}

    def start(self, runner: Any) -> str:
        from inqueue_local.endpoints import STATE_FILE, describe
        from inqueue_ops.targets import Targets, local_endpoints

        state = describe(runner.template, runner.pipeline.refs, runner.backend, None)
        outputs = state["outputs"]
        targets = Targets(
            queue_url=outputs["EventsQueueUrl"],
            dlq_url=outputs["DeadLetterQueueUrl"],
            status_table=outputs.get("StatusTableName"),
            region=state["region"],
            endpoints=local_endpoints(state),
            state_file=STATE_FILE,
            outputs=outputs,
        )
        self.server = ConsoleServer(Console(targets), self.port)
        return self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
