"""Re-sign the example requests in events/ for now, so timestamped schemes do not go stale.

Stripe, Slack and Standard Webhooks sign a timestamp that must be within five minutes of
the receiver's clock; a file signed once is stale minutes later. ``refresh`` gives such an
example a fresh timestamp and signature made with its source's sample secret. Bitrix24
signs nothing, but its body's ``ts`` must be within the source's ``max_age`` (a day by
default): ``refresh`` sets it to now, leaving every other byte of the body as it was.
Every other example (GitHub, Shopify, generic) comes back unchanged. Development only: the
signing here mirrors the senders and is tested against their own libraries.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def secrets_by_source(sources_json: str, local_secrets: Mapping[str, Any]) -> dict[str, list[str]]:
    """Source name -> its secrets, from the sources config and a ref-keyed secrets file (config/secrets.*.json).

    A value may be one secret, a list, or a JSON list in a string (as SSM stores it); map-shaped
    values (Bitrix24's per-portal tokens) sign nothing here and are left out.
    """
    result: dict[str, list[str]] = {}
    for name, options in json.loads(sources_json or "{}").items():
        ref = options.get("secret") if isinstance(options, dict) else None
        value = local_secrets.get(str(ref)) if ref else None
        if isinstance(value, str) and value.strip().startswith("["):
            value = json.loads(value)
        if isinstance(value, str):
            result[name] = [value]
        elif isinstance(value, list):
            result[name] = [str(item) for item in value]
    return result


def _body(event: dict[str, Any]) -> bytes:
    raw = event.get("body") or ""
    return base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode("utf-8")


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _sign(headers: dict[str, str], body: bytes, secret: str, t: int) -> bool:
    """Re-sign in place; False when the example uses no timestamped scheme."""
    if "stripe-signature" in headers:
        digest = _hmac(secret.encode(), f"{t}.".encode() + body).hex()
        headers["stripe-signature"] = f"t={t},v1={digest}"
    elif "x-slack-signature" in headers:
        headers["x-slack-request-timestamp"] = str(t)
        headers["x-slack-signature"] = "v0=" + _hmac(secret.encode(), f"v0:{t}:".encode() + body).hex()
    elif "webhook-signature" in headers:
        key = base64.b64decode(secret.removeprefix("whsec_") + "==")
        message = f"{headers.get('webhook-id', '')}.{t}.".encode() + body
        headers["webhook-timestamp"] = str(t)
        headers["webhook-signature"] = "v1," + base64.b64encode(_hmac(key, message)).decode()
    else:
        return False
    return True


# Bitrix24's form field, at the start of the body or after an '&', in the raw bytes.
_BITRIX24_TS = re.compile(rb"(^|&)ts=[0-9]*(?=&|$)")


def _with_ts(body: bytes, t: int) -> bytes:
    return _BITRIX24_TS.sub(lambda match: match.group(1) + b"ts=" + str(t).encode(), body, count=1)


def kinds_by_source(sources_json: str) -> dict[str, str]:
    """Source name -> its kind, from the sources config."""
    return {
        str(name): str(options.get("kind"))
        for name, options in json.loads(sources_json or "{}").items()
        if isinstance(options, dict)
    }


def refresh(
    event: dict[str, Any], secrets: dict[str, list[str]], now: float, kinds: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A copy of an HTTP API example made fresh for ``now``: re-signed with the first secret of its source,
    or, for a source of kind ``bitrix24`` (``kinds``, see ``kinds_by_source``), with its ``ts`` set to now.

    ``secrets`` maps source names to their secrets (see ``secrets_by_source``). The kind decides, not the
    body's shape: a Bitrix24-shaped form posted to an HMAC source is signed as it is and left alone.
    """
    fresh = copy.deepcopy(event)
    headers = {str(k).lower(): str(v) for k, v in (fresh.get("headers") or {}).items()}
    source = str((fresh.get("pathParameters") or {}).get("source") or "")
    t = int(now)
    if (kinds or {}).get(source) == "bitrix24" and _BITRIX24_TS.search(_body(fresh)):
        body = _with_ts(_body(fresh), t)
        if fresh.get("isBase64Encoded"):
            fresh["body"] = base64.b64encode(body).decode()
        else:
            fresh["body"] = body.decode("utf-8")
        headers["content-length"] = str(len(body))
        fresh["headers"] = headers
    elif any(name in headers for name in ("stripe-signature", "x-slack-signature", "webhook-signature")):
        if not secrets.get(source):
            raise KeyError(f"no sample secret for source {source!r}; add it to config/secrets.local.json")
        _sign(headers, _body(fresh), secrets[source][0], t)
        fresh["headers"] = headers
    else:
        return fresh
    context = fresh.setdefault("requestContext", {})
    context["timeEpoch"] = t * 1000
    context["time"] = datetime.fromtimestamp(t, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return fresh
