"""API Gateway HTTP API (payload format 2.0): requests in, responses out."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from inqueue.errors import BadRequest, HttpError


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    path_parameters: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    request_id: str
    source_ip: str

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


def parse_event(event: dict[str, Any]) -> Request:
    """Turn an HTTP API 2.0 event into a Request, decoding a base64 body to the raw bytes signed."""
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    raw_body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw_body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("body is marked base64 but does not decode") from None
    else:
        body = raw_body.encode("utf-8", "surrogatepass") if isinstance(raw_body, str) else bytes(raw_body)
    # API Gateway lower-cases names already; the local runner and tests may not.
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return Request(
        method=str(http.get("method") or "").upper(),
        path=str(event.get("rawPath") or http.get("path") or ""),
        path_parameters=dict(event.get("pathParameters") or {}),
        query=dict(event.get("queryStringParameters") or {}),
        headers=headers,
        body=body,
        request_id=str(context.get("requestId") or ""),
        source_ip=str(http.get("sourceIp") or ""),
    )


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(payload, separators=(",", ":")),
    }


def error_response(error: HttpError) -> dict[str, Any]:
    return json_response(error.status, {"error": {"code": error.code, "message": error.message}}, error.headers)
