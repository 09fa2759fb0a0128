"""``make send EVENT=events/<file>``: post an example API Gateway event to the running runner.

The event's method, path, query, headers and body are sent as they are, except what the
gateway sets itself (host, length, forwarding headers). Examples whose proof carries a
timestamp are made fresh first (``inqueue_local.samples.refresh``): Stripe, Slack and
Standard Webhooks are re-signed now with the local secrets, Bitrix24's ``ts`` is set to now.

Whatever goes wrong that the user can fix (no such file, not an API Gateway event, nothing
listening) is a ``SendError`` with one line that says so.
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
from inqueue_local.samples import kinds_by_source, refresh, secrets_by_source

TIMEOUT_SECONDS = 10
_SET_BY_GATEWAY = {
    "host",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-amzn-trace-id",
    "connection",
}


class SendError(RuntimeError):
    """The example could not be sent; the message says why and what to do."""

    exit_status = 2  # the file given is at fault


class RunnerUnreachable(SendError):
    exit_status = 1  # nothing answered: the runner is at fault, not the file


def refreshed(event: dict[str, Any], sources_json: str, config_dir: Path, now: float) -> dict[str, Any]:
    secrets = secrets_by_source(sources_json, load_local_secrets(config_dir))
    return refresh(event, secrets, now, kinds_by_source(sources_json))


def load_event(path: Path) -> dict[str, Any]:
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SendError(
            f"{path}: no such file (the examples are in events/, e.g. events/apigw-demo-json.json)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SendError(f"{path}: cannot read it: {exc}") from None
    except ValueError as exc:
        raise SendError(f"{path}: not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise SendError(f"{path}: not an API Gateway event (a JSON object with rawPath, headers and body)")
    if "Records" in event:
        raise SendError(f"{path}: an SQS event: the runner's pollers make those; send an API Gateway (apigw-*) event")
    return event


def request_from_event(event: dict[str, Any], base_url: str) -> urllib.request.Request:
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
    """Post the example at ``path``; (status, body) of the answer, whatever its status."""
    event = load_event(path)
    try:
        request = request_from_event(refreshed(event, sources_json, config_dir, time.time()), base_url)
    except (KeyError, ValueError, TypeError) as exc:
        raise SendError(f"{path}: {exc}") from None
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - built from the URL given
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ConnectionRefusedError):
            raise RunnerUnreachable(
                f"nothing answers at {base_url}: start the runner first (make run), on the same PORT"
            ) from None
        raise RunnerUnreachable(f"cannot reach {base_url}: {reason}") from None
    except TimeoutError:
        raise RunnerUnreachable(f"{base_url} did not answer within {TIMEOUT_SECONDS} s") from None
