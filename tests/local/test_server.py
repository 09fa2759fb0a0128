"""The local transport over real loopback sockets: every request gets an answer in the JSON error body, fast.

The gateway behind it is a recording stand-in (the transport only moves bytes), so each
test says what reached the layer below and what the client read back.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from inqueue_local.gateway import Response
from inqueue_local.server import MAX_HEADER_BYTES, GatewayServer

pytestmark = [pytest.mark.enable_socket, pytest.mark.e2e]


@dataclass
class Recorder:
    """Answers 202 with what it got; raises when the body says so."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event | None = None
    log_lines: list[str] = field(default_factory=list)

    def handle(self, method: str, target: str, headers: Any, body: bytes, **extra: Any) -> Response:
        if self.release is not None:
            self.release.wait(10)
        self.calls.append({"method": method, "target": target, "headers": list(headers), "body": body, **extra})
        if body == b"raise":
            raise RuntimeError("a bug below the transport")
        answer = json.dumps({"got": len(body)}).encode()
        return Response(202, [("content-type", "application/json")], answer)

    def log(self, name: str, line: str) -> None:
        self.log_lines.append(f"{name}: {line}")


@pytest.fixture
def gateway() -> Recorder:
    return Recorder()


@pytest.fixture
def server(gateway: Recorder) -> Iterator[GatewayServer]:
    server = GatewayServer(gateway, port=0, max_body=1024, read_timeout=0.5, request_timeout=2, idle_timeout=0.5)
    server.start()
    yield server
    server.stop()


def connect(server: GatewayServer) -> socket.socket:
    return socket.create_connection(server.server_address[:2], timeout=10)


class Reader:
    """A socket's bytes with a buffer, so pipelined answers are read one at a time."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed without an answer (got {self.buffer!r})"
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed mid-answer"
            self.buffer += chunk
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


_readers: dict[int, Reader] = {}


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The next final response on this socket (status, headers, body); a 100 Continue is skipped."""
    reader = _readers.setdefault(id(sock), Reader(sock))
    if reader.sock is not sock:
        reader = _readers[id(sock)] = Reader(sock)
    while True:
        lines = reader.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if status != 100:
            return status, headers, reader.exactly(int(headers.get("content-length", "0")))


def exchange(server: GatewayServer, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(server) as sock:
        sock.sendall(raw)
        return read_answer(sock)


def error_of(answer: tuple[int, dict[str, str], bytes]) -> dict[str, str]:
    status, headers, body = answer
    assert headers["content-type"] == "application/json", (status, headers, body)
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"}
    return dict(error)


POST = b"POST /hooks/demo HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def test_a_request_reaches_the_gateway_and_its_answer_comes_back(server: GatewayServer, gateway: Recorder) -> None:
    status, _headers, body = exchange(server, POST + b"Content-Length: 5\r\nX-Name: v\r\n\r\nhello")

    assert (status, json.loads(body)) == (202, {"got": 5})
    [call] = gateway.calls
    assert (call["method"], call["target"], call["body"]) == ("POST", "/hooks/demo", b"hello")
    assert ("x-name", "v") in call["headers"]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(POST + b"Content-Length: -1\r\n\r\n", id="content-length-minus-1"),
        pytest.param(POST + b"Content-Length: abc\r\n\r\n", id="content-length-not-a-number"),
        pytest.param(POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", id="conflicting-lengths"),
        pytest.param(POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", id="bad-chunk-size"),
        pytest.param(POST + b"Transfer-Encoding: gzip\r\n\r\n", id="unsupported-transfer-encoding"),
        pytest.param(POST + b"bad header\r\nContent-Length: 2\r\n\r\nab", id="header-line-without-colon"),
        pytest.param(POST + b"x y: z\r\n\r\n", id="header-name-with-space"),
        pytest.param(POST + b"X: \x00\r\n\r\n", id="nul-in-header-value"),
        pytest.param(b"GET /\r\n\r\n", id="http-0.9"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", id="tls-hello"),
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", id="no-host"),
        pytest.param(b"GET /\x80 HTTP/1.1\r\nHost: x\r\n\r\n", id="non-ascii-target"),
    ],
)
def test_malformed_http_gets_400_in_the_json_error_body_and_never_reaches_the_gateway(
    server: GatewayServer, gateway: Recorder, raw: bytes
) -> None:
    answer = exchange(server, raw)

    assert answer[0] == 400
    assert error_of(answer)["code"] == "bad_request"
    assert gateway.calls == []


def test_an_invalid_header_line_does_not_turn_the_body_into_a_second_request(
    server: GatewayServer, gateway: Recorder
) -> None:
    body = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = POST + b"bad header\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body

    with connect(server) as sock:
        sock.sendall(raw)
        assert read_answer(sock)[0] == 400
        assert sock.recv(65536) == b""  # closed after the answer: nothing else is read as a request

    assert gateway.calls == []


def test_a_declared_body_over_the_limit_is_413_before_it_is_sent(server: GatewayServer, gateway: Recorder) -> None:
    answer = exchange(server, POST + b"Content-Length: 1025\r\nExpect: 100-continue\r\n\r\n")

    assert answer[0] == 413
    assert error_of(answer)["code"] == "payload_too_large"
    assert gateway.calls == []


def test_a_chunked_body_over_the_limit_is_413(server: GatewayServer, gateway: Recorder) -> None:
    chunks = b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"

    answer = exchange(server, POST + b"Transfer-Encoding: chunked\r\n\r\n" + chunks)

    assert answer[0] == 413
    assert error_of(answer)["code"] == "payload_too_large"
    assert gateway.calls == []


def test_a_chunked_body_within_the_limit_is_joined(server: GatewayServer, gateway: Recorder) -> None:
    raw = POST + b"Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n"

    assert exchange(server, raw)[0] == 202
    assert gateway.calls[0]["body"] == b"abcde"


def test_headers_over_the_limit_are_431(server: GatewayServer, gateway: Recorder) -> None:
    answer = exchange(server, POST + b"X-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n")

    assert answer[0] == 431
    assert error_of(answer)["code"] == "headers_too_large"


def test_a_client_that_stalls_mid_body_gets_408(server: GatewayServer, gateway: Recorder) -> None:
    with connect(server) as sock:
        sock.sendall(POST + b"Content-Length: 10\r\n\r\nhalf")
        answer = read_answer(sock)

    assert answer[0] == 408
    assert error_of(answer)["code"] == "request_timeout"
    assert gateway.calls == []


def test_a_client_that_trickles_gets_408_when_the_whole_request_is_late(
    server: GatewayServer, gateway: Recorder
) -> None:
    with connect(server) as sock:
        sock.sendall(POST + b"Content-Length: 1000\r\n\r\n")
        sock.settimeout(0.2)
        answer = None
        for _ in range(100):  # a byte every 0.2 s: under the read timeout, never done
            try:
                sock.sendall(b"x")
                answer = read_answer(sock)
                break
            except TimeoutError:
                continue
        assert answer is not None

    assert answer[0] == 408
    assert gateway.calls == []


def test_expect_100_continue_is_answered_then_the_request(server: GatewayServer, gateway: Recorder) -> None:
    with connect(server) as sock:
        sock.sendall(POST + b"Content-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert Reader(sock).until(b"\r\n\r\n").startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"abc")
        assert read_answer(sock)[0] == 202


def test_keep_alive_and_pipelined_requests_are_each_answered(server: GatewayServer, gateway: Recorder) -> None:
    one = POST + b"Content-Length: 1\r\n\r\na"
    with connect(server) as sock:
        sock.sendall(one + one)
        assert read_answer(sock)[0] == 202
        assert read_answer(sock)[0] == 202
        sock.sendall(one)
        assert read_answer(sock)[0] == 202

    assert len(gateway.calls) == 3


def test_a_head_request_gets_headers_only(server: GatewayServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"HEAD /hooks/demo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk

    assert data.startswith(b"HTTP/1.1 202 ")
    assert data.endswith(b"\r\n\r\n")


def test_a_failure_below_the_transport_is_still_an_answer(server: GatewayServer) -> None:
    answer = exchange(server, POST + b"Content-Length: 5\r\n\r\nraise")

    assert answer[0] == 500
    assert error_of(answer)["code"] == "internal_error"


def test_stop_is_not_held_up_by_a_stalled_client_and_tells_it_why(gateway: Recorder) -> None:
    # GIVEN a server whose read timeout would take a minute, and a client stalled mid-body
    server = GatewayServer(gateway, port=0, read_timeout=60, request_timeout=120, grace=1)
    server.start()
    stalled = connect(server)
    stalled.sendall(POST + b"Content-Length: 10\r\n\r\nhalf")
    idle = connect(server)
    backlog = connect(server)  # maybe not accepted yet when stop begins: it must not be reset either

    # WHEN the runner stops (Ctrl-C)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(timeout=15)

    # THEN stop returned, the stalled client was told to send again, and the idle one was closed
    assert not stopper.is_alive(), "stop() is blocked by a stalled client"
    answer = read_answer(stalled)
    assert answer[0] == 503
    assert error_of(answer)["code"] == "shutting_down"
    assert idle.recv(100) == b""
    assert read_answer(backlog)[0] == 503 if backlog.recv(1, socket.MSG_PEEK) else True
    for sock in (stalled, idle, backlog):
        sock.close()


def test_stop_waits_for_a_request_already_in_a_function(gateway: Recorder) -> None:
    gateway.release = threading.Event()
    server = GatewayServer(gateway, port=0, grace=10)
    server.start()
    with connect(server) as sock:
        sock.sendall(POST + b"Content-Length: 1\r\n\r\na")
        for _ in range(200):
            if server._in_flight:
                break
            threading.Event().wait(0.01)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        gateway.release.set()

        assert read_answer(sock)[0] == 202
    stopper.join(timeout=15)
    assert not stopper.is_alive()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "8.8.8.8"])  # noqa: S104 - what must be refused
def test_it_never_listens_beyond_loopback(gateway: Recorder, host: str) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        GatewayServer(gateway, host=host, port=0)
