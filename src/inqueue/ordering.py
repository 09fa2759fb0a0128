"""FIFO ordering: which events must be processed in order, as an SQS MessageGroupId.

A source names the body fields that identify "the same thing" with ``ordering_key``
(dotted paths into the parsed body); events with equal values are one group, processed
in order, while different groups go on in parallel. For Bitrix24, the portal and the
entity: ``"ordering_key": ["auth.member_id", "data.FIELDS.ID"]``. Without the option, or
when a field is missing from an event, the whole source is one group: safe, but serial.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from inqueue.envelope import Envelope

# SQS: 1-128 characters, alphanumeric and ASCII punctuation.
_GROUP_ID = re.compile(r"^[A-Za-z0-9!-/:-@\[-`{-~]{1,128}$")


def message_group_id(envelope: Envelope, ordering_key: tuple[str, ...]) -> str:
    values = [_lookup(envelope.body, path) for path in ordering_key]
    if not ordering_key or any(value is None for value in values):
        return envelope.source
    group = ":".join([envelope.source, *(str(value) for value in values)])
    if _GROUP_ID.match(group):
        return group
    # Too long or outside SQS's alphabet: a digest keeps equal keys equal.
    return f"{envelope.source}:{hashlib.sha256(group.encode()).hexdigest()}"


def _lookup(body: Any, path: str) -> Any:
    node = body
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node if isinstance(node, str | int) and not isinstance(node, bool) and str(node) != "" else None
