"""The envelope archive: each accepted event's envelope, kept so that any event can be replayed.

SQS keeps an envelope only while its event is queued or dead; once an event succeeds, only
its record is left, and the record keeps no envelope. The archive (opt-in: the template's
``EnvelopeArchive``, the ingress's ``INQUEUE_ENVELOPE_ARCHIVE``) keeps the message the ingress
queued, exactly, for the record's lifetime, so the console and ``inqueue replay`` can send it
again, a succeeded event included.

Where, by cost:

* an item of its own in the status table, ``id = "envelope#<event id>"``, written once by the
  ingress beside the record, never inside it: DynamoDB bills every write of an item by the
  whole item (a unit per KB), so an envelope inside the record would make each of the
  record's three later writes dearer. The envelope is zlib-compressed (a JSON webhook shrinks
  2-5x; 11 us for 2 KB), so a 2 KB webhook is one write unit. The item has no index key, so
  the recent-events index never sees it, and it expires with the record's TTL.
* the payload bucket, ``archive/<event id>.json.z``, when the item would be over
  ``ITEM_MAX_BYTES``: an S3 PUT costs the same whatever its size ($5 per million), a DynamoDB
  write $0.625 per million per KB, so past 8 KB the bucket is the cheaper place (and past
  400 KB the only one). The bucket's lifecycle rule expires it (``PayloadRetentionDays``).

A claim-checked envelope (its body already in the bucket) is archived as queued, with its
``body_ref``: the worker resolves it on replay as on the first delivery.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from inqueue.aws import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client

ITEM_PREFIX = "envelope#"
OBJECT_PREFIX = "archive/"
# The item size above which the bucket is cheaper: an S3 PUT ($5.00 per million) = 8 DynamoDB write units (8 KB).
ITEM_MAX_BYTES = 8 * 1024
_ITEM_OVERHEAD = 64  # the item's other attributes: its names, "bytes" and "expires_at"
COMPRESSION_LEVEL = 6
IN_TABLE = "table"
IN_BUCKET = "bucket"


class EnvelopeArchive:
    """Write (the ingress) and read (the console, ``inqueue replay``) archived envelopes; clients built on first use."""

    def __init__(
        self,
        table_name: str,
        bucket: str | None = None,
        *,
        client: Any = None,
        s3: Any = None,
        ttl_seconds: int = 7 * 86_400,
        clock: Callable[[], float] = time.time,
        client_config: dict[str, Any] | None = None,
    ):
        self.table_name = table_name
        self.bucket = bucket
        self._client: DynamoDBClient | None = client
        self._s3: S3Client | None = s3
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._client_config = client_config or {}
        self._lock = threading.Lock()  # clients are made once; making one is not thread safe

    @property
    def client(self) -> DynamoDBClient:
        with self._lock:
            if self._client is None:
                from inqueue.aws import client

                self._client = client("dynamodb", **self._client_config)
            return self._client

    @property
    def s3(self) -> S3Client:
        with self._lock:
            if self._s3 is None:
                from inqueue.aws import client

                self._s3 = client("s3", **self._client_config)
            return self._s3

    def share(self, dynamodb: Any) -> None:
        """Use this DynamoDB client (the status store's) rather than making another at cold start."""
        with self._lock:
            if self._client is None:
                self._client = dynamodb

    def put(self, event_id: str, message: str) -> str:
        """Keep ``message`` (the envelope as queued) for ``event_id``; says where: ``table`` or ``bucket``."""
        data = zlib.compress(message.encode("utf-8"), COMPRESSION_LEVEL)
        if len(data) + len(item_id(event_id)) + _ITEM_OVERHEAD > ITEM_MAX_BYTES and self.bucket:
            self.s3.put_object(Bucket=self.bucket, Key=object_key(event_id), Body=data, ContentType="application/zlib")
            return IN_BUCKET
        now = self.clock()
        # Unconditional: a sender's retry of the same delivery (the same event id) keeps its latest copy.
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "id": {"S": item_id(event_id)},
                "envelope_z": {"B": data},
                "bytes": {"N": str(len(message.encode("utf-8")))},
                "expires_at": {"N": str(int(now) + self.ttl_seconds)},
            },
        )
        return IN_TABLE

    def get(self, event_id: str) -> str | None:
        """The archived envelope's JSON, or None when none is kept (archive off, expired, never accepted)."""
        answer = self.client.get_item(
            TableName=self.table_name, Key={"id": {"S": item_id(event_id)}}, ProjectionExpression="envelope_z"
        )
        item = answer.get("Item") or {}
        data = (item.get("envelope_z") or {}).get("B")
        if data is None and self.bucket:
            try:
                data = self.s3.get_object(Bucket=self.bucket, Key=object_key(event_id))["Body"].read()
            except Exception as exc:
                # S3 answers a missing key with 403 to a caller that may not list the bucket.
                if error_code(exc) not in ("NoSuchKey", "404", "403", "AccessDenied"):
                    raise
                data = None
        if data is None:
            return None
        return zlib.decompress(bytes(data)).decode("utf-8")


def item_id(event_id: str) -> str:
    return f"{ITEM_PREFIX}{event_id}"


def object_key(event_id: str) -> str:
    return f"{OBJECT_PREFIX}{event_id}.json.z"
