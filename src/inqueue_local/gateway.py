"""API Gateway HTTP API (payload format 2.0), without sockets.

``Gateway.handle(method, target, headers, body)`` matches a route, builds a fresh 2.0
event (``build_event``), invokes the function and maps its answer to an HTTP response
(``map_response``) the way API Gateway does. The HTTP server in ``server.py`` only
moves bytes; tests call ``handle`` directly.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from inqueue_local.clock import Clock
from inqueue_local.runtime import Invocation, Runtime
from inqueue_local.template import HttpRoute

INTERNAL_ERROR = b'{"message":"Internal Server Error"}'
NOT_FOUND = b'{"message":"Not Found"}'


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class _CompiledRoute:
    route: HttpRoute
    function: Runtime
    pattern: re.Pattern[str] | None
    params: tuple[str, ...]
    greedy: bool
    literal_length: int


def _compile(route: HttpRoute, function: Runtime) -> _CompiledRoute:
    if route.path == "$default":
        return _CompiledRoute(route, function, None, (), True, -1)
    params: list[str] = []
    parts: list[str] = []
    greedy = False
    for segment in route.path.strip("/").split("/"):
        match = re.fullmatch(r"\{([A-Za-z0-9_.-]+)(\+?)\}", segment)
        if match:
            params.append(match.group(1))
            greedy = greedy or bool(match.group(2))
            parts.append("(.+)" if match.group(2) else "([^/]+)")
        else:
            parts.append(re.escape(segment))
    literal = len(re.sub(r"\{[^}]+\}", "", route.path))
    return _CompiledRoute(route, function, re.compile("/" + "/".join(parts)), tuple(params), greedy, literal)


def request_id() -> str:
    """API Gateway's shape: 16 characters of base64, new for every request."""
    return base64.b64encode(secrets.token_bytes(11)).decode()[:15] + "="


def build_event(  # noqa: PLR0917 - the request's parts, as the transport hands them over
    route: HttpRoute,
    path_parameters: Mapping[str, str],
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    now: float,
    api_id: str,
    account_id: str,
    source_ip: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
) -> dict[str, Any]:
    """A payload-format 2.0 event, made fresh for one request."""
    split = urlsplit(target)
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    host = joined.get("host", "localhost")
    joined.setdefault("x-forwarded-for", source_ip)
    joined.setdefault("x-forwarded-proto", "http")
    joined.setdefault("x-forwarded-port", host.rpartition(":")[2] if ":" in host else "80")
    joined.setdefault("x-amzn-trace-id", f"Root=1-{int(now):08x}-{secrets.token_hex(12)}")
    query: dict[str, str] = {}
    for key, value in parse_qsl(split.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    rid = request_id()
    domain = host.split(":")[0]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": split.path or "/",
        "rawQueryString": split.query,
        "headers": joined,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method.upper(),
                "path": unquote(split.path or "/"),
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": rid,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        text = _as_text(body) if delivers_as_text(joined.get("content-type")) else None
        if text is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


# HTTP APIs pass a body as a string only for these media types; anything else, a missing
# content type and application/x-www-form-urlencoded included, arrives base64-encoded.
TEXT_MEDIA_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})


def delivers_as_text(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in TEXT_MEDIA_TYPES


def _as_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def map_response(invocation: Invocation, request_id_: str) -> Response:
    """The function's answer as API Gateway turns it into HTTP (payload format 2.0)."""
    trailer = [("apigw-requestid", request_id_)]
    if invocation.failed:
        return Response(500, [("content-type", "application/json"), *trailer], INTERNAL_ERROR)
    result = invocation.result
    if not (isinstance(result, dict) and "statusCode" in result):
        try:
            body = json.dumps(result).encode()
        except (TypeError, ValueError):
            return Response(500, [("content-type", "application/json"), *trailer], INTERNAL_ERROR)
        return Response(200, [("content-type", "application/json"), *trailer], body)
    try:
        status = int(result["statusCode"])
        headers = [(str(k).lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((str(name).lower(), str(v)) for v in values)
        headers.extend(("set-cookie", str(c)) for c in result.get("cookies") or [])
        raw = result.get("body")
        if raw is None:
            data = b""
        elif result.get("isBase64Encoded"):
            data = base64.b64decode(str(raw), validate=True)
        else:
            data = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
    except (TypeError, ValueError, binascii.Error, AttributeError):
        return Response(500, [("content-type", "application/json"), *trailer], INTERNAL_ERROR)
    if not 100 <= status <= 599:
        return Response(500, [("content-type", "application/json"), *trailer], INTERNAL_ERROR)
    return Response(status, [*headers, *trailer], data)


class Gateway:
    """Routes of one or more HttpApis, served from one local address."""

    def __init__(
        self,
        routes: Iterable[tuple[HttpRoute, Runtime]],
        clock: Clock,
        *,
        account_id: str = "123456789012",
        log: Callable[[str, str], None] = lambda _name, _line: None,
    ):
        compiled = [_compile(route, function) for route, function in routes]
        # API Gateway picks the most specific route: literal paths before parameters before greedy, then $default.
        self.routes = sorted(
            compiled, key=lambda r: (r.pattern is None, r.greedy, -r.literal_length, r.route.method == "ANY")
        )
        self.clock = clock
        self.account_id = account_id
        self.log = log
        self.api_ids = {r.route.api: _api_id(r.route.api) for r in compiled}

    def match(self, method: str, path: str) -> tuple[_CompiledRoute, dict[str, str]] | None:
        for compiled in self.routes:
            if compiled.route.method not in ("ANY", method.upper()):
                continue
            if compiled.pattern is None:
                return compiled, {}
            found = compiled.pattern.fullmatch(path)
            if found:
                return compiled, {
                    name: unquote(value) for name, value in zip(compiled.params, found.groups(), strict=True)
                }
        return None

    def handle(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        *,
        source_ip: str = "127.0.0.1",
        protocol: str = "HTTP/1.1",
    ) -> Response:
        started = time.perf_counter()
        path = urlsplit(target).path or "/"
        matched = self.match(method, path)
        if matched is None:
            rid = request_id()
            self.log("gateway", f"{method} {path} -> 404 (no route)")
            return Response(404, [("content-type", "application/json"), ("apigw-requestid", rid)], NOT_FOUND)
        compiled, params = matched
        event = build_event(
            compiled.route, params, method, target, list(headers), body,
            now=self.clock.now(), api_id=self.api_ids[compiled.route.api], account_id=self.account_id,
            source_ip=source_ip, protocol=protocol,
        )  # fmt: skip
        rid = event["requestContext"]["requestId"]
        invocation = compiled.function.invoke(event)
        response = map_response(invocation, rid)
        took = (time.perf_counter() - started) * 1000
        detail = f"; {invocation.describe_error()}" if invocation.failed else ""
        self.log(
            compiled.function.name,
            f"{method} {path} -> {response.status} in {took:.1f} ms "
            f"(request {rid}{', cold start' if invocation.cold else ''}){detail}",
        )
        return response


def _api_id(logical_id: str) -> str:
    """A stable 10-character API id per HttpApi, as AWS's look."""
    return (re.sub(r"[^a-z0-9]", "", logical_id.lower()) + "0000000000")[:10]
