"""Status Lambda: GET /events/{id}[?wait=N] behind IAM auth. Wiring only; the logic is in ``inqueue``."""

from inqueue.status_api import StatusApi

api = StatusApi.from_environment()


def lambda_handler(event, context):
    return api.handle(event, context)
