"""Ingress Lambda: API Gateway HTTP API -> verify -> SQS. Wiring only; the logic is in ``inqueue``."""

from inqueue.ingress import Ingress
from inqueue.observability import logger, metrics

ingress = Ingress.from_environment()


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event, context):
    return ingress.handle(event, context)
