"""A handler for the runtime's own tests, run in a child process by the real runtime client.

The event says what to do; the answer says what the environment saw. Module state counts
cold starts: ``INITIALIZED`` is set once per process.
"""

import importlib
import json
import os
import signal
import time
from pathlib import Path

INITIALIZED = time.time()
PID = os.getpid()
VERSION = "v1"
invocations = 0


def _on_record(record):
    """As an SQS worker: note each receive; the first one sleeps (past the timeout), the later ones do not."""
    script = json.loads(record["body"])
    receive = int(record["attributes"]["ApproximateReceiveCount"])
    with Path(script["log"]).open("a") as log:
        log.write(f"receive {receive} start\n")
    if receive == 1:
        time.sleep(script["sleep"])
        with Path(script["log"]).open("a") as log:
            log.write("after the sleep\n")
    with Path(script["log"]).open("a") as log:
        log.write(f"receive {receive} done\n")


def lambda_handler(event, context):
    global invocations  # noqa: PLW0603 - the module state a warm environment keeps is what is observed
    invocations += 1
    if "Records" in event:
        for record in event["Records"]:
            _on_record(record)
        return None
    if "print" in event:
        print(event["print"])
    if "sleep" in event:
        time.sleep(event["sleep"])
    if "then_write" in event:
        Path(event["then_write"]).write_text("written after the sleep")
    if "exit" in event:
        os._exit(event["exit"])
    if "signal" in event:
        os.kill(os.getpid(), getattr(signal, event["signal"]))
    if "allocate_mb" in event:
        hold = bytearray(event["allocate_mb"] * 1024 * 1024)
        for index in range(0, len(hold), 4096):
            hold[index] = 1
        time.sleep(0.3)
    if "raise" in event:
        raise ValueError(event["raise"])
    imports = {}
    for name in event.get("imports", []):
        try:
            importlib.import_module(name)
            imports[name] = True
        except ImportError:
            imports[name] = False
    return {
        "pid": PID,
        "version": VERSION,
        "invocations": invocations,
        "env": {name: os.environ.get(name) for name in event.get("env", [])},
        "environ_names": sorted(os.environ),
        "imports": imports,
        "context": {
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "log_stream_name": context.log_stream_name,
        },
        "event": event.get("echo"),
    }
