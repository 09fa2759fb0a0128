"""Ingress Lambda: API Gateway HTTP API -> verify -> SQS. Wiring only; the logic is in ``inqueue``."""

from inqueue.ingress import Ingress

ingress = Ingress.from_environment()


def lambda_handler(event, context):
    return ingress.handle(event, context)
