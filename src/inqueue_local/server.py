"""The transport: an HTTP/1.1 server on 127.0.0.1 that hands each request to the gateway."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from inqueue_local.gateway import Gateway

MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GatewayServer

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        response = self.server.gateway.handle(
            self.command, self.path, list(self.headers.items()), body,
            source_ip=self.client_address[0], protocol=self.request_version,
        )  # fmt: skip
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _read_body(self) -> bytes | None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self.send_error(413, "Request Entity Too Large")
            return None
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """The gateway logs each request once, with its function's name."""


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = False  # Ctrl-C waits for requests in flight: an accepted event is answered
    block_on_close = True
    request_queue_size = 128

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 3000):
        self.gateway = gateway
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="gateway", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
