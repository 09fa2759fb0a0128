"""``make send EVENT=events/<file>``: post an example API Gateway event to the running runner.

The event's method, path, query, headers and body are sent as they are, except what the
gateway sets itself (host, length, forwarding headers). Events whose signatures carry a
timestamp (Stripe, Slack, Standard Webhooks) are re-signed now with the local secrets,
by ``inqueue_local.samples.refresh`` when that module is present.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from inqueue_local.provision import load_local_secrets
from inqueue_local.samples import refresh, secrets_by_source

_SET_BY_GATEWAY = {
    "host",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-amzn-trace-id",
    "connection",
}


def refreshed(event: dict[str, Any], sources_json: str, config_dir: Path, now: float) -> dict[str, Any]:
    return refresh(event, secrets_by_source(sources_json, load_local_secrets(config_dir)), now)


def request_from_event(event: dict[str, Any], base_url: str) -> urllib.request.Request:
    if "Records" in event:
        raise ValueError("this is an SQS event: the runner's pollers make those; send an API Gateway (apigw-*) event")
    method = event.get("requestContext", {}).get("http", {}).get("method") or event.get("httpMethod") or "POST"
    path = event.get("rawPath") or event.get("path") or "/"
    query = event.get("rawQueryString") or ""
    headers = {k: str(v) for k, v in (event.get("headers") or {}).items() if k.lower() not in _SET_BY_GATEWAY}
    if event.get("cookies"):
        headers["cookie"] = "; ".join(event["cookies"])
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode("utf-8")
    url = base_url.rstrip("/") + path + (f"?{query}" if query else "")
    return urllib.request.Request(  # noqa: S310 - a loopback URL the user named
        url, data=body if body or method not in ("GET", "HEAD") else None, headers=headers, method=method
    )


def send(path: Path, base_url: str, sources_json: str, config_dir: Path) -> tuple[int, bytes]:
    event = json.loads(path.read_text(encoding="utf-8"))
    request = request_from_event(refreshed(event, sources_json, config_dir, time.time()), base_url)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - built above from the URL given
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
