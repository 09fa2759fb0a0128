"""Errors that cross a boundary: HTTP errors the sender sees, record errors the worker reports.

The error body is always ``{"error": {"code": ..., "message": ...}}``; ``code`` is
machine-readable and stable, ``message`` is for humans and never carries a secret.
"""

from __future__ import annotations


class HttpError(Exception):
    """An answer to the caller that is not 202: status, stable code, safe message."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = headers or {}


class BadRequest(HttpError):
    status = 400
    code = "malformed_body"


class Unauthorized(HttpError):
    status = 401
    code = "unauthorized"


class NotFound(HttpError):
    status = 404
    code = "unknown_source"


class MethodNotAllowed(HttpError):
    status = 405
    code = "method_not_allowed"


class PayloadTooLarge(HttpError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(HttpError):
    status = 415
    code = "unsupported_media_type"


class ServiceUnavailable(HttpError):
    """Retryable by the sender: the event was not accepted, so it must send it again."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 5):
        super().__init__(message, code=code, headers={"retry-after": str(retry_after)})
        self.retry_after = retry_after


class EnvelopeError(ValueError):
    """A queued message that is not a valid envelope: it can never be processed."""


class RetryLater(Exception):
    """Raise from a processor to retry this event after ``seconds`` rather than the backoff's choice.

    For an API that says when to come back: Bitrix24's ``503 QUERY_LIMIT_EXCEEDED``, a
    ``429`` with ``Retry-After``. The delay is capped like any backoff (12 h at most).
    """

    def __init__(self, seconds: float, message: str = ""):
        super().__init__(message or f"retry in {seconds:g} s")
        self.seconds = max(0.0, float(seconds))


class Deferred(Exception):
    """Not an attempt: a destination's delivery rate or concurrency has no slot free; come back in ``seconds``.

    Raised by ``inqueue.destinations`` before anything is sent. Unlike ``RetryLater`` (the
    destination answered and said when to come back), a deferral must not count towards
    the event's attempts, and an event is never dead-lettered because it was deferred.
    """

    def __init__(self, seconds: float, message: str = ""):
        super().__init__(message or f"deferred {seconds:g} s by the delivery limit")
        self.seconds = max(0.0, float(seconds))


class PermanentError(Exception):
    """Raise from a processor when this event can never succeed: a bad payload, an unknown entity.

    The worker moves the message to the dead-letter queue at once with ``reason`` attached,
    without spending the remaining attempts, and does not report it as a batch failure.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
