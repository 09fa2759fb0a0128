"""The route not taken, measured beside the one taken: Powertools' idempotency over the same record.

A ``BasePersistenceLayer`` of our own writes the very item ``inqueue.status`` writes (claim,
success, release), so the record and its semantics are the same; what differs is the shape
Powertools gives the calls: ``idempotent_function`` wraps one processor call, so each record
pays its claim and its completion one after the other, records one after another. Only the
benchmark uses it; the worker ships the batch claim in ``inqueue.worker.batch``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from inqueue.envelope import Envelope
from inqueue.status import COMPLETED, Claim, StatusStore
from inqueue.worker import Router


class RecordLayer(BasePersistenceLayer):
    """Powertools' persistence interface over the one record per event."""

    def __init__(self, store: StatusStore):
        super().__init__()
        self.store = store
        self.envelope: Envelope | None = None  # the record being processed (the layer sees only its key)
        self.claim: Claim | None = None

    def _get_hashed_idempotency_key(self, data: dict[str, Any]) -> str:
        return str(data["id"])  # the event id, so the layer writes the same item the worker does

    def _get_record(self, idempotency_key: str) -> DataRecord:
        record = self.store.get(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return DataRecord(idempotency_key=idempotency_key, status="COMPLETED", expiry_timestamp=record["expires_at"])

    def _put_record(self, data_record: DataRecord) -> None:
        assert self.envelope is not None
        deadline = data_record.in_progress_expiry_timestamp or int(time.time() * 1000) + 900_000
        claim = self.store.claim(self.envelope, attempt=1, token=f"bench/{self.envelope.id}", deadline_ms=deadline)
        self.claim = claim
        if claim.taken:
            return
        result, _ = claim.stored_result()
        old = DataRecord(
            idempotency_key=data_record.idempotency_key,
            status="COMPLETED" if claim.held == COMPLETED else "INPROGRESS",
            expiry_timestamp=data_record.expiry_timestamp,
            in_progress_expiry_timestamp=deadline,
            response_data=json.dumps(result),
        )
        raise IdempotencyItemAlreadyExistsError(old_data_record=old)

    def _update_record(self, data_record: DataRecord) -> None:
        assert self.claim is not None
        result = json.loads(data_record.response_data) if data_record.response_data else None
        self.store.succeeded(self.claim.event_id, result, claim=self.claim)

    def _delete_record(self, data_record: DataRecord) -> None:
        assert self.claim is not None
        self.store.retrying(self.claim, error="failed")


class PowertoolsRouteWorker:
    """A batch through ``BatchProcessor``, each record through ``idempotent_function`` over ``RecordLayer``."""

    def __init__(self, router: Router, store: StatusStore):
        self.router = router
        self.layer = RecordLayer(store)
        self.processor = BatchProcessor(event_type=EventType.SQS)
        self.config = IdempotencyConfig(event_key_jmespath="id", raise_on_no_idempotency_key=True)
        self._idempotent = idempotent_function(
            self._call, data_keyword_argument="key", persistence_store=self.layer, config=self.config
        )

    def _call(self, key: dict[str, str], envelope: Envelope) -> Any:
        return self.router.resolve(envelope.source, envelope.type)(envelope)

    def _record(self, record: Any) -> Any:
        envelope = Envelope.from_json(record.body)
        self.layer.envelope = envelope
        return self._idempotent(key={"id": envelope.id}, envelope=envelope)

    def handle(self, event: dict[str, Any], context: Any) -> Any:
        self.config.register_lambda_context(context)  # locks expire at this invocation's deadline
        return process_partial_response(
            event=event, record_handler=self._record, processor=self.processor, context=context
        )
