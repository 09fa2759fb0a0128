"""Envelope serialisation: the exact bytes queued, and a round trip through the worker's reader."""

from __future__ import annotations

import dataclasses
import json

from inqueue.envelope import Envelope


@dataclasses.dataclass(frozen=True)
class _Fact:
    name: str
    values: tuple[int, ...]


def make_envelope(**changes: object) -> Envelope:
    base = Envelope(
        id="3b1f0a4e-7c2d-5e8f-9a1b-2c3d4e5f6a70",
        source="demo",
        type="order.created",
        received_at="2026-11-23T12:00:00.000Z",
        content_type="application/json",
        body={"order": {"id": 1001, "items": [{"sku": "A", "qty": 2}], "note": "café"}},
        correlation_id="corr-1",
        delivery_id="ord_1001-created",
        headers={"content-type": "application/json"},
    )
    return dataclasses.replace(base, **changes)


def test_to_json_is_compact_utf8_json_of_every_field_in_declaration_order() -> None:
    # GIVEN an envelope with a nested, non-ASCII body
    envelope = make_envelope()

    # WHEN it is serialised
    text = envelope.to_json()

    # THEN it is the compact JSON of asdict(), field for field, without an unset body_ref, non-ASCII kept as is
    expected = {name: value for name, value in dataclasses.asdict(envelope).items() if name != "body_ref"}
    assert text == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
    assert list(json.loads(text)) == [f.name for f in dataclasses.fields(Envelope) if f.name != "body_ref"]
    assert "café" in text


def test_a_claim_check_reference_is_written_when_set() -> None:
    ref = {"bucket": "inqueue-bodies", "key": "demo/evt.json", "bytes": 300000, "sha256": "00"}
    envelope = make_envelope(body=None, body_ref=ref)

    assert json.loads(envelope.to_json())["body_ref"] == ref


def test_a_dataclass_in_meta_is_encoded_as_its_fields() -> None:
    # GIVEN a kind that put a dataclass into meta
    envelope = make_envelope(meta={"fact": _Fact("x", (1, 2))})

    # WHEN it is serialised
    data = json.loads(envelope.to_json())

    # THEN the dataclass became an object, as asdict() makes it
    assert data["meta"] == {"fact": {"name": "x", "values": [1, 2]}}


def test_to_json_round_trips_through_from_json() -> None:
    envelope = make_envelope(meta={"attempt": 1})

    assert Envelope.from_json(envelope.to_json()) == envelope
