"""The transport: HTTP/1.1 on 127.0.0.1 that hands each request to the gateway.

HTTP is parsed by h11 (python-hyper's sans-I/O HTTP/1.1, maintained and strict: it
refuses a bad ``Content-Length``, an invalid chunk size or header name, conflicting
framing) instead of ``http.server``, whose edges dropped connections, read a body
after an invalid header line as a second request, skipped the size limit for chunked
bodies, waited forever on ``Content-Length: -1`` and answered in HTML. The I/O around
it is ours and small: a thread per connection with read timeouts, a size limit counted
as the body arrives (chunked or not), every error in the project's JSON error body
``{"error": {"code", "message"}}``, and a bounded shutdown that a stalled client cannot
hold up. It listens on loopback only.

Transport errors, before any function runs:

| status | code | when |
| --- | --- | --- |
| 400 | ``bad_request`` | not HTTP/1.1 as RFC 9112 has it (h11 says what) |
| 408 | ``request_timeout`` | the request stopped coming (``read_timeout`` without a byte, ``request_timeout`` in all) |
| 413 | ``payload_too_large`` | a body over ``max_body`` (API Gateway's 10 MiB), declared or counted |
| 431 | ``headers_too_large`` | request line and headers over 16 KiB |
| 503 | ``shutting_down`` | the runner is stopping; send it again |
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import time
import traceback
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Protocol

import h11

from inqueue_local.gateway import Response

MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
MAX_HEADER_BYTES = 16 * 1024
READ_TIMEOUT = 10.0  # no byte of a started request for this long: 408
REQUEST_TIMEOUT = 30.0  # a whole request (line, headers, body) must arrive within this
IDLE_TIMEOUT = 5.0  # a kept-alive connection with no new request is closed, silently
GRACE = 10.0  # at stop, how long requests already in a function may take to be answered
MAX_CONNECTIONS = 128
_TICK = 0.25  # how often a waiting thread looks at the stop flag
_LINGER = 2.0  # after an error answer, read what the client still sends for this long, so it gets the answer


class Handler(Protocol):
    """What the transport hands requests to: ``inqueue_local.gateway.Gateway``."""

    def handle(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        source_ip: str = ...,
        protocol: str = ...,
    ) -> Response: ...


class _Refused(Exception):
    """Answer the request with this error and close the connection."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _Gone(Exception):
    """The client went away, or sent nothing: close without an answer (there is no request to answer)."""


class GatewayServer:
    def __init__(
        self,
        gateway: Handler,
        host: str = "127.0.0.1",
        port: int = 3000,
        *,
        max_body: int = MAX_BODY,
        read_timeout: float = READ_TIMEOUT,
        request_timeout: float = REQUEST_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        grace: float = GRACE,
        max_connections: int = MAX_CONNECTIONS,
    ):
        if not _is_loopback(host):
            raise ValueError(f"the local runner listens on loopback only, not on {host!r}")
        self.gateway = gateway
        self.max_body = max_body
        self.read_timeout = read_timeout
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self.grace = grace
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[threading.Thread] = set()
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=128)
        self._listener.settimeout(_TICK)
        self.server_address = self._listener.getsockname()
        self._acceptor: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def _log(self, message: str) -> None:
        log: Callable[[str, str], None] | None = getattr(self.gateway, "log", None)
        if log is not None:
            log("transport", message)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> threading.Thread:
        self._acceptor = threading.Thread(target=self._accept_loop, name="gateway", daemon=True)
        self._acceptor.start()
        return self._acceptor

    def stop(self, hurry: threading.Event | None = None) -> None:
        """Stop accepting; answer requests already in a function (up to ``grace``, or until ``hurry``
        is set: a second Ctrl-C); close everything else.

        Bounded whatever clients do: a client mid-request gets 503 ``shutting_down``, an idle
        one is closed, and every thread is a daemon, so a second Ctrl-C is never held up.
        """
        hurried = hurry.is_set if hurry is not None else lambda: False
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=2 * _TICK + 1)
        self._refuse_backlog()
        with contextlib.suppress(OSError):
            self._listener.close()
        deadline = time.monotonic() + self.grace
        with self._idle:
            while self._in_flight and time.monotonic() < deadline and not hurried():
                self._idle.wait(timeout=min(_TICK, max(deadline - time.monotonic(), 0.0)))
        if self._in_flight:
            self._log(f"stopping with {self._in_flight} request(s) still in a function after {self.grace:g} s")
        # Connection threads notice the flag within a tick (plus a linger of at most _LINGER).
        for thread in list(self._connections):
            if hurried():
                break  # daemons: what is left goes with the process
            thread.join(timeout=max(deadline - time.monotonic(), 0.0) + 2 * _TICK + _LINGER)

    def _refuse_backlog(self) -> None:
        """Connections the kernel completed but nobody accepted yet: a request among them gets 503,
        rather than the reset closing the listener would give it."""
        self._listener.setblocking(False)
        while True:
            try:
                sock, _address = self._listener.accept()
            except OSError:
                return
            if not _has_bytes(sock):
                sock.close()  # nothing asked, nothing to answer
                continue
            refused = _Refused(503, "shutting_down", "the local runner is stopping; send the request again")
            thread = threading.Thread(target=self._refuse_and_close, args=(sock, refused), daemon=True)
            with self._lock:
                self._connections.add(thread)
            thread.start()

    def _refuse_and_close(self, sock: socket.socket, refused: _Refused) -> None:
        try:
            self._refuse(sock, refused)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._connections.discard(threading.current_thread())

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=_TICK):
                continue  # every slot busy: the kernel's backlog holds new connections meanwhile
            try:
                sock, address = self._listener.accept()
            except TimeoutError:
                self._slots.release()
                continue
            except OSError:
                self._slots.release()
                return  # the listener was closed by stop()
            thread = threading.Thread(
                target=self._connection, args=(sock, address), name=f"http-{address[1]}", daemon=True
            )
            with self._lock:
                self._connections.add(thread)
            thread.start()

    # -- one connection ----------------------------------------------------------------

    def _connection(self, sock: socket.socket, address: tuple[Any, ...]) -> None:
        try:
            sock.settimeout(_TICK)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._serve(sock, str(address[0]))
        except _Refused as refused:
            self._refuse(sock, refused)
        except (_Gone, OSError):
            pass
        except Exception:  # noqa: BLE001 - a bug here must still answer, and never kill the server
            self._log("transport failed:\n" + traceback.format_exc())
            self._refuse(sock, _Refused(500, "internal_error", "the local runner's transport failed"))
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._connections.discard(threading.current_thread())
            self._slots.release()

    def _serve(self, sock: socket.socket, client: str) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        while True:
            request, body = self._receive(sock, conn)
            response = self._dispatch(request, body, client)
            closing = self._stopping.is_set()
            self._respond(sock, conn, request, response, closing)
            if closing or conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    def _receive(self, sock: socket.socket, conn: h11.Connection) -> tuple[h11.Request, bytes]:
        request: h11.Request | None = None
        chunks: list[bytes] = []
        size = 0
        started: float | None = None  # the first byte of this request
        last_byte = time.monotonic()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as error:
                status = error.error_status_hint if 400 <= error.error_status_hint < 500 else 400
                code = "headers_too_large" if status == 431 else "bad_request"
                raise _Refused(status, code, f"malformed HTTP request: {str(error)[:200]}") from None
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    sock.sendall(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                data, last_byte = self._read(sock, started, last_byte, pending=started is not None)
                if started is None:
                    started = last_byte
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
                self._check_head(event)
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_body:
                    raise _Refused(413, "payload_too_large", f"the body is over the {self.max_body}-byte limit")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return request, b"".join(chunks)
            else:  # ConnectionClosed, or PAUSED, which a server that answers each request never sees
                raise _Gone()

    def _read(
        self, sock: socket.socket, started: float | None, last_byte: float, *, pending: bool
    ) -> tuple[bytes, float]:
        """The next bytes of the connection; b"" when the client has closed its side."""
        while True:
            if self._stopping.is_set():
                if pending or _has_bytes(sock):  # a request has begun: say so, rather than reset it
                    raise _Refused(503, "shutting_down", "the local runner is stopping; send the request again")
                raise _Gone()
            try:
                data = sock.recv(65536)
            except TimeoutError:
                now = time.monotonic()
                if not pending:
                    if now - last_byte > self.idle_timeout:
                        raise _Gone() from None
                    continue
                if now - last_byte > self.read_timeout:
                    raise _Refused(
                        408, "request_timeout", f"no byte of the request arrived for {self.read_timeout:g} s"
                    ) from None
                if started is not None and now - started > self.request_timeout:
                    raise _Refused(
                        408, "request_timeout", f"the request did not arrive within {self.request_timeout:g} s"
                    ) from None
                continue
            now = time.monotonic()
            if started is not None and now - started > self.request_timeout:
                raise _Refused(408, "request_timeout", f"the request did not arrive within {self.request_timeout:g} s")
            return data, now

    def _check_head(self, request: h11.Request) -> None:
        head = len(request.method) + len(request.target) + sum(len(n) + len(v) + 4 for n, v in request.headers)
        if head > MAX_HEADER_BYTES:
            raise _Refused(431, "headers_too_large", f"the request line and headers are over {MAX_HEADER_BYTES} bytes")
        for name, value in request.headers:
            if name == b"content-length" and int(value) > self.max_body:
                # Said before the body is sent (and before a 100-continue), so the client need not send it.
                raise _Refused(413, "payload_too_large", f"the body is over the {self.max_body}-byte limit")

    def _dispatch(self, request: h11.Request, body: bytes, client: str) -> Response:
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers]
        with self._lock:
            self._in_flight += 1
        try:
            return self.gateway.handle(
                request.method.decode("ascii"),
                request.target.decode("latin-1"),
                headers,
                body,
                source_ip=client,
                protocol=f"HTTP/{request.http_version.decode('ascii')}",
            )
        except Exception:  # noqa: BLE001 - a bug in the gateway: the client still gets the error body
            self._log("gateway failed:\n" + traceback.format_exc())
            return _error_response(500, "internal_error", "the local runner's gateway failed")
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _respond(
        self, sock: socket.socket, conn: h11.Connection, request: h11.Request, response: Response, closing: bool
    ) -> None:
        headers = []
        for name, value in response.headers:
            if name.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            encoded = (name.encode("latin-1", "replace"), value.encode("utf-8"))
            if h11_header_ok(*encoded):
                headers.append(encoded)
            else:
                self._log(f"dropped a response header h11 refuses: {name[:40]!r}")
        bodiless = response.status < 200 or response.status in (204, 304)
        if not bodiless:
            headers.append((b"content-length", str(len(response.body)).encode()))
        if closing:
            headers.append((b"connection", b"close"))
        sock.settimeout(self.read_timeout)  # a client that never reads its answer cannot hold the thread forever
        try:
            head = h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status))
            sock.sendall(conn.send(head))
            if request.method != b"HEAD" and response.body and not bodiless:
                sock.sendall(conn.send(h11.Data(data=response.body)))
            sock.sendall(conn.send(h11.EndOfMessage()))
        finally:
            sock.settimeout(_TICK)

    def _refuse(self, sock: socket.socket, refused: _Refused) -> None:
        """Answer with the JSON error body, then close so that the client reads it (not a reset)."""
        self._log(f"refused: {refused.status} {refused.code} ({refused.message[:120]})")
        answer = _error_response(refused.status, refused.code, refused.message)
        head = f"HTTP/1.1 {answer.status} {_reason(answer.status).decode()}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in answer.headers)
        head += f"content-length: {len(answer.body)}\r\nconnection: close\r\n\r\n"
        try:
            sock.settimeout(self.read_timeout)
            sock.sendall(head.encode("latin-1") + answer.body)
            sock.shutdown(socket.SHUT_WR)
            _linger(sock)
        except OSError:
            pass


def _has_bytes(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except OSError:  # BlockingIOError: nothing there
        return False
    finally:
        sock.settimeout(_TICK)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except OSError:
            return False


def _linger(sock: socket.socket) -> None:
    """Read and drop what the client still sends: closing with unread bytes resets the connection,
    which can destroy the answer before the client reads it."""
    sock.settimeout(_TICK)
    deadline = time.monotonic() + _LINGER
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def _error_response(status: int, code: str, message: str) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode()
    headers = [("content-type", "application/json")]
    if status == 503:
        headers.append(("retry-after", "1"))
    return Response(status, headers, body)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def h11_header_ok(name: bytes, value: bytes) -> bool:
    """What h11 accepts in a header it sends: a token name and a value without control characters."""
    if not name or not set(name) <= _TOKEN:
        return False
    return not any((byte < 0x20 and byte != 0x09) or byte == 0x7F for byte in value) and value == value.strip(b" \t")
