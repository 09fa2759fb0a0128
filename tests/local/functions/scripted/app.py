"""A handler whose behaviour the test scripts: through the first record's body or the HTTP body."""

import json
import os

from tests.local import recorder


def _script(event):
    try:
        if "Records" in event:
            return json.loads(event["Records"][0]["body"])
        return json.loads(event.get("body") or "{}") if not event.get("isBase64Encoded") else {}
    except ValueError:
        return {}


def lambda_handler(event, context):
    script = _script(event)
    recorder.calls.append(
        {
            "event": event,
            "request_id": context.aws_request_id,
            "function_name": context.function_name,
            "memory": context.memory_limit_in_mb,
            "arn": context.invoked_function_arn,
            "remaining_before": context.get_remaining_time_in_millis(),
            "env": os.environ.get("SCRIPTED_QUEUE_URL"),
        }
    )
    if recorder.during_invocation is not None:
        recorder.during_invocation()
    recorder.calls[-1]["remaining_after"] = context.get_remaining_time_in_millis()
    if script.get("raise"):
        raise RuntimeError("scripted failure")
    if "fail_ids_of_bodies" in script:
        failing = set(script["fail_ids_of_bodies"])
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]}
                for r in event["Records"]
                if json.loads(r["body"]).get("n") in failing
            ]
        }
    return script.get("return")
