"""Worker Lambda: SQS event source -> the processors in ``processors.py``. Wiring only."""

from aws_lambda_powertools import Tracer

from inqueue.observability import logger, metrics
from inqueue.worker import Worker
from processors import router

tracer = Tracer()
worker = Worker.from_environment(router)


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event, context):
    return worker.handle(event, context)
