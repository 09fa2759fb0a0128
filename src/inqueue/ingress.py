"""The ingress: verify, parse, queue, answer 202 — or a clear error and nothing queued."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from inqueue.aws import INGRESS_SQS_CONFIG, client
from inqueue.envelope import Envelope, event_id_for, isoformat_ms
from inqueue.errors import BadRequest, HttpError, MethodNotAllowed, NotFound, PayloadTooLarge, ServiceUnavailable
from inqueue.forms import media_type, parse_body, shown
from inqueue.httpapi import Request, error_response, json_response, parse_event
from inqueue.observability import logger, metrics
from inqueue.secrets import SecretStore
from inqueue.settings import SQS_MAX_MESSAGE_BYTES, GuaranteeSettings, IngressSettings
from inqueue.sources import KEEP_BODY, ConfigError, KindDeps, Sources, parse_config

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from mypy_boto3_sqs.client import SQSClient

    from inqueue.archive import EnvelopeArchive
    from inqueue.claimcheck import ClaimCheck
    from inqueue.status import StatusStore

# Headers worth keeping for every source; kinds add their own. Never credentials.
_COMMON_HEADERS = ("content-type", "user-agent", "x-request-id", "x-correlation-id")
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:/=+-]{1,128}")


class Ingress:
    def __init__(
        self,
        settings: IngressSettings,
        sqs: SQSClient,
        sources: Sources,
        clock: Callable[[], float] = time.time,
        *,
        status: StatusStore | None = None,
        claim_check: ClaimCheck | None = None,
        inline_limit_bytes: int = SQS_MAX_MESSAGE_BYTES,
        archive: EnvelopeArchive | None = None,
    ):
        self.settings = settings
        self.sqs = sqs
        self.sources = sources
        self.clock = clock
        self.status = status
        self.claim_check = claim_check
        self.inline_limit_bytes = inline_limit_bytes
        self.archive = archive
        self.fifo = settings.queue_url.endswith(".fifo")
        self._status_writer: ThreadPoolExecutor | None = None

    @classmethod
    def from_environment(cls, sqs: Any = None, clock: Callable[[], float] = time.time) -> Ingress:
        settings = IngressSettings.from_env()
        secrets = SecretStore(max_age=settings.secrets_max_age)
        sources = Sources(parse_config(settings.sources_json), KindDeps(secrets=secrets, clock=clock))
        # Status and claim checks are imported and built only when configured; their clients on first use.
        guarantees = GuaranteeSettings.from_env()
        status = claim_check = archive = None
        if guarantees.status_table and settings.queued_status:
            from inqueue.status import StatusStore

            status = StatusStore(
                guarantees.status_table, ttl_seconds=guarantees.record_ttl_seconds, clock=clock,
                index_shards=guarantees.index_shards,
            )  # fmt: skip
        if guarantees.status_table and guarantees.envelope_archive:
            from inqueue.archive import EnvelopeArchive
            from inqueue.status import STATUS_CLIENT_CONFIG

            archive = EnvelopeArchive(
                guarantees.status_table, guarantees.payload_bucket, ttl_seconds=guarantees.record_ttl_seconds,
                clock=clock, client_config=STATUS_CLIENT_CONFIG,
            )  # fmt: skip
        if guarantees.payload_bucket:
            from inqueue.claimcheck import ClaimCheck

            claim_check = ClaimCheck(guarantees.payload_bucket)
        return cls(
            settings,
            sqs or client("sqs", **INGRESS_SQS_CONFIG),
            sources,
            clock,
            status=status,
            claim_check=claim_check,
            inline_limit_bytes=guarantees.inline_limit_bytes,
            archive=archive,
        )

    def handle(self, event: Any, context: Any = None) -> dict[str, Any]:
        source = ""
        try:
            request = parse_event(event)
            source = request.path_parameters.get("source", "")
            return self._accept(request, source)
        except HttpError as error:
            self._reject(source, error)
            return error_response(error)
        except ConfigError:
            logger.exception("source is misconfigured", extra={"source": source})
            unavailable = ServiceUnavailable(
                "this source is misconfigured; retry later",
                code="source_misconfigured",
                retry_after=self.settings.retry_after_seconds,
            )
            self._reject(source, unavailable)
            return error_response(unavailable)
        except Exception:  # noqa: BLE001 - a bug: answer with the error body, and the sender retries
            logger.exception("ingress failed", extra={"source": source[:64]})
            failed = HttpError("the event could not be accepted; retry later")
            self._reject(source, failed)
            return error_response(failed)

    def _accept(self, request: Request, source: str) -> dict[str, Any]:
        correlation_id = self._correlation_id(request)
        logger.set_correlation_id(correlation_id)
        if request.method != "POST":
            raise MethodNotAllowed(
                f"{request.method[:16] or 'this method'} is not allowed; use POST", headers={"allow": "POST"}
            )
        if source not in self.sources:
            raise NotFound(f"no source named {shown(source)} is configured")
        if len(request.body) > self.settings.max_body_bytes:
            raise PayloadTooLarge(f"the body is over the {self.settings.max_body_bytes}-byte limit")

        verifier = self.sources.verifier(source)
        verifier.verify(request)
        media = media_type(request.header("content-type"))
        body = parse_body(request.body, media)
        described = verifier.describe(request, body)
        if described.reply is not None:
            logger.info("answered without queuing", extra={"source": source, "type": described.type})
            return json_response(200, described.reply)

        kept = {
            name: request.headers[name]
            for name in (*_COMMON_HEADERS, *verifier.headers_kept)
            if name in request.headers
        }
        envelope = Envelope(
            id=event_id_for(source, described.delivery_id),
            source=source,
            type=described.type,
            delivery_id=described.delivery_id,
            received_at=isoformat_ms(self.clock()),
            content_type=media,
            headers=kept,
            body=body if described.body is KEEP_BODY else described.body,
            correlation_id=correlation_id,
            meta=described.meta,
        )
        violation = envelope.limit_violation()
        if violation is not None:
            raise BadRequest(violation, code="invalid_metadata")
        self._send(envelope)
        # The one line per accepted event: the correlation id (set above) and the event id, nothing more.
        # No metric per event either: API Gateway's free Count, less its 4xx and 5xx, is the accepted count.
        logger.info("queued", extra={"event_id": envelope.id})
        return json_response(202, {"id": envelope.id, "status": "queued"})

    def _send(self, envelope: Envelope) -> None:
        message = envelope.to_json()
        size = len(message.encode("utf-8"))
        if self.claim_check is not None and size > self.inline_limit_bytes:
            envelope, message, size = self._check_body(envelope)
        if size > SQS_MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(f"the event is over the queue's {SQS_MAX_MESSAGE_BYTES}-byte message limit")
        request: dict[str, Any] = {
            "QueueUrl": self.settings.queue_url,
            "MessageBody": message,
            "MessageAttributes": envelope.message_attributes(),
        }
        if self.fifo:
            from inqueue.ordering import message_group_id

            request["MessageGroupId"] = message_group_id(envelope, self.sources.ordering_key(envelope.source))
            request["MessageDeduplicationId"] = envelope.id
        # The queued record (and the archived envelope) are written while SendMessage is in flight: one round
        # trip to the 202, not two.
        queued = self._record_queued(envelope) if self.status is not None else None
        archived = self._archive(envelope, message) if self.archive is not None else None
        try:
            self.sqs.send_message(**request)
        except Exception as exc:  # noqa: BLE001 - any failure means "not queued", and the sender must retry
            if queued is not None:
                self._withdraw_queued(envelope, queued)
            # An archived copy of an event that was not queued is left to expire: the sender's retry, the same
            # event id, writes it again.
            raise self._unavailable("queue", "queued", "queue_unavailable", envelope, exc) from None
        if queued is not None:
            self._settle_queued(envelope, queued)
        if archived is not None:
            self._settle_archived(envelope, archived)

    def _check_body(self, envelope: Envelope) -> tuple[Envelope, str, int]:
        """Store a body too large to send inline; failing that, the event is not accepted (503).

        The envelope that will be sent is sized first: one still over the queue's limit is a 413
        with nothing written to the bucket.
        """
        assert self.claim_check is not None
        checked, data = self.claim_check.prepare(envelope)
        message = checked.to_json()
        size = len(message.encode("utf-8"))
        if size > SQS_MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(f"the event is over the queue's {SQS_MAX_MESSAGE_BYTES}-byte message limit")
        try:
            self.claim_check.put(checked, data)
        except Exception as exc:  # noqa: BLE001 - without its body stored the event cannot be queued
            raise self._unavailable("payload bucket", "stored", "payload_store_unavailable", envelope, exc) from None
        return checked, message, size

    def _unavailable(self, store: str, done: str, code: str, envelope: Envelope, exc: Exception) -> ServiceUnavailable:
        """Log why a store failed (never the body) and make the retryable answer: nothing was accepted."""
        logger.error(
            f"{store} unavailable",
            extra={"source": envelope.source, "error": type(exc).__name__, "detail": str(exc)[:300]},
        )
        return ServiceUnavailable(
            f"the event could not be {done}; retry later",
            code=code,
            retry_after=self.settings.retry_after_seconds,
        )

    def _writer(self) -> ThreadPoolExecutor:
        """The threads the record writes run on beside SendMessage: one per write a request makes."""
        if self._status_writer is None:
            from concurrent.futures import ThreadPoolExecutor

            writes = (self.status is not None) + (self.archive is not None)
            self._status_writer = ThreadPoolExecutor(max_workers=max(writes, 1), thread_name_prefix="inqueue-status")
        return self._status_writer

    def _record_queued(self, envelope: Envelope) -> Future[bool]:
        """Start the ``queued`` write on the status thread; its answer is read after SendMessage."""
        status = self.status
        assert status is not None
        status.client  # noqa: B018 - built here, on this thread: creating clients is not thread safe
        return self._writer().submit(status.queued, envelope)

    def _archive(self, envelope: Envelope, message: str) -> Future[str]:
        """Start keeping the envelope as queued (the archive, opt-in); its answer is read after SendMessage."""
        archive = self.archive
        assert archive is not None
        if self.status is not None:
            archive.share(self.status.client)
        archive.client  # noqa: B018 - built here, on this thread, as the status store's
        return self._writer().submit(archive.put, envelope.id, message)

    def _settle_archived(self, envelope: Envelope, archived: Future[str]) -> None:
        """Best effort, as the queued record: without its archived copy the event is queued all the same."""
        try:
            archived.result()
        except Exception as exc:  # noqa: BLE001 - the queue is the promise; only a later replay misses the copy
            logger.warning(
                "envelope not archived; the event is queued all the same",
                extra={"event_id": envelope.id, "error": type(exc).__name__, "detail": str(exc)[:300]},
            )
            _count_one("ArchiveWriteFailed")

    def _settle_queued(self, envelope: Envelope, queued: Future[bool]) -> None:
        """Best effort: the event is queued and the 202 is true whatever the status write did."""
        try:
            queued.result()
        except Exception as exc:  # noqa: BLE001 - a status record is a convenience, the queue is the promise
            self._status_failed("status write failed; the event is queued all the same", envelope, exc)

    def _withdraw_queued(self, envelope: Envelope, queued: Future[bool]) -> None:
        """SendMessage failed: a record this request created must not say queued (the sender gets 503)."""
        assert self.status is not None
        try:
            if queued.result():
                self.status.withdraw_queued(envelope.id)
        except Exception as exc:  # noqa: BLE001 - the 503 stands; the record expires with its TTL
            self._status_failed("could not withdraw the queued status of an event that was not queued", envelope, exc)

    @staticmethod
    def _status_failed(message: str, envelope: Envelope, exc: Exception) -> None:
        logger.warning(message, extra={"event_id": envelope.id, "error": type(exc).__name__, "detail": str(exc)[:300]})
        _count_one("StatusWriteFailed")

    def _correlation_id(self, request: Request) -> str:
        candidate = request.header("x-correlation-id") or request.header("x-request-id")
        if candidate and _CORRELATION_ID.fullmatch(candidate):
            return candidate
        if _CORRELATION_ID.fullmatch(request.request_id):
            return request.request_id
        return event_id_for("", None)

    def _reject(self, source: str, error: HttpError) -> None:
        log = logger.warning if error.status < 500 else logger.error
        log(
            "rejected",
            extra={"source": source[:64], "status": error.status, "code": error.code, "reason": error.message},
        )
        _count_one("Rejected", reason=error.code)


def _count_one(name: str, **dimensions: str) -> None:
    """One metric line now: the ingress emits metrics only when something went wrong, never per event."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        for key, value in dimensions.items():
            metric.add_dimension(name=key, value=value)
