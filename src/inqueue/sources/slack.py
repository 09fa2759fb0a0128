"""``slack``: ``X-Slack-Signature: v0=<hex>`` over ``"v0:{X-Slack-Request-Timestamp}:{body}"``.

Options::

    {"kind": "slack", "secret": "ssm:/inqueue/slack",   # the app's signing secret
     "tolerance": 300}                                  # seconds either side of now (default 300)

Events API callbacks are queued with the inner event's type (``app_mention``) and
``event_id`` as the delivery id; a ``url_verification`` request is answered with its
``challenge`` and not queued. Slash commands (form) become type ``slash_command``;
interactivity (form with a JSON ``payload=``) is unwrapped and typed by its ``type``.
Slack's retries (``X-Slack-Retry-Num``) keep the same ``event_id``, so the same event id,
and carry ``retry_num``/``retry_reason`` in the envelope's ``meta``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inqueue.forms import JsonSyntaxError, loads_strict
from inqueue.httpapi import Request
from inqueue.sources import Described, KindDeps, SourceConfig, as_object, check_options
from inqueue.sources.signing import (
    DEFAULT_TOLERANCE,
    check_timestamp,
    from_hex,
    parse_timestamp,
    require_header,
    require_hmac,
)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class SlackVerifier:
    deps: KindDeps
    secret: str
    tolerance: int
    headers_kept: tuple[str, ...] = ("x-slack-request-timestamp", "x-slack-retry-num", "x-slack-retry-reason")

    def verify(self, request: Request) -> None:
        presented = require_header(request.header("x-slack-signature"), "X-Slack-Signature")
        timestamp = parse_timestamp(
            require_header(
                request.header("x-slack-request-timestamp"), "X-Slack-Request-Timestamp", "missing_timestamp"
            )
        )
        proofs = [from_hex(part.strip().removeprefix("v0=")) for part in presented.split(",") if part.strip()]
        message = f"v0:{timestamp}:".encode() + request.body
        require_hmac([secret.encode() for secret in self.deps.secrets.get(self.secret)], message, proofs)
        check_timestamp(timestamp, self.deps.clock(), self.tolerance)

    def describe(self, request: Request, body: Any) -> Described:
        meta = self._retry(request)
        fields = as_object(body)
        kind = _text(fields.get("type"))
        if kind == "url_verification":
            return Described("url_verification", meta=meta, reply={"challenge": _text(fields.get("challenge"))})
        if kind == "event_callback":
            event = as_object(fields.get("event"))
            meta.update({key: fields[key] for key in ("team_id", "api_app_id") if isinstance(fields.get(key), str)})
            return Described(_text(event.get("type")) or kind, _text(fields.get("event_id")) or None, meta)
        if kind:
            return Described(kind, _text(fields.get("event_id")) or None, meta)
        if isinstance(fields.get("payload"), str):  # interactivity: block_actions, view_submission, shortcut...
            try:
                payload = loads_strict(fields["payload"], "the form's payload field")
            except JsonSyntaxError:
                payload = None  # not JSON: typed by what else the form says; JSON beyond the limits is a 400
            if isinstance(payload, dict):
                trigger = _text(payload.get("trigger_id")) or None
                return Described(_text(payload.get("type")) or "interaction", trigger, meta, body=payload)
        if "command" in fields:
            meta["command"] = _text(fields.get("command"))
            return Described("slash_command", _text(fields.get("trigger_id")) or None, meta)
        return Described("unknown", None, meta)

    @staticmethod
    def _retry(request: Request) -> dict[str, Any]:
        number = request.header("x-slack-retry-num")
        if not number:
            return {}
        meta: dict[str, Any] = {
            "retry_num": int(number) if number.isascii() and number.isdigit() and len(number) < 10 else number
        }
        if request.header("x-slack-retry-reason"):
            meta["retry_reason"] = request.header("x-slack-retry-reason")
        return meta


def build(config: SourceConfig, deps: KindDeps) -> SlackVerifier:
    options = check_options(config, {"tolerance"})
    return SlackVerifier(
        deps=deps, secret=options["secret"], tolerance=int(options.get("tolerance", DEFAULT_TOLERANCE))
    )
