"""Worker: time per record through the real handler against a bare Powertools batch loop."""

from __future__ import annotations

import json
import os
from typing import Any

from bench.common import WORKER_DIR, interleaved, lambda_env, load_function, order_body, patched_environ, quiet_stdout
from bench.report import Report

# Short rounds (a few batches, about 1 ms), for the same reason as the ingress's warm rounds.
ROUNDS = int(os.environ.get("BENCH_WORKER_ROUNDS", "300"))
PER_ROUND = 3
BATCH = 10


def batch_event() -> dict[str, Any]:
    """Ten SQS records whose bodies are envelopes of the 2 KB order event, as the ingress queues them."""
    from tests.factories import sqs_record

    from inqueue.envelope import Envelope, event_id_for

    records = []
    for n in range(BATCH):
        delivery_id = f"ord_{1001 + n}-created"
        envelope = Envelope(
            id=event_id_for("demo", delivery_id),
            source="demo",
            type="order.created",
            delivery_id=delivery_id,
            received_at="2026-11-23T12:00:00.000Z",
            content_type="application/json",
            headers={"content-type": "application/json", "user-agent": "curl/8.5.0", "x-event-type": "order.created"},
            body=json.loads(order_body(2048)),
            correlation_id="Cw3UrhD5IAMEV9Q=",
        )
        records.append(sqs_record(envelope.to_json(), message_id=f"msg-{n:04d}"))
    return {"Records": records}


def run(report: Report) -> None:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from tests.factories import LambdaContext

    with patched_environ(lambda_env("inqueue-worker") | {"POWERTOOLS_TRACE_DISABLED": "true"}):
        app = load_function(WORKER_DIR, "inqueue_bench_worker_app")
        from inqueue.worker import Router, Worker

        event = batch_event()
        context = LambdaContext(function_name="inqueue-worker")

        # The baseline: Powertools' documented loop, its record handler reading the JSON body
        # (`record.json_body`, as in Powertools' SQS example), since no consumer can skip parsing it.
        bare_processor = BatchProcessor(event_type=EventType.SQS)

        def bare_record_handler(record: Any) -> Any:
            return record.json_body

        def bare() -> Any:
            return process_partial_response(
                event=event, record_handler=bare_record_handler, processor=bare_processor, context=context
            )

        # The floor: the same loop whose record handler does nothing at all.
        empty_processor = BatchProcessor(event_type=EventType.SQS)

        def empty_record_handler(record: Any) -> Any:
            return record.body

        def empty() -> Any:
            return process_partial_response(
                event=event, record_handler=empty_record_handler, processor=empty_processor, context=context
            )

        # The subject: functions/worker/app.py's handler over the real Worker, with a processor as
        # trivial as the baseline's so that the ratio is what Inqueue adds per record.
        trivial = Router()

        @trivial.on("demo")
        def trivial_processor(event: Any) -> None:
            return None  # done; a result would be JSON-encoded and kept for duplicates, which is not trivial

        shipped_worker = app.worker
        trivial_worker = Worker(trivial, shipped_worker.settings)
        handler = app.lambda_handler

        def through_handler() -> Any:
            app.worker = trivial_worker
            return handler(event, context)

        def worker_only() -> Any:
            return trivial_worker.handle(event, context)

        def shipped() -> Any:
            app.worker = shipped_worker
            return handler(event, context)

        with quiet_stdout():
            for call in (bare, empty, through_handler, worker_only, shipped):
                for _ in range(50):
                    response = call()
                    if response != {"batchItemFailures": []}:
                        raise RuntimeError(f"the benchmark batch did not succeed: {response}")
            samples = interleaved(
                {
                    "bare": bare,
                    "empty": empty,
                    "handler": through_handler,
                    "worker": worker_only,
                    "shipped": shipped,
                },
                rounds=ROUNDS,
                per_round=PER_ROUND,
                per_call=BATCH,
            )
        app.worker = shipped_worker

    report.add_samples(
        "lambda_handler per record (trivial processor)",
        samples["handler"],
        "us",
        baseline=samples["bare"],
        ratio_goal=1.2,
        note="baseline: BatchProcessor + process_partial_response, record handler `return record.json_body`;"
        " batch of 10 envelopes of the 2 KB order; tracing off (no X-Ray daemon here); no status or idempotency"
        " table configured (their DynamoDB calls are network time, not measurable here)",
    )
    report.add_samples(
        "Worker.handle per record (trivial processor)", samples["worker"], "us", baseline=samples["bare"]
    )
    report.add_samples(
        "lambda_handler per record (shipped processors.py)",
        samples["shipped"],
        "us",
        baseline=samples["bare"],
        note="the demo processor logs one line per record: user code, not Inqueue's overhead",
    )
    report.add_samples(
        "bare loop, record handler `return record.body`",
        samples["empty"],
        "us",
        note="Powertools' own cost per record, parsing nothing: the floor under both figures above",
    )
