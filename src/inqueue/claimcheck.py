"""Claim checks: a body too large to queue inline goes to S3; the message carries a reference.

The ingress stores the parsed body as JSON under ``{source}/{event id}.json`` (a sender's
retry of one delivery overwrites the same object with the same bytes) and queues a
version 2 envelope whose ``body_ref`` names it; the worker puts the body back before any
processor runs. The bucket expires objects by a lifecycle rule set longer than the
queue's and the dead-letter queue's retention, so a redriven message still finds its body.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from inqueue.aws import error_code
from inqueue.envelope import CLAIM_CHECK_VERSION, Envelope
from inqueue.errors import PermanentError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# Like the SQS client's: a stuck S3 call must become a 503 well within a sender's 3 s.
S3_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 1,
    "read_timeout": 2,
    "retries": {"mode": "standard", "total_max_attempts": 2},
}


class ClaimCheck:
    def __init__(self, bucket: str | None = None, client: Any = None):
        self.bucket = bucket
        self._client: S3Client | None = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            from inqueue.aws import client

            self._client = client("s3", **S3_CLIENT_CONFIG)
        return self._client

    def store(self, envelope: Envelope) -> Envelope:
        """Put the body in the bucket and return the envelope that refers to it instead."""
        checked, data = self.prepare(envelope)
        self.put(checked, data)
        return checked

    def prepare(self, envelope: Envelope) -> tuple[Envelope, bytes]:
        """The envelope that will refer to the body, and the body's bytes, with nothing written yet.

        The ingress sizes that envelope before ``put``, so a request answered 413 leaves no object behind.
        """
        if not self.bucket:
            raise RuntimeError("no payload bucket is configured")
        import hashlib  # here, not at module level: the ingress imports this module at cold start

        data = json.dumps(envelope.body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        key = f"{envelope.source}/{envelope.id}.json"
        reference = {
            "bucket": self.bucket,
            "key": key,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        return dataclasses.replace(envelope, body=None, body_ref=reference, version=CLAIM_CHECK_VERSION), data

    def put(self, checked: Envelope, data: bytes) -> None:
        assert checked.body_ref is not None
        self.client.put_object(
            Bucket=checked.body_ref["bucket"], Key=checked.body_ref["key"], Body=data, ContentType="application/json"
        )

    def resolve(self, envelope: Envelope) -> Envelope:
        """The envelope with its body in place; unchanged when it was sent inline.

        A missing or altered object can never come right, so it is a PermanentError;
        any other failure (throttling, a network error) raises as is and is retried.
        """
        reference = envelope.body_ref
        if reference is None:
            return envelope
        import hashlib

        try:
            answer = self.client.get_object(Bucket=reference["bucket"], Key=reference["key"])
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                raise PermanentError(f"payload_missing: s3://{reference['bucket']}/{reference['key']}") from None
            raise
        data = answer["Body"].read()
        expected = reference.get("sha256")
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise PermanentError(f"payload_corrupt: s3://{reference['bucket']}/{reference['key']} does not match")
        return dataclasses.replace(envelope, body=json.loads(data))
