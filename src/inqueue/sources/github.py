"""``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.

Options::

    {"kind": "github", "secret": "ssm:/inqueue/github"}

The type is ``X-GitHub-Event`` (``push``, ``ping``...), the delivery id ``X-GitHub-Delivery``.
A webhook set to ``application/x-www-form-urlencoded`` posts the JSON in ``payload=``;
it is unwrapped, so the queued body is the same JSON object either way, held to the
same strict rules as a JSON body (``inqueue.forms``). GitHub signs
no timestamp, so replays are caught by the delivery id downstream, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inqueue.forms import JsonSyntaxError, loads_strict
from inqueue.httpapi import Request
from inqueue.sources import Described, KindDeps, SourceConfig, check_options
from inqueue.sources.signing import from_hex, require_header, require_hmac

SIGNATURE_HEADER = "x-hub-signature-256"
PAYLOAD = "the form's payload field"


@dataclass(frozen=True, slots=True)
class GitHubVerifier:
    deps: KindDeps
    secret: str
    headers_kept: tuple[str, ...] = (
        "x-github-event",
        "x-github-delivery",
        "x-github-hook-id",
        "x-github-hook-installation-target-type",
        "x-github-hook-installation-target-id",
    )

    def verify(self, request: Request) -> None:
        presented = require_header(request.header(SIGNATURE_HEADER), "X-Hub-Signature-256")
        proofs = [from_hex(part.strip().removeprefix("sha256=")) for part in presented.split(",")]
        require_hmac([secret.encode() for secret in self.deps.secrets.get(self.secret)], request.body, proofs)

    def describe(self, request: Request, body: Any) -> Described:
        event_type = request.header("x-github-event") or "unknown"
        delivery_id = request.header("x-github-delivery") or None
        meta = {"hook_id": request.header("x-github-hook-id")} if request.header("x-github-hook-id") else {}
        if isinstance(body, dict) and set(body) == {"payload"} and isinstance(body["payload"], str):
            try:
                return Described(event_type, delivery_id, meta, body=loads_strict(body["payload"], PAYLOAD))
            except JsonSyntaxError:
                pass  # not JSON after all: queue the form as it came; JSON beyond the limits is a 400
        return Described(event_type, delivery_id, meta)


def build(config: SourceConfig, deps: KindDeps) -> GitHubVerifier:
    options = check_options(config, set())
    return GitHubVerifier(deps=deps, secret=options["secret"])
