"""Re-sign the example requests in events/ for now, so timestamped schemes do not go stale.

Stripe, Slack and Standard Webhooks sign a timestamp that must be within five minutes of
the receiver's clock; a file signed once is stale minutes later. ``refresh`` gives such an
example a fresh timestamp and signature made with its source's sample secret; every other
example (GitHub, Shopify, Bitrix24, generic) comes back unchanged. Development only: the
signing here mirrors the senders and is tested against their own libraries.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
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


def refresh(event: dict[str, Any], secrets: dict[str, list[str]], now: float) -> dict[str, Any]:
    """A copy of an HTTP API example re-signed at ``now`` with the first secret of its source.

    ``secrets`` maps source names to their secrets (see ``secrets_by_source``).
    """
    fresh = copy.deepcopy(event)
    headers = {str(k).lower(): str(v) for k, v in (fresh.get("headers") or {}).items()}
    if not any(name in headers for name in ("stripe-signature", "x-slack-signature", "webhook-signature")):
        return fresh
    source = str((fresh.get("pathParameters") or {}).get("source") or "")
    if not secrets.get(source):
        raise KeyError(f"no sample secret for source {source!r}; add it to config/secrets.local.json")
    t = int(now)
    _sign(headers, _body(fresh), secrets[source][0], t)
    fresh["headers"] = headers
    context = fresh.setdefault("requestContext", {})
    context["timeEpoch"] = t * 1000
    context["time"] = datetime.fromtimestamp(t, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return fresh
