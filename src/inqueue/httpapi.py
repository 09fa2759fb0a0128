"""API Gateway HTTP API (payload format 2.0): requests in, responses out.

``parse_event`` accepts exactly the shapes API Gateway sends (an object; headers, path
and query parameters as objects of strings; the body a string or absent) and answers
anything else, which only a direct invocation or a misconfigured integration can
produce, with ``400 malformed_request`` rather than an exception.
"""

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


def malformed_request(what: str) -> BadRequest:
    return BadRequest(f"not an API Gateway HTTP API (2.0) request: {what}", code="malformed_request")


def parse_event(event: Any) -> Request:
    """Turn an HTTP API 2.0 event into a Request, decoding a base64 body to the raw bytes signed."""
    if type(event) is not dict:
        raise malformed_request(f"the event is {type(event).__name__}, not an object")
    context = _object(event, "requestContext")
    http = _object(context, "http")
    raw_body = event.get("body")
    encoded = event.get("isBase64Encoded")
    if encoded is not None and type(encoded) is not bool:
        raise malformed_request("isBase64Encoded is not true or false")
    if raw_body is None:
        body = b""
    elif type(raw_body) is not str:
        raise malformed_request(f"body is {type(raw_body).__name__}, not a string")
    elif encoded:
        try:
            body = base64.b64decode(raw_body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("body is marked base64 but does not decode") from None
    else:
        # Lone surrogates (only a direct invocation can send them) become bytes that fail strict UTF-8 later.
        body = raw_body.encode("utf-8", "surrogatepass")
    # API Gateway lower-cases names already; the local runner and tests may not.
    headers = {}
    for name, value in _strings(event, "headers").items():
        headers[name.lower()] = value
    return Request(
        method=_string(http, "method").upper(),
        path=_string(event, "rawPath") or _string(http, "path"),
        path_parameters=_strings(event, "pathParameters"),
        query=_strings(event, "queryStringParameters"),
        headers=headers,
        body=body,
        request_id=_string(context, "requestId"),
        source_ip=_string(http, "sourceIp"),
    )


def _object(parent: dict[str, Any], name: str) -> dict[str, Any]:
    value = parent.get(name)
    if value is None:
        return {}
    if type(value) is not dict:
        raise malformed_request(f"{name} is {type(value).__name__}, not an object")
    return value


def _string(parent: dict[str, Any], name: str) -> str:
    value = parent.get(name)
    if value is None:
        return ""
    if type(value) is not str:
        raise malformed_request(f"{name} is {type(value).__name__}, not a string")
    return value


def _strings(parent: dict[str, Any], name: str) -> dict[str, str]:
    value = _object(parent, name)
    for key, item in value.items():
        if type(key) is not str or type(item) is not str:
            raise malformed_request(f"{name} holds a value that is not a string")
    return value


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(payload, separators=(",", ":")),
    }


def error_response(error: HttpError) -> dict[str, Any]:
    return json_response(error.status, {"error": {"code": error.code, "message": error.message}}, error.headers)
