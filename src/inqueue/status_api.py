"""``GET /events/{id}[?wait=N]``: an event's status, and optionally its result, for the caller.

Without ``wait`` the answer is the status record as it is now. With ``wait=N``
(0..25 seconds) the function polls the status store until the event reaches a final
state (``succeeded`` or ``dead``) or N seconds pass, then answers with what it has:
the caller that needs the result gets it in one request, as from a synchronous
endpoint, while the ingress still never waits on the work.

Polling starts at 100 ms and doubles to 1 s, so a fast event is answered quickly and
a slow one costs at most ~30 GetItem calls. An id with no record yet is polled too:
a caller may ask right after its 202, before the worker has written anything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from inqueue.errors import BadRequest, HttpError, NotFound, ServiceUnavailable
from inqueue.httpapi import error_response, json_response, parse_event
from inqueue.observability import logger
from inqueue.status import FINAL as FINAL_STATES

MAX_WAIT_SECONDS = 25
FIRST_POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 1.0
# Leave this much of the Lambda's time to answer, whatever wait asked for.
ANSWER_MARGIN_SECONDS = 1.0

_EVENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Kept in the record for replay, never shown to callers: it holds the sender's payload and headers.
_PRIVATE_FIELDS = frozenset({"envelope"})


class StatusReader(Protocol):
    def get(self, event_id: str) -> Mapping[str, Any] | None: ...


class StatusApi:
    def __init__(
        self,
        store: StatusReader,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store = store
        self.clock = clock
        self.sleep = sleep

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> StatusApi:
        import os

        from inqueue.settings import SettingsError
        from inqueue.status import StatusStore

        table = (os.environ if env is None else env).get("INQUEUE_STATUS_TABLE", "").strip()
        if not table:
            raise SettingsError("environment variable INQUEUE_STATUS_TABLE is required and not set")
        return cls(StatusStore(table))

    def handle(self, event: Any, context: Any = None) -> dict[str, Any]:
        """The status, or an error body: a shape API Gateway never sends is a 400, a store failure a 503."""
        try:
            request = parse_event(event)
            event_id = request.path_parameters.get("id", "")
            wait = parse_wait(request.query.get("wait"))
            return self._answer(event_id, wait, context)
        except HttpError as error:
            logger.info("status request refused", extra={"status": error.status, "code": error.code})
            return error_response(error)
        except Exception:  # noqa: BLE001 - a bug: still the error body, never the runtime's bare 500
            logger.exception("status request failed")
            return error_response(HttpError("the status could not be read"))

    def _answer(self, event_id: str, wait: float, context: Any) -> dict[str, Any]:
        if not _EVENT_ID.match(event_id):
            raise NotFound("no event with this id", code="unknown_event")
        deadline = self.clock() + min(wait, _time_left(context))
        record = self._get(event_id)
        interval = FIRST_POLL_SECONDS
        while (record is None or record.get("status") not in FINAL_STATES) and self.clock() < deadline:
            self.sleep(min(interval, max(deadline - self.clock(), 0.0)))
            interval = min(interval * 2, MAX_POLL_SECONDS)
            record = self._get(event_id)
        if record is None:
            raise NotFound("no event with this id (or its status is not written yet)", code="unknown_event")
        body = public_view(event_id, record)
        logger.info("status answered", extra={"event_id": event_id, "status": body.get("status"), "wait": wait})
        return json_response(200, body)

    def _get(self, event_id: str) -> Mapping[str, Any] | None:
        try:
            return self.store.get(event_id)
        except Exception as exc:  # noqa: BLE001 - the table is down or throttled: the caller asks again
            logger.error("status store unavailable", extra={"error": type(exc).__name__, "detail": str(exc)[:300]})
            raise ServiceUnavailable(
                "the status store could not be read; retry later", code="status_unavailable"
            ) from None


def parse_wait(raw: str | None) -> float:
    if raw is None or raw == "":
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        raise BadRequest(f"wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS}", code="bad_wait")
    return wait


def public_view(event_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
    view = {key: _plain(value) for key, value in record.items() if key not in _PRIVATE_FIELDS}
    view["id"] = event_id
    view["final"] = record.get("status") in FINAL_STATES
    return view


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; callers get JSON numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _time_left(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return float(MAX_WAIT_SECONDS)
    return max(float(remaining()) / 1000 - ANSWER_MARGIN_SECONDS, 0.0)
