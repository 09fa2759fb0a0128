"""The worker's SQS calls, a batch at a time: failures' visibility, dead letters, and messages it queues itself.

All are SQS batch calls of at most 10 entries; ``chunks`` splits a longer list, and the
batch orchestration runs the chunks in one concurrent round. Each call can succeed
for some entries and fail for others: each returns the ids that failed, with why.

The worker queues two kinds of message on the events queue itself (``Requeued``):

- a deferred event's **fresh copy** (standard queues): the same body and attributes plus
  ``inqueue_attempts``, the real attempts the event had before, because SQS counts every
  receive and a deferral is not an attempt; the original is then acknowledged;
- a **callback job** (``inqueue_job: callback``): a result callback whose first try failed,
  retried by the queue's own retries and dead-letter queue.

``inqueue_attempts`` never reaches the dead-letter queue from the worker's own sends: an
event redriven from there starts its attempts again.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from inqueue.attributes import ATTEMPTS, DEAD_ATTEMPTS, DEAD_REASON, FAILED_MESSAGE_ID, JOB
from inqueue.settings import SQS_MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

SQS_BATCH_ENTRIES = 10
# SQS allows 10 message attributes; the dead-letter copy adds these three to the originals.
# The names live in inqueue.attributes, shared with the operator tools (inqueue_ops).
DEAD_REASON_ATTRIBUTE = DEAD_REASON
DEAD_ATTEMPTS_ATTRIBUTE = DEAD_ATTEMPTS
FAILED_MESSAGE_ID_ATTRIBUTE = FAILED_MESSAGE_ID
ATTEMPTS_ATTRIBUTE = ATTEMPTS
JOB_ATTRIBUTE = JOB
# SendMessage's longest DelaySeconds; a longer deferral is finished on the copy's next receive.
MAX_SEND_DELAY_SECONDS = 900
_MAX_MESSAGE_ATTRIBUTES = 10
_REASON_MAX_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Visibility:
    id: str
    receipt_handle: str
    seconds: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The copy of a received message that goes to the dead-letter queue, with why and after how many attempts."""

    id: str
    body: str
    attributes: Mapping[str, Any]  # as the SQS event delivers them (stringValue / binaryValue / dataType)
    reason: str
    attempt: int
    message_id: str
    group_id: str | None = None

    def entry(self, fifo: bool) -> dict[str, Any]:
        kept = {k: v for k, v in _send_attributes(self.attributes).items() if k != ATTEMPTS_ATTRIBUTE}
        attributes = dict(list(kept.items())[: _MAX_MESSAGE_ATTRIBUTES - 3])
        attributes[DEAD_REASON_ATTRIBUTE] = {
            "DataType": "String",
            "StringValue": self.reason[:_REASON_MAX_CHARS] or "permanent",
        }
        attributes[DEAD_ATTEMPTS_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(self.attempt)}
        attributes[FAILED_MESSAGE_ID_ATTRIBUTE] = {"DataType": "String", "StringValue": self.message_id}
        entry: dict[str, Any] = {"Id": self.id, "MessageBody": self.body, "MessageAttributes": attributes}
        if fifo:
            entry["MessageGroupId"] = self.group_id or "inqueue"
            entry["MessageDeduplicationId"] = self.message_id
        return entry

    @property
    def size(self) -> int:
        """Bytes SQS counts against a batch's total: the body and the attributes' names, types and values."""
        attributes = sum(
            len(name)
            + len(str(value.get("dataType", "")))
            + len(str(value.get("stringValue") or value.get("binaryValue") or ""))
            for name, value in self.attributes.items()
        )
        return len(self.body.encode("utf-8")) + attributes + len(self.reason) + 200


@dataclass(frozen=True, slots=True)
class Requeued:
    """A message the worker sends to the events queue: a deferred event's fresh copy, or a callback job."""

    id: str
    body: str
    attributes: Mapping[str, Any]  # SendMessage's shape (DataType / StringValue)
    delay: int = 0  # seconds, at most MAX_SEND_DELAY_SECONDS; FIFO queues take none
    group_id: str | None = None  # FIFO only
    deduplication_id: str | None = None  # FIFO only

    @classmethod
    def copy(cls, id: str, body: str, attributes: Mapping[str, Any], *, attempts: int, delay: int) -> Requeued:  # noqa: A002
        """A fresh copy of a received message (its attributes in the event's shape), carrying its real attempts."""
        sent = {k: v for k, v in _send_attributes(attributes).items() if k != ATTEMPTS_ATTRIBUTE}
        sent[ATTEMPTS_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(attempts)}
        return cls(id, body, sent, min(max(delay, 0), MAX_SEND_DELAY_SECONDS))

    def entry(self, fifo: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"Id": self.id, "MessageBody": self.body, "MessageAttributes": dict(self.attributes)}
        if fifo:
            entry["MessageGroupId"] = self.group_id or "inqueue"
            entry["MessageDeduplicationId"] = self.deduplication_id or self.id
        elif self.delay:
            entry["DelaySeconds"] = self.delay
        return entry

    @property
    def size(self) -> int:
        attributes = sum(
            len(name) + len(str(value.get("DataType", ""))) + len(str(value.get("StringValue") or ""))
            for name, value in self.attributes.items()
        )
        return len(self.body.encode("utf-8")) + attributes + 100


class Queues:
    """The events queue and its dead-letter queue, as the worker calls them."""

    def __init__(
        self, queue_url: str, dlq_url: str, client: Any = None, *, client_config: Mapping[str, Any] | None = None
    ):
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self.fifo = dlq_url.endswith(".fifo")
        self._client: SQSClient | None = client
        self._client_config = dict(client_config or {})

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            from inqueue.aws import client

            self._client = client("sqs", **self._client_config)
        return self._client

    def change_visibility(self, entries: Sequence[Visibility]) -> dict[str, str]:
        """One ChangeMessageVisibilityBatch (at most 10 entries): the ids that failed, with why."""
        answer = self.client.change_message_visibility_batch(
            QueueUrl=self.queue_url,
            Entries=[
                {"Id": entry.id, "ReceiptHandle": entry.receipt_handle, "VisibilityTimeout": entry.seconds}
                for entry in entries
            ],
        )
        return _failed(answer)

    def dead_letter(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        """One SendMessageBatch to the dead-letter queue (at most 10 letters): the ids that failed, with why."""
        answer = self.client.send_message_batch(
            QueueUrl=self.dlq_url,
            Entries=cast("list[SendMessageBatchRequestEntryTypeDef]", [letter.entry(self.fifo) for letter in letters]),
        )
        return _failed(answer)

    def requeue(self, messages: Sequence[Requeued]) -> dict[str, str]:
        """One SendMessageBatch to the events queue (at most 10 messages): the ids that failed, with why."""
        answer = self.client.send_message_batch(
            QueueUrl=self.queue_url,
            Entries=cast("list[SendMessageBatchRequestEntryTypeDef]", [m.entry(self.fifo) for m in messages]),
        )
        return _failed(answer)


def chunks(entries: Sequence[Any], *, max_bytes: int | None = None) -> Iterator[list[Any]]:
    """At most 10 entries each (SQS's batch limit) and, with ``max_bytes``, at most that many bytes in all."""
    chunk: list[Any] = []
    size = 0
    for entry in entries:
        entry_size = entry.size if max_bytes is not None else 0
        if chunk and (len(chunk) == SQS_BATCH_ENTRIES or (max_bytes is not None and size + entry_size > max_bytes)):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += entry_size
    if chunk:
        yield chunk


# A SendMessageBatch's entries together may not exceed the largest message SQS takes.
DEAD_LETTER_BATCH_BYTES = SQS_MAX_MESSAGE_BYTES


def _failed(answer: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(failure["Id"]): f"{failure.get('Code', 'Failed')}: {failure.get('Message', '')}".strip()
        for failure in answer.get("Failed") or []
    }


def _send_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A record's message attributes in SendMessage's shape (the event uses other key names)."""
    converted: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        data_type = value.get("dataType") or "String"
        if value.get("stringValue") is not None:
            converted[name] = {"DataType": data_type, "StringValue": value["stringValue"]}
        elif value.get("binaryValue") is not None:
            converted[name] = {"DataType": data_type, "BinaryValue": base64.b64decode(value["binaryValue"])}
    return converted
