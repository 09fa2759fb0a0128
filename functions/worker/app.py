"""Worker Lambda: SQS event source -> the processors in ``processors.py``. Wiring only."""

from aws_lambda_powertools import Tracer

from inqueue.observability import TRACING, metrics
from inqueue.worker import Worker
from processors import router

tracer = Tracer() if TRACING else Tracer(disabled=True)
worker = Worker.from_environment(router)


@metrics.log_metrics
def handle(event, context):
    return worker.handle(event, context)


# A disabled tracer (TracingMode Disabled, POWERTOOLS_TRACE_DISABLED, SAM local, the local runner) still opens
# and closes a dummy X-Ray subsegment per invocation, about 10 us for nothing; with tracing on it records the
# `## lambda_handler` subsegment with its ColdStart annotation, as before.
lambda_handler = handle if tracer.disabled else tracer.capture_lambda_handler(handle)
