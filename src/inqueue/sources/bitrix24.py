"""``bitrix24``: outgoing webhooks and app event handlers, proven by ``auth[application_token]``.

Options::

    {"kind": "bitrix24", "secret": "ssm:/inqueue/bitrix24",
     "max_age": 86400}      # reject a ``ts`` older than this many seconds; 0 turns the check off

The secret is either the outgoing webhook's token (or a JSON list of tokens while one is
replaced), or, for an app installed on several portals, a JSON object of portal to
token(s), the portal named by its ``member_id`` or its domain::

    {"a1b2c3d4e5f60718293a4b5c6d7e8f90": "token-from-ONAPPINSTALL", "shop.bitrix24.com": ["new", "old"]}

Bitrix24 sends no HMAC and no event id: the token in the body is the proof, and the
delivery id is derived from portal, event, entity id and ``ts``. ``ts`` is when
Bitrix24's queue sent the event, which can lag; it is only checked loosely (``max_age``).
The token is removed from the queued body: workers need ``auth[access_token]``, not it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from inqueue.errors import Unauthorized
from inqueue.httpapi import Request
from inqueue.sources import Described, KindDeps, SourceConfig, as_object, check_options
from inqueue.sources.signing import matches_any

DEFAULT_MAX_AGE = 86_400
_FUTURE_SKEW = 300
_AUTH_FIELDS = ("auth[application_token]", "auth[member_id]", "auth[domain]", "ts")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def auth_fields(body: bytes) -> dict[str, str]:
    """The few form fields verification needs, read from the raw body without decoding the rest of it."""
    found: dict[str, str] = {}
    for part in body.split(b"&"):
        raw_key, _, raw_value = part.partition(b"=")
        if not raw_key.startswith((b"auth", b"ts")):  # cheap skip of data[...] and the like
            continue
        try:
            key = unquote_plus(raw_key.decode("ascii"), errors="strict")
            if key in _AUTH_FIELDS:
                # The last one wins, as PHP and forms.parse_form decide.
                found[key] = unquote_plus(raw_value.decode("utf-8"), errors="strict")
        except UnicodeError:
            continue
    return found


@dataclass(frozen=True, slots=True)
class Bitrix24Verifier:
    deps: KindDeps
    secret: str
    max_age: int
    headers_kept: tuple[str, ...] = ()

    def verify(self, request: Request) -> None:
        fields = auth_fields(request.body)
        token = fields.get("auth[application_token]", "")
        if not token:
            raise Unauthorized("the body has no auth[application_token]", code="missing_token")
        secret = self.deps.secrets.get_keyed(self.secret)
        if isinstance(secret, dict):
            member_id, domain = fields.get("auth[member_id]", ""), fields.get("auth[domain]", "")
            tokens = secret.get(member_id) if member_id else None
            if tokens is None and domain:
                tokens = secret.get(domain) or secret.get(domain.lower())
            if tokens is None:
                raise Unauthorized("no token is configured for this portal", code="unknown_portal")
        else:
            tokens = secret
        if not matches_any([t.encode() for t in tokens], [token.encode("utf-8", "surrogatepass")]):
            raise Unauthorized("the application token is not valid for this source", code="bad_token")
        self._check_freshness(fields.get("ts", ""))

    def _check_freshness(self, ts: str) -> None:
        # Not a signed timestamp, so a missing or odd one is no reason to lose an event Bitrix24 never resends.
        if not self.max_age or not (ts.isascii() and ts.isdigit() and len(ts) <= 12):
            return
        age = self.deps.clock() - int(ts)
        if age > self.max_age or age < -_FUTURE_SKEW:
            raise Unauthorized(
                f"the event's ts is more than {self.max_age} s old or in the future", code="stale_timestamp"
            )

    def describe(self, request: Request, body: Any) -> Described:
        form = as_object(body)
        auth = as_object(form.get("auth"))
        entity = as_object(as_object(form.get("data")).get("FIELDS"))
        event = _text(form.get("event")) or "unknown"
        portal = _text(auth.get("member_id")) or _text(auth.get("domain"))
        ts = _text(form.get("ts"))
        # Bitrix24 has no event id; these four name one event and stay the same if it is ever sent twice.
        delivery_id = f"{portal}:{event}:{_text(entity.get('ID'))}:{ts}" if portal and ts else None
        meta = {key: auth[key] for key in ("domain", "member_id") if _text(auth.get(key))}
        if "application_token" in auth:
            clean = {**form, "auth": {k: v for k, v in auth.items() if k != "application_token"}}
            return Described(event, delivery_id, meta, body=clean)
        return Described(event, delivery_id, meta)


def build(config: SourceConfig, deps: KindDeps) -> Bitrix24Verifier:
    options = check_options(config, {"max_age"})
    max_age = int(options.get("max_age", DEFAULT_MAX_AGE))
    if max_age < 0:
        raise ValueError("max_age must be 0 (off) or a number of seconds")
    return Bitrix24Verifier(deps=deps, secret=options["secret"], max_age=max_age)
