"""Envelope.from_json: what it accepts, what it refuses and why."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from inqueue.envelope import Envelope
from inqueue.errors import EnvelopeError

FIELDS: dict[str, Any] = {
    "version": 1,
    "id": "evt-1",
    "source": "demo",
    "type": "order.created",
    "received_at": "2026-11-23T12:00:00.000Z",
    "content_type": "application/json",
    "body": {"n": 1},
    "correlation_id": "corr-1",
}


def text(**changes: Any) -> str:
    return json.dumps({**FIELDS, **changes})


def test_a_minimal_envelope_reads_with_defaults_and_stays_frozen() -> None:
    envelope = Envelope.from_json(text(future_field="ignored"))

    assert envelope == Envelope(
        id="evt-1",
        source="demo",
        type="order.created",
        received_at="2026-11-23T12:00:00.000Z",
        content_type="application/json",
        body={"n": 1},
        correlation_id="corr-1",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        envelope.id = "other"  # type: ignore[misc]


def test_null_headers_and_meta_read_as_empty() -> None:
    envelope = Envelope.from_json(text(headers=None, meta=None, delivery_id="d-1"))

    assert (envelope.headers, envelope.meta, envelope.delivery_id) == ({}, {}, "d-1")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "message body is not JSON"),
        ("[1, 2]", "message body is not a JSON object"),
        (text(version=3), "unsupported envelope version 3"),
        (text(id="", correlation_id=7), "envelope lacks id, correlation_id"),
        (text(source=None), "envelope lacks source"),
        (text(version=2, body=None), "a version 2 envelope needs a body_ref with bucket and key"),
        (text(version=2, body_ref={"bucket": "b"}), "a version 2 envelope needs a body_ref with bucket and key"),
    ],
)
def test_what_is_not_an_envelope_says_why(body: str, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_json(body)


def test_body_ref_is_read_only_for_version_2() -> None:
    reference = {"bucket": "b", "key": "demo/evt-1.json"}

    assert Envelope.from_json(text(version=2, body=None, body_ref=reference)).body_ref == reference
    assert Envelope.from_json(text(body_ref=reference)).body_ref is None
