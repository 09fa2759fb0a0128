"""An app that receives Inqueue's deliveries: verify, drop repeats, answer JSON. Standard library plus standardwebhooks.

Run it beside ``make run`` and route a source to it::

    pip install standardwebhooks
    python examples/receiver/receiver.py --port 8080 --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

or, with the local signing secret, ``make receiver RECEIVER_PORT=9000`` beside
``make run FORWARD_TO=http://127.0.0.1:9000/hooks`` (docs/destinations.md).

Every request is verified with the ``standardwebhooks`` library (any Standard Webhooks
library would do) before anything else: a bad or stale signature gets 401. A repeat of
a ``webhook-id`` already answered with success gets the same answer again, marked
``"duplicate": true``, and is not processed twice: Inqueue retries, so the app dedups.
The answer is what ``GET /events/{id}`` shows as the event's result.

For demos and tests it can be told to fail: ``--answer 500`` (every delivery is
retried with backoff), ``--answer 400`` (dead-lettered at once with the reason), or
``--fail-first 2`` (500 twice per event, then success: retries that end well).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass
class Delivery:
    webhook_id: str
    status: int
    payload: Any
    headers: dict[str, str]


@dataclass
class Receiver:
    """The app's state: the secret, how to answer, what it has seen. Thread-safe."""

    secret: str
    answer_status: int | None = None  # force this status for every verified delivery
    fail_first: int = 0  # answer 500 this many times per webhook-id before succeeding
    deliveries: list[Delivery] = field(default_factory=list)
    _answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    _tries: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._webhook = Webhook(self.secret)

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Status and JSON answer for one request; the HTTP plumbing is in ``Handler``."""
        try:
            payload = self._webhook.verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            return 401, {"error": {"code": "bad_signature", "message": str(exc)}}
        webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        with self._lock:
            tries = self._tries[webhook_id] = self._tries.get(webhook_id, 0) + 1
            seen = self._answers.get(webhook_id)
            if seen is not None:
                status, answer = 200, {**seen, "duplicate": True}
            elif self.answer_status is not None:
                status, answer = self.answer_status, _failure(self.answer_status)
            elif tries <= self.fail_first:
                status, answer = 500, _failure(500)
            else:
                status, answer = 200, self.process(webhook_id, payload, tries)
                self._answers[webhook_id] = answer
            self.deliveries.append(Delivery(webhook_id, status, payload, dict(headers)))
        return status, answer

    def process(self, webhook_id: str, payload: Any, tries: int) -> dict[str, Any]:
        """Your work goes here. This one answers with what it received."""
        event = payload if isinstance(payload, dict) else {}
        return {
            "received": webhook_id,
            "source": event.get("source"),
            "type": event.get("type"),
            "tries": tries,
            "duplicate": False,
        }

    def serve(self, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
        """A server bound now (port 0: any free port) and not yet serving: call serve_forever()."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the worker reuses its connection
            disable_nagle_algorithm = True  # or each answer waits ~40 ms for a delayed ACK

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self._answer(413, {"error": {"code": "payload_too_large", "message": "body over 10 MiB"}})
                    return
                body = self.rfile.read(length)
                status, answer = receiver.handle(body, dict(self.headers.items()))
                self._answer(status, answer)

            do_PUT = do_PATCH = do_POST  # noqa: N815 - http.server's names

            def _answer(self, status: int, answer: dict[str, Any]) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                sys.stderr.write(f"receiver: {self.headers.get('webhook-id', '-')} {format % args}\n")

        return ThreadingHTTPServer((host, port), Handler)


def _failure(status: int) -> dict[str, Any]:
    code = "try_again" if status >= 500 else "rejected"
    return {"error": {"code": code, "message": f"the receiver was told to answer {status}"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--secret", default=os.environ.get("RECEIVER_SECRET", ""), help="whsec_... (or RECEIVER_SECRET)"
    )
    parser.add_argument("--answer", type=int, choices=(400, 500), help="answer every delivery with this status")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 500 this many times per event first")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("--secret (or RECEIVER_SECRET) is required: the destination's whsec_ secret")
    receiver = Receiver(args.secret, answer_status=args.answer, fail_first=args.fail_first)
    try:
        server = receiver.serve(args.host, args.port)
    except OSError as error:  # the port is taken, or the address is not this machine's
        print(
            f"receiver: cannot listen on port {args.port} on {args.host}: {error.strerror or error}; "
            "stop what uses it, or pass another port (make receiver RECEIVER_PORT=...)",
            file=sys.stderr,
        )
        return 1
    print(f"receiver: listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
