"""Your processing, by event source and type. This is the file to edit.

A processor receives an ``Envelope`` (``event.body`` is the parsed JSON or form body,
``event.type`` the sender's event type, ``event.id`` the stable event id) and either
returns (done) or raises (retried, then dead-lettered). It knows nothing of SQS.
Events with no matching processor are acknowledged and logged as ``unrouted``.
"""

from inqueue.envelope import Envelope
from inqueue.observability import logger
from inqueue.worker import Router

router = Router()


@router.on("demo")
def log_demo_event(event: Envelope) -> dict:
    logger.info("processed demo event", extra={"type": event.type, "event_id": event.id})
    return {"ok": True}


@router.on("demo", "demo.always_fails")
def always_fail(event: Envelope) -> None:
    """Shows the retry path locally (`make send EVENT=events/apigw-demo-fail.json`): retried, then dead-lettered."""
    raise RuntimeError(f"demo processor for {event.type} always fails, to show retries and the dead-letter queue")
