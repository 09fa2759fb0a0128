"""moto's server for ``make run``: in a child process, with fixes to its cost per message and to FIFO order.

Why a child process: the runner's own work (HTTP server, ingress and worker code, boto3
on the client side, pollers) and moto's request handling are both Python, and in one
process they take turns on one GIL. In a process of its own, moto runs on another core.
The child exits when its standard input closes, so it never outlives the runner, even
when the runner is killed.

Why the fixes (``speed_up``): moto 5's SQS costs grow with the queue's depth more than
it has to. Every received message checks the retention period by computing all the
queue's attributes three times (each a scan of the queue for the approximate counts),
and each scan asks ``unix_time_millis()`` per message, a datetime round trip of a few
microseconds. So a burst that lets the queue grow to a thousand messages slowed every
receive to tens of milliseconds. The fixes keep moto's behaviour exactly: the retention
period is read from the queue directly, and "now" comes from ``time.time()``, the same
clock without the datetime arithmetic.

And one fix to what it does (``keep_fifo_group_order``): moto 5.2.5 delivers a FIFO group
out of order once the group's visibility timeout ends. Its receive walks the queue and
releases each expired in-flight message only when it reaches it, so the group's first
message still sees the later ones in flight and is skipped, and the second is delivered
first. SQS releases the whole group at once: the fix releases every expired in-flight
message of the queue before moto's own walk. ``tests/local/test_motoserver.py`` checks
moto's unpatched receive still needs it (a strict xfail that passes once moto is fixed).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
import urllib.parse
from typing import Any

from moto.core import responses
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs.models import SQSBackend

_applied = False
# moto's own, kept before any patch
MOTO_RECEIVE_MESSAGE: Any = SQSBackend.receive_message
MOTO_GET_BACKEND_FOR_HOST: Any = DomainDispatcherApplication.get_backend_for_host
MOTO_METHOD_NAMES_FROM_CLASS: Any = responses.method_names_from_class


def unix_time(dt: Any = None) -> float:
    """moto's ``unix_time``: seconds since the epoch, now unless given a naive UTC datetime."""
    from moto.core.utils import unix_time as original

    return time.time() if dt is None else float(original(dt))


def unix_time_millis(dt: Any = None) -> float:
    return unix_time(dt) * 1000.0


def is_message_valid_based_on_retention_period(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's check, reading the queue's retention period without computing every attribute."""
    from moto.sqs import models  # "now" is whatever the models' clock is (tests replace it)

    retention_period = int(backend.get_queue(queue_name).message_retention_period)
    return bool(retention_period + message.sent_timestamp / 1000 > models.unix_time())


# For moto upstream (not sent: no network here), as an issue: "SQS FIFO: after a group's visibility
# timeout ends, receive_message skips the group's first message, because currently_pending_groups is
# computed while later messages of the group are still in pending_messages. Removing every visible
# message from pending_messages before the walk fixes it." tests/local/test_motoserver.py's strict
# xfail on moto's own receive starts failing when moto is fixed: then drop this.
def keep_fifo_group_order(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
    """moto's receive, after releasing every in-flight message whose visibility has ended (SQS does so at once)."""
    queue = backend.get_queue(queue_name)
    if queue.fifo_queue:
        for message in [m for m in queue.pending_messages if m.visible]:
            queue.pending_messages.remove(message)
    return MOTO_RECEIVE_MESSAGE(backend, queue_name, *args, **kwargs)


CALLS_PATH = "/_inqueue/calls"
OLDEST_PATH = "/_inqueue/sqs/oldest"
_calls: dict[str, int] = {}
_calls_lock = threading.Lock()


def oldest_message(queue_url: str, region: str) -> dict[str, Any]:
    """A queue's counts and the time SQS received its oldest message (epoch ms), read from moto's model.

    For the console (``/_inqueue/sqs/oldest``): what ``ApproximateAgeOfOldestMessage`` says on AWS,
    without a receive, which would raise the message's receive count toward the dead-letter queue.
    Every message counts, in flight and delayed ones too, as in CloudWatch's figure.
    """
    from moto.sqs.models import sqs_backends

    path = urllib.parse.urlsplit(queue_url).path.strip("/").split("/")
    account, name = (path[0], path[-1]) if len(path) >= 2 else ("123456789012", path[-1])
    queue = sqs_backends[account][region].get_queue(name)
    sent = [m.sent_timestamp for m in list(queue._messages) if m.sent_timestamp is not None]
    return {"messages": len(sent), "oldest_sent_ms": min(sent) if sent else None}


def _oldest_answer(environ: dict[str, Any]) -> tuple[str, bytes]:
    query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING", "")))
    url, region = query.get("QueueUrl", [""])[0], query.get("Region", ["us-east-1"])[0]
    try:
        return "200 OK", json.dumps(oldest_message(url, region)).encode()
    except Exception as exc:  # noqa: BLE001 - no such queue, a bad URL: the caller shows it as unknown
        return "404 Not Found", json.dumps({"error": {"code": "no_such_queue", "message": str(exc)[:200]}}).encode()


def count_calls() -> None:
    """Count the AWS calls this server answers, by service, and answer ``GET /_inqueue/calls`` with the counts.

    The functions run in their own processes, so the benchmarks count their calls here, where they arrive.
    """
    dispatch = DomainDispatcherApplication.__call__

    def counted(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == CALLS_PATH:
            with _calls_lock:
                body = json.dumps(_calls).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if environ.get("PATH_INFO") == OLDEST_PATH:
            status, body = _oldest_answer(environ)
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        scope = str(environ.get("HTTP_AUTHORIZATION", "")).split("Credential=", 1)[-1].split("/")
        service = scope[3] if len(scope) > 3 else "other"
        with _calls_lock:
            _calls[service] = _calls.get(service, 0) + 1
        return dispatch(app, environ, start_response)

    DomainDispatcherApplication.__call__ = counted  # type: ignore[method-assign]


_backends: dict[str | None, Any] = {}


def get_backend_for_host(app: Any, host: str | None) -> Any:
    """moto's dispatcher's backend for a host, found once: moto lists its package directory and tries every
    service's URL patterns on every request (about 0.3 ms). The answer for a host never changes."""
    if host not in _backends:
        _backends[host] = MOTO_GET_BACKEND_FOR_HOST(app, host)
    return _backends[host]


_method_names: dict[type, list[str]] = {}


def method_names_from_class(clazz: Any) -> list[str]:
    """moto's list of a response class's methods, made once per class: moto calls ``inspect.getmembers``
    on every request to find the action's handler, and the classes never change."""
    names = _method_names.get(clazz)
    if names is None:
        names = _method_names[clazz] = MOTO_METHOD_NAMES_FROM_CLASS(clazz)
    return list(names)


def speed_up() -> None:
    """Apply the fixes to moto's SQS models and the speed-ups to its DynamoDB in this process (idempotent)."""
    global _applied  # noqa: PLW0603 - once per process
    if _applied:
        return
    from moto.sqs import models

    from inqueue_local import moto_dynamodb

    moto_dynamodb.speed_up()
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    responses.method_names_from_class = method_names_from_class

    models.SQSBackend.receive_message = keep_fifo_group_order  # type: ignore[method-assign]
    models.unix_time = unix_time  # type: ignore[attr-defined]
    models.unix_time_millis = unix_time_millis  # type: ignore[attr-defined]
    models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign,assignment]
    _applied = True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto's server on 127.0.0.1, until standard input closes")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the runner drains the queues first, then closes our pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    speed_up()
    count_calls()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call would drown the pipeline's
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"http://{host}:{port}", flush=True)
    try:
        sys.stdin.read()  # returns when the runner closes the pipe, or dies
    finally:
        server.stop()


if __name__ == "__main__":
    main()
