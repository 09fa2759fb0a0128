"""``make fuzz N=...``: adversarial requests at the ingress and the status function, in-process and over HTTP.

Every request must get a 2xx, or a 4xx in the error body ``{"error": {"code", "message"}}``
(a 503 only when a store is down, which never happens here); never a 5xx, never a
dropped connection, and nothing refused may be queued. Each case is made from its own
seeded generator (``--seed`` and its index), so any line of the report can be replayed
with ``--case I``.

The classes: the signed examples of ``events/`` as they are and with random byte
mutations (re-signed, so verification passes and the parser is what is tested, or
not); pathological JSON spliced into their values (10,000 levels, lone surrogates, raw
invalid UTF-8, NaN/Infinity/1e999, 5,000-digit integers, 700 KB strings where the
event type is read); the same inside GitHub's and Slack's form ``payload=``; broken
forms; huge or odd metadata in headers; odd content types, methods, sources and
paths; bodies around the claim-check and size limits; Lambda events API Gateway never
sends (in-process only); and, over raw sockets, malformed HTTP: bad and negative
``Content-Length``, bad chunk sizes, chunked bodies over the limit, invalid header
names, stalled bodies, half-closed and aborted connections, pipelining, 100-continue.

Two lanes share the cases: in-process, ``Ingress.handle``/``StatusApi.handle`` on moto's
in-process AWS; over HTTP, the local runner's transport, gateway and functions on a free
loopback port over moto's server (pollers off, so the queue can be compared with what
was accepted). At the end the queue is compared with the 202s: a message whose id got
no 202 was a rejected request queued; a claim-check object with no 202 is an orphan.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TEMPLATE = ROOT / "infra" / "template.yaml"
CONFIG = ROOT / "config"
HTTP_MAX_BODY = 2 * 1024 * 1024  # the transport's limit in the fuzz: low, so over-the-limit bodies stay cheap
REGION = "us-east-1"


# -- the signed examples --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    name: str
    source: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def load_samples() -> tuple[list[Sample], Sample]:
    """The ingress examples of events/ and the status one."""
    ingress, status = [], None
    for path in sorted(EVENTS.glob("apigw-*.json")):
        event = json.loads(path.read_text())
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
        headers = {k.lower(): v for k, v in event["headers"].items() if k.lower() != "content-length"}
        http = event["requestContext"]["http"]
        sample = Sample(
            path.stem,
            (event.get("pathParameters") or {}).get("source", ""),
            http["method"],
            event["rawPath"],
            headers,
            body,
        )
        if event["routeKey"].startswith("GET /events/"):
            status = sample
        else:
            ingress.append(sample)
    assert status is not None, "events/apigw-demo-status.json is missing"
    return ingress, status


class Signer:
    """Signs a request for its source as the sender would, with the sample secrets."""

    def __init__(self, sources: dict[str, Any], secrets: dict[str, list[str]]):
        self.sources = sources
        self.secrets = secrets

    def kind(self, source: str) -> str:
        return str((self.sources.get(source) or {}).get("kind") or "")

    def sign(self, source: str, headers: dict[str, str], body: bytes, now: float) -> dict[str, str]:
        from inqueue_local.samples import refresh

        kind = (self.sources.get(source) or {}).get("kind")
        secret = (self.secrets.get(source) or [""])[0]
        signed = dict(headers)
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if kind == "generic":
            signed["x-signature"] = "sha256=" + digest.hex()
        elif kind == "github":
            signed["x-hub-signature-256"] = "sha256=" + digest.hex()
        elif kind == "shopify":
            signed["x-shopify-hmac-sha256"] = base64.b64encode(digest).decode()
        elif kind in ("stripe", "slack", "standard-webhooks"):
            placeholder = {"stripe": "stripe-signature", "slack": "x-slack-signature"}.get(kind, "webhook-signature")
            signed.setdefault(placeholder, "x")
            if kind == "standard-webhooks":
                signed.setdefault("webhook-id", "msg_fuzz")
            event = {
                "headers": signed,
                "body": base64.b64encode(body).decode(),
                "isBase64Encoded": True,
                "pathParameters": {"source": source},
            }
            signed = refresh(event, self.secrets, now)["headers"]
        return signed


# -- cases ------------------------------------------------------------------------------------------------------


@dataclass
class Case:
    index: int
    lane: str  # "in-process" or "http"
    cls: str
    target: str = "ingress"  # or "status"
    event: Any = None  # in-process: the Lambda event
    raw: bytes = b""  # http: the bytes sent
    mode: str = "normal"  # http: normal | stall | half-close | abort | pipeline
    signed: bool = False  # the proof is valid by construction: a 401 would be a bug
    answers: int = 1

    def describe(self, limit: int = 300) -> str:
        shown = self.raw if self.lane == "http" else json.dumps(self.event, default=repr)[:4000].encode()
        text = repr(shown[:limit]) + (f"... ({len(shown)} bytes)" if len(shown) > limit else "")
        return f"#{self.index} {self.lane} {self.cls} ({self.mode}): {text}"


INVALID_UTF8 = [b"\xed\xa0\x80", b"\xc0\xaf", b"\xff", b"\xe2\x82", b"\xf4\x90\x80\x80"]
NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1.5e400", b"1" + b"0" * 400 + b".0"]
FRAGMENTS: list[tuple[str, Callable[[random.Random], bytes]]] = [
    ("deep-array", lambda r: b"[" * r.choice([65, 100, 1000, 10_000, 20_000]) + b"]" * 0),
    ("deep-object", lambda r: b'{"a":' * r.choice([65, 500, 5_000, 10_000])),
    ("deep-at-limit", lambda r: b"[" * 63 + b"]" * 63),
    ("lone-surrogate", lambda r: r.choice([b'"\\ud800"', b'"x\\udfffy"', b'"\\uD83D"', b'"\\ude00\\ud83d"'])),
    ("surrogate-pair", lambda r: b'"\\ud83d\\ude00"'),
    ("raw-invalid-utf8", lambda r: b'"' + r.choice(INVALID_UTF8) + b'"'),
    ("nan-infinity", lambda r: r.choice(NON_FINITE)),
    ("big-integer", lambda r: b"9" * r.choice([19, 400, 4300, 4301, 5000])),
    ("huge-string", lambda r: b'"' + b"t" * r.choice([300, 5_000, 100_000, 700_000]) + b'"'),
    ("control-chars", lambda r: r.choice([b'"a\x00b"', b'"\x1f"', b'"\\u0000"'])),
]  # fmt: skip


def _close_deep(fragment: bytes) -> bytes:
    """Close what a deep fragment opened, so the document is otherwise valid."""
    arrays, objects = fragment.count(b"["), fragment.count(b'{"a":')
    if objects:
        return fragment + b"1" + b"}" * objects
    return fragment + b"]" * (arrays - fragment.count(b"]")) if arrays else fragment


class Generator:
    """Makes case ``index`` from ``Random(f"{seed}:{index}")``: every case can be made again alone."""

    def __init__(
        self, seed: int, http_share: float, samples: list[Sample], *, status: Sample, signer: Signer, routes: Any
    ):
        self.seed = seed
        self.http_share = http_share
        self.samples = samples
        self.status_sample = status
        self.signer = signer
        self.routes = routes
        self.port = 0
        self.json_samples = [s for s in samples if s.headers.get("content-type", "").startswith("application/json")]
        self.form_samples = [s for s in samples if s not in self.json_samples]

    def lane(self, index: int) -> str:
        return "http" if self.rng(index).random() < self.http_share else "in-process"

    def rng(self, index: int) -> random.Random:
        return random.Random(f"{self.seed}:{index}")  # noqa: S311 - reproducible on purpose, not secret

    def case(self, index: int) -> Case:
        rng = self.rng(index)
        lane = "http" if rng.random() < self.http_share else "in-process"
        classes = BOTH_LANES + (HTTP_ONLY if lane == "http" else IN_PROCESS_ONLY)
        name, _weight, make = rng.choices(classes, weights=[c[1] for c in classes])[0]
        case = Case(index, lane, name)
        make(self, rng, case)
        return case

    # -- building requests

    def sample(self, rng: random.Random, kinds: list[Sample] | None = None) -> Sample:
        return rng.choice(kinds or self.samples)

    def request(
        self,
        case: Case,
        sample: Sample,
        body: bytes,
        *,
        sign: bool = True,
        headers: dict[str, str] | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        all_headers = {**sample.headers, **(headers or {})}
        if self.signer.kind(sample.source) == "bitrix24":
            # Its proof is a token in the body, and its ts must be recent: refresh ts, and never
            # call a 401 a bug, since a mutation may have hit the token.
            body = re.sub(rb"(^|&)ts=\d+", lambda m: m.group(1) + b"ts=%d" % time.time(), body, count=1)
        elif sign:
            try:
                all_headers = self.signer.sign(sample.source, all_headers, body, time.time())
                case.signed = True
            except UnicodeEncodeError:
                pass  # a signed header that is not text (webhook-id): no sender can sign it, so it goes unsigned
        self.finish(case, method or sample.method, path or sample.path, all_headers, body)

    def finish(self, case: Case, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        if case.lane == "in-process":
            case.event = self.event(method, target, headers, body)
        else:
            case.raw = http_request(method, target, headers, body, self.port)

    def event(self, method: str, target: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        from inqueue_local.gateway import build_event

        path = target.split("?", 1)[0]
        route, params = self.routes.ingress, {"source": path.rsplit("/", 1)[-1]}
        if path.startswith("/events/"):
            route, params = self.routes.status, {"id": path.removeprefix("/events/")}
        return build_event(
            route, params, method, target, list(headers.items()), body,
            now=time.time(), api_id="fuzz000000", account_id="123456789012",
        )  # fmt: skip


def http_request(
    method: str, target: str, headers: dict[str, str], body: bytes, port: int, *, close: bool = True
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name not in ("host", "content-length")]
    lines.append(f"content-length: {len(body)}")
    if close:
        lines.append("connection: close")
    return "\r\n".join(lines).encode("latin-1", "replace") + b"\r\n\r\n" + body


# -- the classes: (name, weight, make(generator, rng, case)) ----------------------------------------------------


def _sample_as_is(g: Generator, rng: random.Random, case: Case) -> None:
    sample = g.sample(rng)
    g.request(case, sample, sample.body)


def _mutate(body: bytes, rng: random.Random) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        if not data:
            data.extend(rng.randbytes(4))
        op = rng.randrange(6)
        at = rng.randrange(len(data))
        if op == 0:
            data[at] = rng.randrange(256)
        elif op == 1:
            data[at:at] = rng.choice(
                [b"{", b"[", b'"', b"\\", b"\\u", b"%", b"&", b"=", b"\x00", b"\xed\xa0\x80", b"\xff"]
            )
        elif op == 2:
            del data[at : at + rng.randint(1, 16)]
        elif op == 3:
            end = min(len(data), at + rng.randint(1, 64))
            data[at:at] = data[at:end] * rng.randint(1, 50)
        elif op == 4:
            del data[at:]
        else:
            data[at:at] = rng.randbytes(rng.randint(1, 8))
    return bytes(data)


def _mutated_signed(g: Generator, rng: random.Random, case: Case) -> None:
    sample = g.sample(rng)
    g.request(case, sample, _mutate(sample.body, rng))


def _mutated_unsigned(g: Generator, rng: random.Random, case: Case) -> None:
    sample = g.sample(rng)
    g.request(case, sample, _mutate(sample.body, rng), sign=False)


def _splice_json(sample: Sample, rng: random.Random, fragment: bytes) -> bytes:
    """The sample's JSON with one value (the event type's more often than not) replaced by ``fragment``."""
    document = json.loads(sample.body)
    slots: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            slots.append((node, key))
            walk(value)

    walk(document)
    typed = [(node, key) for node, key in slots if key in ("type", "id", "event_id")]
    node, key = rng.choice(typed) if typed and rng.random() < 0.4 else rng.choice(slots)
    node[key] = "__FUZZ__"
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=rng.random() < 0.3).encode()
    return text.replace(b'"__FUZZ__"', fragment, 1)


def _pathological_json(g: Generator, rng: random.Random, case: Case) -> None:
    name, make = rng.choice(FRAGMENTS)
    case.cls = f"json:{name}"
    sample = g.sample(rng, g.json_samples)
    body = _splice_json(sample, rng, _close_deep(make(rng)))
    if rng.random() < 0.05:
        body = b"\xef\xbb\xbf" + body  # a byte order mark, which the RFC lets a parser ignore
    g.request(case, sample, body)


def _percent(data: bytes) -> bytes:
    return quote_from_bytes(data, safe=b"").encode()


def _pathological_form(g: Generator, rng: random.Random, case: Case) -> None:
    choice = rng.randrange(7)
    if choice <= 2:  # GitHub's and Slack's payload= with pathological JSON
        name, make = rng.choice(FRAGMENTS)
        case.cls = f"form-payload:{name}"
        source = rng.choice(["github", "slack"])
        sample = next(s for s in g.samples if s.source == source and "form" in s.headers.get("content-type", ""))
        inner = _close_deep(make(rng))
        payload = (
            b'{"type":"block_actions","trigger_id":"1.2.3","v":' + inner + b"}"
            if source == "slack"
            else b'{"zen":' + inner + b"}"
        )
        g.request(case, sample, b"payload=" + _percent(payload))
        return
    sample = g.sample(rng, g.form_samples)
    body = sample.body
    if choice == 3:
        case.cls = "form:bad-escape"
        extra = rng.choice([b"%ED%A0%80", b"%FF", b"%C0%AF", b"%E2%82", b"%zz", b"%"])
        body += b"&data[FIELDS][TITLE]=" + extra
    elif choice == 4:
        case.cls = "form:deep-keys"
        body += b"&a" + b"[b]" * rng.choice([15, 16, 17, 100, 5000]) + b"=1"
    elif choice == 5:
        case.cls = "form:conflicts"
        body += rng.choice([b"&data=1", b"&auth[]=1", b"&data[FIELDS]=x", b"&[x]=1", b"&a[b=1", b"&a]=1"])
    else:
        case.cls = "form:many-fields"
        body += b"".join(b"&f%d=1" % n for n in range(rng.choice([100, 9_990, 10_001])))
    g.request(case, sample, body)


def _metadata(g: Generator, rng: random.Random, case: Case) -> None:
    sample = g.sample(rng)
    names = {
        "demo": ["x-event-type", "idempotency-key", "user-agent", "x-correlation-id"],
        "github": ["x-github-event", "x-github-delivery", "x-github-hook-id", "user-agent"],
        "shopify": ["x-shopify-topic", "x-shopify-webhook-id", "x-shopify-shop-domain", "shopify-topic"],
        "slack": ["x-slack-retry-num", "x-slack-retry-reason", "user-agent"],
        "webhooks": ["webhook-id", "user-agent"],
    }.get(sample.source, ["user-agent", "x-request-id"])
    name = rng.choice(names)
    limit = 14_000 if case.lane == "http" else 700_000  # over HTTP, past 16 KiB of headers is a 431 (also tried)
    size = rng.choice([200, 257, 513, 1025, 4097, 12_000, limit, 20_000])
    value = rng.choice(["t", "é", "\u20ac", "\ud800", "a\tb", " lead", "x\x7f"]) * size
    if case.lane == "http":  # the bytes a sender would put on the wire; HTTP drops a value's outer whitespace
        value = value.encode("utf-8", "surrogatepass").decode("latin-1").strip(" \t")
    case.cls = f"metadata:{name}"
    g.request(case, sample, sample.body, headers={name: value})


CONTENT_TYPES = [
    "application/json; charset=utf-16", "application/vnd.api+json", "application/" + "x" * 200 + "+json",
    "application/+json", "APPLICATION/JSON", "text/plain", "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data; boundary=x", "", "application/json\x00", "application/\u00e9+json",
]  # fmt: skip


def _content_type(g: Generator, rng: random.Random, case: Case) -> None:
    sample = g.sample(rng)
    g.request(case, sample, sample.body, headers={"content-type": rng.choice(CONTENT_TYPES)})


def _request_line(g: Generator, rng: random.Random, case: Case) -> None:
    sample = g.sample(rng)
    choice = rng.randrange(4)
    if choice == 0:
        case.cls = "request:method"
        g.request(case, sample, sample.body, method=rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "FUZZ"]))
    elif choice == 1:
        case.cls = "request:source"
        odd = rng.choice(["nope", "DEMO", "demo%00", "%F0%9F%92%A9", "x" * 2000, "demo%2F..", "%ED%A0%80"])
        g.request(case, sample, sample.body, path=f"/hooks/{odd}")
    elif choice == 2:
        case.cls = "request:path"
        g.request(
            case,
            sample,
            sample.body,
            path=rng.choice(["/", "/hooks", "/hooks/", "/hooks/demo/x", "/events", "/x" * 500]),
        )
    else:
        case.cls = "request:query"
        g.request(
            case, sample, sample.body, path=sample.path + rng.choice(["?a=1&a=2", "?%ff=%fe", "?" + "q=1&" * 500, "?x"])
        )


def _large(g: Generator, rng: random.Random, case: Case) -> None:
    sample = next(s for s in g.samples if s.source == "demo" and s.body.startswith(b"{"))
    size = rng.choice([200_000, 262_000, 262_200, 400_000, 999_000, 1_000_001, 1_200_000])
    document = json.loads(sample.body)
    document["pad"] = "x" * size
    body = json.dumps(document, separators=(",", ":")).encode()
    case.cls = f"large:{size // 1000}k"
    g.request(case, sample, body[: size + 200] if size > 1_000_000 else body)


def _members(g: Generator, rng: random.Random, case: Case) -> None:
    sample = next(s for s in g.samples if s.source == "demo" and s.body.startswith(b"{"))
    count = rng.choice([99_998, 99_999])  # plus "type" and "items": exactly the limit, and one over
    body = b'{"type":"bulk","items":[' + b",".join([b'{"":0}'] * count) + b"]}"  # 700 KB: under the body limit
    g.request(case, sample, body)


def _event_shape(g: Generator, rng: random.Random, case: Case) -> None:
    sample = g.sample(rng)
    g.request(case, sample, sample.body)
    event = case.event
    choice = rng.randrange(12)
    shapes: list[Callable[[], Any]] = [
        lambda: rng.choice([[], "event", None, 42, True]),
        lambda: {**event, "headers": list(event["headers"].items())},
        lambda: {**event, "headers": {**event["headers"], "content-type": rng.choice([1, None, ["a"], {"b": 1}])}},
        lambda: {**event, "body": rng.choice([{"a": 1}, [1], 12, b"bytes"])},
        lambda: {**event, "isBase64Encoded": rng.choice(["true", 1, "false", None])},
        lambda: {**event, "requestContext": rng.choice(["ctx", [], None, 5])},
        lambda: {**event, "requestContext": {**event["requestContext"], "http": rng.choice([["POST"], "POST", None])}},
        lambda: {**event, "pathParameters": rng.choice([["demo"], "demo", {"source": 5}, {"source": None}, None])},
        lambda: {**event, "queryStringParameters": rng.choice([{"a": None}, ["a"], "a=1", {"a": 1}])},
        lambda: {**event, "rawPath": rng.choice([{"p": 1}, 5, None])},
        lambda: {**event, "body": "%%% not base64", "isBase64Encoded": True},
        lambda: {k: v for k, v in event.items() if k not in rng.sample(sorted(event), k=rng.randint(1, len(event)))},
    ]
    case.event = shapes[choice]()
    case.signed = False
    if rng.random() < 0.3:
        case.target = "status"


def _status(g: Generator, rng: random.Random, case: Case) -> None:
    case.target = "status"
    event_id = rng.choice([
        "7ae14011-1f21-5a3b-b111-42398d574588", "nope", "", "x" * 129, "%ED%A0%80", "a/b", "..", "%00", "\u00e9",
    ])  # fmt: skip
    wait = rng.choice([None, "0", "0.05", "-1", "26", "nan", "inf", "1e999", "x", "", "0x1"])
    query = f"?wait={wait}" if wait is not None else ""
    method = rng.choice(["GET", "GET", "GET", "POST", "HEAD"])
    g.finish(case, method, f"/events/{quote_from_bytes(event_id.encode(), safe=b'%')}{query}", {"accept": "*/*"}, b"")


# -- HTTP only


def _http_malformed(g: Generator, rng: random.Random, case: Case) -> None:
    sample = g.sample(rng)
    body = sample.body
    good = http_request(
        sample.method, sample.path, g.signer.sign(sample.source, sample.headers, body, time.time()), body, g.port
    )
    head, _, rest = good.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    variants: list[tuple[str, Callable[[], bytes]]] = [
        ("content-length-negative", lambda: _set_length(lines, b"-1") + rest),
        ("content-length-garbage", lambda: _set_length(lines, rng.choice(BAD_LENGTHS)) + rest),
        ("content-length-conflict", lambda: b"\r\n".join([*lines, b"content-length: 3"]) + b"\r\n\r\n" + rest),
        ("content-length-short", lambda: _set_length(lines, str(len(rest) + 50).encode()) + rest),
        ("both-length-and-chunked", lambda: _head([*lines, b"transfer-encoding: chunked"]) + _chunked(rest, rng)),
        ("transfer-encoding-gzip", lambda: _head([*_no_length(lines), b"transfer-encoding: gzip"]) + rest),
        ("chunk-size-invalid", lambda: _chunked_head(lines) + rng.choice(BAD_CHUNK_SIZES) + b"\r\nab\r\n0\r\n\r\n"),
        ("chunk-size-huge", lambda: _chunked_head(lines) + b"ffffffffffffffff\r\n" + b"x" * 100),
        ("chunked-over-limit", lambda: _chunked_head(lines) + (b"100000\r\n" + b"x" * 0x100000 + b"\r\n") * 3),
        ("chunked-valid", lambda: _chunked_head(lines) + _chunked(rest, rng)),
        ("header-name-invalid", lambda: _insert_header(lines, rng.choice(BAD_HEADER_LINES), rng) + rest),
        ("header-obs-fold", lambda: _insert_header(lines, b"x-a: 1\r\n  folded", rng) + rest),
        ("header-value-nul", lambda: _insert_header(lines, b"x-a: a\x00b", rng) + rest),
        ("headers-too-large", lambda: _insert_header(lines, b"x-big: " + b"a" * rng.choice(BIG), rng) + rest),
        ("lf-only", lambda: good.replace(b"\r\n", b"\n")),
        ("http-0.9", lambda: b"GET /hooks/demo\r\n\r\n"),
        ("http-2-preface", lambda: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("http-version", lambda: good.replace(b" HTTP/1.1\r\n", b" " + rng.choice(VERSIONS) + b"\r\n", 1)),
        ("no-host", lambda: _head([line for line in lines if not line.lower().startswith(b"host:")]) + rest),
        ("lowercase-method", lambda: good.replace(sample.method.encode(), sample.method.lower().encode(), 1)),
        ("absolute-target", lambda: good.replace(b" /hooks/", b" http://127.0.0.1/hooks/", 1)),
        ("request-line-huge", lambda: b"POST /" + b"x" * rng.choice([8_000, 70_000]) + b" HTTP/1.1\r\nhost: x\r\n\r\n"),
        ("target-bytes", lambda: b"POST /hooks/\xff\x00 HTTP/1.1\r\nhost: x\r\n\r\n"),
        ("garbage", lambda: rng.randbytes(rng.randint(1, 2000)) + b"\r\n\r\n"),
        ("tls-hello", lambda: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(64)),
        ("empty-line-first", lambda: b"\r\n" + good),
    ]  # fmt: skip
    name, make = rng.choice(variants)
    case.cls = f"http:{name}"
    case.raw = make()


BAD_LENGTHS = [b"abc", b"1 2", b"+5", b"0x10", b""]
BAD_CHUNK_SIZES = [b"zz", b"-1", b"0x5", b"", b"1;" + b"e" * 20000]
BAD_HEADER_LINES = [b"bad header", b"x y: z", b": v", b"x\x00: v", b"\xff: v"]
BIG = [16_000, 70_000]
VERSIONS = [b"HTTP/1.0", b"HTTP/2", b"HTTP/9.9", b"http/1.1"]


def _head(lines: list[bytes]) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _set_length(lines: list[bytes], value: bytes) -> bytes:
    out = [line for line in lines if not line.lower().startswith(b"content-length:")]
    return b"\r\n".join([*out, b"content-length: " + value]) + b"\r\n\r\n"


def _no_length(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if not line.lower().startswith(b"content-length:")]


def _chunked_head(lines: list[bytes]) -> bytes:
    return b"\r\n".join([*_no_length(lines), b"transfer-encoding: chunked"]) + b"\r\n\r\n"


def _chunked(body: bytes, rng: random.Random) -> bytes:
    out, at = b"", 0
    while at < len(body):
        size = rng.randint(1, 300)
        out += b"%x\r\n" % len(body[at : at + size]) + body[at : at + size] + b"\r\n"
        at += size
    return out + b"0\r\n\r\n"


def _insert_header(lines: list[bytes], header: bytes, rng: random.Random) -> bytes:
    at = rng.randint(1, len(lines))
    return b"\r\n".join([*lines[:at], header, *lines[at:]]) + b"\r\n\r\n"


def _http_mode(mode: str) -> Callable[[Generator, random.Random, Case], None]:
    def make(g: Generator, rng: random.Random, case: Case) -> None:
        sample = g.sample(rng)
        headers = g.signer.sign(sample.source, sample.headers, sample.body, time.time())
        raw = http_request(sample.method, sample.path, headers, sample.body, g.port, close=mode != "pipeline")
        case.mode = mode
        if mode == "pipeline":
            case.raw = raw * 2 + http_request(sample.method, sample.path, headers, sample.body, g.port)
            case.answers = 3
        elif mode == "expect":
            case.mode = "normal"
            case.raw = raw.replace(b"\r\n\r\n", b"\r\nexpect: 100-continue\r\n\r\n", 1)
        else:  # stall, half-close, abort: part of the request, then wait, shut the sending side, or hang up
            cut = rng.randint(1, len(raw) - 1)
            case.raw = raw[:cut]

    return make


BOTH_LANES: list[tuple[str, float, Callable[[Generator, random.Random, Case], None]]] = [
    ("sample", 8, _sample_as_is),
    ("mutated-signed", 12, _mutated_signed),
    ("mutated-unsigned", 4, _mutated_unsigned),
    ("json", 25, _pathological_json),
    ("form", 10, _pathological_form),
    ("metadata", 8, _metadata),
    ("content-type", 4, _content_type),
    ("request", 5, _request_line),
    ("large", 0.6, _large),
    ("members", 0.1, _members),
    ("status", 5, _status),
]
IN_PROCESS_ONLY: list[tuple[str, float, Callable[[Generator, random.Random, Case], None]]] = [
    ("event-shape", 8, _event_shape),
]
HTTP_ONLY: list[tuple[str, float, Callable[[Generator, random.Random, Case], None]]] = [
    ("http", 12, _http_malformed),
    ("http:stall", 0.25, _http_mode("stall")),
    ("http:half-close", 1.5, _http_mode("half-close")),
    ("http:client-abort", 0.5, _http_mode("abort")),
    ("http:pipeline", 1.5, _http_mode("pipeline")),
    ("http:expect-100", 1, _http_mode("expect")),
]


# -- answers -------------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: no answer
    code: str  # the error code, "-" for a success, or what the body was instead
    event_id: str | None = None
    well_formed: bool = True  # a JSON body, and for an error the {"error": {"code", "message"}} shape


def read_body(status: int, body: bytes, content_type: str) -> Answer:
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return Answer(status, "(not JSON)", well_formed=False)
    if 200 <= status < 300:
        event_id = payload.get("id") if status == 202 and isinstance(payload, dict) else None
        return Answer(status, "-", event_id, well_formed=content_type == "application/json")
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and set(error) == {"code", "message"} and isinstance(error["code"], str):
        return Answer(status, error["code"], well_formed=content_type == "application/json")
    if isinstance(payload, dict) and set(payload) == {"message"}:
        return Answer(status, f"(API Gateway: {payload['message']})")  # the gateway's own, as AWS answers a route miss
    if status in (204, 304) or (body == b"" and status == 200):
        return Answer(status, "-")
    return Answer(status, "(not the error body)", well_formed=False)


def run_in_process(handlers: dict[str, Any], case: Case) -> list[Answer]:
    try:
        response = handlers[case.target].handle(case.event, None)
    except Exception as error:  # noqa: BLE001 - what Lambda turns into API Gateway's 500
        return [Answer(500, f"(raised {type(error).__name__})", well_formed=False)]
    if not (isinstance(response, dict) and isinstance(response.get("statusCode"), int)):
        return [Answer(None, "(not a response)", well_formed=False)]
    headers = response.get("headers") or {}
    return [
        read_body(response["statusCode"], str(response.get("body") or "").encode(), headers.get("content-type", ""))
    ]


def run_http(port: int, case: Case) -> list[Answer]:
    """Send the case's bytes on a fresh connection and read every answer; an empty list: the client hung up."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(case.raw)
        if case.mode == "abort":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return []
        if case.mode == "half-close":
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        return _read_answers(sock, case.answers, bodiless=case.raw.startswith(b"HEAD "))


def _read_answers(sock: socket.socket, expected: int, *, bodiless: bool = False) -> list[Answer]:
    answers: list[Answer] = []
    buffer = b""
    try:
        while len(answers) < expected:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    return [*answers, *([Answer(None, "(dropped)")] if not answers or buffer != b"" else [])]
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            if status == 100:
                continue
            length = 0 if bodiless else int(headers.get("content-length", "0"))
            while len(buffer) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    return [*answers, Answer(None, "(dropped mid-answer)")]
                buffer += chunk
            body, buffer = buffer[:length], buffer[length:]
            answers.append(
                Answer(status, "-") if bodiless else read_body(status, body, headers.get("content-type", ""))
            )
            if headers.get("connection", "").lower() == "close":
                break
    except (ConnectionResetError, TimeoutError, OSError) as error:
        answers.append(Answer(None, f"({type(error).__name__})"))
    return answers


# -- the run -------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    by_answer: collections.Counter[tuple[int | None, str, str]] = field(default_factory=collections.Counter)
    by_class: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    accepted: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    dropped: int = 0
    client_closed: int = 0
    signed_but_401: int = 0
    malformed_bodies: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, case: Case, answers: list[Answer]) -> None:
        with self.lock:
            if case.mode == "abort":
                self.client_closed += 1
                self.by_class[(case.cls, "client hung up")] += 1
                return
            for answer in answers:
                self.by_answer[(answer.status, answer.code, case.lane)] += 1
                self.by_class[(case.cls, str(answer.status or answer.code))] += 1
                if answer.status is None:
                    self.dropped += 1
                    self.failures.append(f"dropped {answer.code}: {case.describe()}")
                elif answer.status >= 500:
                    self.failures.append(f"{answer.status} {answer.code}: {case.describe()}")
                if answer.status == 401 and case.signed:
                    self.signed_but_401 += 1
                    self.failures.append(f"signed but 401 {answer.code}: {case.describe()}")
                if not answer.well_formed:
                    self.malformed_bodies += 1
                    self.failures.append(f"{answer.status} body not well formed ({answer.code}): {case.describe()}")
                if answer.event_id:
                    self.accepted[answer.event_id] += 1


class _Lane:
    """One lane's AWS and handlers, and what its queue and bucket hold afterwards."""

    def __init__(self, workdir: Path, secrets: dict[str, Any], template: Any):
        self.workdir = workdir
        self.secrets = secrets
        self.template = template
        self.queued: collections.Counter[str] = collections.Counter()
        self.not_strict: list[str] = []
        self._stack = contextlib.ExitStack()
        self.sqs: Any = None
        self.s3: Any = None
        self.queue_url = ""
        self.bucket = ""
        self.objects: set[str] = set()

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def drain(self) -> None:
        """Take what is in the queue now, counting each envelope's id; each must read back strictly."""
        import orjson

        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return
            for message in messages:
                try:
                    envelope = orjson.loads(message["Body"].encode("utf-8"))
                except (orjson.JSONDecodeError, UnicodeEncodeError) as error:
                    self.not_strict.append(f"{error}: {message['Body'][:200]!r}")
                    envelope = json.loads(message["Body"])
                self.queued[str(envelope.get("id"))] += 1
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)

    def finish(self) -> None:
        """The last of the queue, and the bucket's objects, while the lane still runs."""
        self.drain()
        self.objects = self.stored_objects()

    def stored_objects(self) -> set[str]:
        found = set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                found.add(item["Key"].rsplit("/", 1)[-1].removesuffix(".json"))
        return found


class InProcessLane(_Lane):
    """``Ingress.handle`` and ``StatusApi.handle`` as the functions build them, on moto's in-process AWS."""

    def __enter__(self) -> InProcessLane:
        import boto3
        from moto import mock_aws

        env = {
            "AWS_ACCESS_KEY_ID": "fuzz", "AWS_SECRET_ACCESS_KEY": "fuzz", "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_METRICS_NAMESPACE": "InqueueFuzz", "POWERTOOLS_SERVICE_NAME": "inqueue-fuzz",
            "POWERTOOLS_TRACE_DISABLED": "true", "INQUEUE_QUEUE_URL": "", "INQUEUE_SOURCES": "",
            "INQUEUE_STATUS_TABLE": "fuzz-status", "INQUEUE_PAYLOAD_BUCKET": "fuzz-payloads",
        }  # fmt: skip
        saved = {
            name: os.environ.get(name) for name in [*env, "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"]
        }
        for name in saved:
            os.environ.pop(name, None)
        self._stack.callback(_restore, saved)
        self._stack.enter_context(mock_aws())
        self.sqs, self.s3 = boto3.client("sqs", region_name=REGION), boto3.client("s3", region_name=REGION)
        self.queue_url, self.bucket = self.sqs.create_queue(QueueName="fuzz-events")["QueueUrl"], "fuzz-payloads"
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName="fuzz-status", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        self.s3.create_bucket(Bucket=self.bucket)
        ssm = boto3.client("ssm", region_name=REGION)
        for ref, value in self.secrets.items():
            if ref.startswith("ssm:"):
                text = value if isinstance(value, str) else json.dumps(value)
                ssm.put_parameter(Name=ref.removeprefix("ssm:"), Value=text, Type="SecureString")
        env.update({"INQUEUE_QUEUE_URL": self.queue_url, "INQUEUE_SOURCES": self.template.parameters["SourcesConfig"]})
        os.environ.update(env)
        from inqueue.ingress import Ingress
        from inqueue.status import StatusStore
        from inqueue.status_api import StatusApi

        self.handlers = {"ingress": Ingress.from_environment(), "status": StatusApi(StatusStore("fuzz-status"))}
        return self


class HttpLane(_Lane):
    """The local runner's transport, gateway and functions on a free loopback port, over moto's server."""

    def __enter__(self) -> HttpLane:
        from inqueue_local.backends import MotoServer
        from inqueue_local.clock import SystemClock
        from inqueue_local.pipeline import Log, Pipeline
        from inqueue_local.server import GatewayServer

        backend = MotoServer(REGION)
        backend.start()
        self._stack.callback(backend.stop)
        log = (self.workdir / "runner.log").open("w", encoding="utf-8")
        self._stack.callback(log.close)
        pipeline = Pipeline(
            self.template, backend, SystemClock(), log=Log(write=lambda line: print(line, file=log)),
            config_dir=self.workdir / "config",
        )  # fmt: skip
        pipeline.start()
        self._stack.callback(pipeline.close)  # the functions' environments (processes), before the backend
        assert pipeline.gateway is not None
        server = GatewayServer(
            pipeline.gateway, port=0, max_body=HTTP_MAX_BODY, read_timeout=1.0, request_timeout=4.0, idle_timeout=1.0
        )
        server.start()
        self._stack.callback(server.stop)
        self.port = int(server.server_address[1])
        self.sqs, self.s3 = backend.client("sqs"), backend.client("s3")
        self.queue_url = pipeline.queues["EventsQueue"].url
        self.bucket = pipeline.refs["PayloadBucket"]["Ref"]
        return self


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@dataclass
class Report:
    requests: int
    seed: int
    tally: Tally
    lanes_queued: collections.Counter[str]
    objects: set[str]
    not_strict: list[str]
    seconds: float
    port: int

    @property
    def rejected_but_queued(self) -> int:
        return sum(
            max(count - self.tally.accepted.get(event_id, 0), 0) for event_id, count in self.lanes_queued.items()
        )

    @property
    def accepted_not_queued(self) -> int:
        return sum(
            max(count - self.lanes_queued.get(event_id, 0), 0) for event_id, count in self.tally.accepted.items()
        )

    @property
    def orphans(self) -> int:
        return len(self.objects - set(self.tally.accepted))

    @property
    def server_errors(self) -> int:
        return sum(
            n for (status, _code, _lane), n in self.tally.by_answer.items() if status is not None and status >= 500
        )

    @property
    def valid(self) -> bool:
        t = self.tally
        return not (
            self.server_errors or t.dropped or self.rejected_but_queued or self.accepted_not_queued or self.orphans
            or self.not_strict or t.signed_but_401 or t.malformed_bodies
        )  # fmt: skip

    def render(self, classes: bool = True) -> str:
        t = self.tally
        lanes = collections.Counter(lane for (_s, _c, lane), n in t.by_answer.items() for _ in range(n))
        out = [
            f"fuzz: {self.requests} requests, seed {self.seed}: {lanes['in-process']} answers in-process "
            f"(Ingress.handle / StatusApi.handle on moto in-process), {lanes['http']} over HTTP "
            f"(local runner's transport + gateway + functions on 127.0.0.1:{self.port}, moto server), "
            f"{t.client_closed} connections the client hung up on; {self.seconds:.0f} s",
            "",
            f"{'status':>6}  {'code':<34} {'in-process':>10} {'http':>8} {'total':>8}",
        ]
        rows: dict[tuple[int | None, str], collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for (status, code, lane), count in t.by_answer.items():
            rows[(status, code)][lane] += count
        for (status, code), counts in sorted(rows.items(), key=lambda item: (item[0][0] or 999, item[0][1])):
            total = counts["in-process"] + counts["http"]
            out.append(f"{status or '-':>6}  {code:<34} {counts['in-process']:>10} {counts['http']:>8} {total:>8}")
        out += [
            "",
            f"{'5xx answers':<40} {self.server_errors:>8}",
            f"{'dropped connections (no answer)':<40} {t.dropped:>8}",
            f"{'rejected but queued':<40} {self.rejected_but_queued:>8}  (messages whose id got no 202)",
            f"{'accepted but not queued':<40} {self.accepted_not_queued:>8}",
            f"{'orphan objects in the payload bucket':<40} {self.orphans:>8}",
            f"{'queued, not strict JSON (orjson)':<40} {len(self.not_strict):>8}",
            f"{'correctly signed but 401':<40} {t.signed_but_401:>8}",
            f"{'answers not in the JSON error body':<40} {t.malformed_bodies:>8}",
            f"{'accepted (202), queued messages':<40} {sum(t.accepted.values()):>8} {sum(self.lanes_queued.values())}",
            f"verdict {'VALID' if self.valid else 'INVALID'}",
        ]
        if t.failures:
            out += ["", f"failures ({len(t.failures)}, first 50):", *t.failures[:50]]
        if self.not_strict:
            out += ["", "not strict JSON:", *self.not_strict[:20]]
        if classes:
            by_class: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
            for (cls, seen_status), count in t.by_class.items():
                by_class[cls][seen_status] += count
            out += ["", "by class (answers by status):"]
            for cls in sorted(by_class):
                seen = ", ".join(f"{status} x{count}" for status, count in sorted(by_class[cls].items()))
                out.append(f"  {cls:<36} {seen}")
        return "\n".join(out)


def fuzz(
    requests: int,
    seed: int = 7,
    *,
    http_share: float = 0.5,
    workers: int = 4,
    only: int | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> Report:
    """Run ``requests`` cases (or only case ``only``): the in-process ones, then those over HTTP."""
    from inqueue_local.provision import load_local_secrets
    from inqueue_local.samples import secrets_by_source
    from inqueue_local.template import Template

    indices = [only] if only is not None else list(range(requests))
    started = time.monotonic()
    tally = Tally()
    lanes: list[_Lane] = []
    port = 0
    with tempfile.TemporaryDirectory(prefix="inqueue-fuzz-") as tmp, _quiet_stdout(Path(tmp) / "functions.log"):
        workdir = Path(tmp)
        (workdir / "config").mkdir()
        shutil.copyfile(CONFIG / "secrets.example.json", workdir / "config" / "secrets.local.json")
        secrets = load_local_secrets(workdir / "config")
        template = Template.load(TEMPLATE)
        sources_json = template.parameters["SourcesConfig"]
        signer = Signer(json.loads(sources_json), secrets_by_source(sources_json, secrets))
        samples, status = load_samples()
        generator = Generator(seed, http_share, samples, status=status, signer=signer, routes=_routes(template))
        by_lane: dict[str, list[int]] = {"in-process": [], "http": []}
        for index in indices:
            by_lane[generator.lane(index)].append(index)
        if by_lane["in-process"]:
            with InProcessLane(workdir, secrets, template) as lane:
                _run_in_process_lane(lane, generator, by_lane["in-process"], tally, progress)
                lanes.append(lane)
        if by_lane["http"]:
            with HttpLane(workdir, secrets, template) as http:
                port = generator.port = http.port
                _run_http_lane(http, generator, by_lane["http"], tally, progress, workers=workers)
                lanes.append(http)
    queued: collections.Counter[str] = collections.Counter()
    for done_lane in lanes:
        queued.update(done_lane.queued)
    objects = set().union(*(done_lane.objects for done_lane in lanes))
    not_strict = [line for done_lane in lanes for line in done_lane.not_strict]
    return Report(len(indices), seed, tally, queued, objects, not_strict, time.monotonic() - started, port)


def _run_in_process_lane(
    lane: InProcessLane, generator: Generator, indices: list[int], tally: Tally, progress: Callable[[str], None]
) -> None:
    for done, index in enumerate(indices, 1):
        try:
            case = generator.case(index)
            tally.record(case, run_in_process(lane.handlers, case))
        except Exception as error:  # noqa: BLE001 - a harness failure is reported, not fatal
            tally.record(Case(index, "in-process", "harness"), [Answer(None, f"(harness: {error!r})")])
        if done % 500 == 0:
            lane.drain()
            progress(f"fuzz: {done}/{len(indices)} in-process")
    lane.finish()


def _run_http_lane(
    lane: HttpLane,
    generator: Generator,
    indices: list[int],
    tally: Tally,
    progress: Callable[[str], None],
    *,
    workers: int,
) -> None:
    def one(index: int) -> None:
        try:
            case = generator.case(index)
            tally.record(case, run_http(lane.port, case))
        except Exception as error:  # noqa: BLE001 - a harness failure is reported, not fatal
            tally.record(Case(index, "http", "harness"), [Answer(None, f"(harness: {error!r})")])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, _ in enumerate(pool.map(one, indices), 1):
            if done % 1000 == 0:
                lane.drain()
                progress(f"fuzz: {done}/{len(indices)} over HTTP")
    lane.finish()


@dataclass(frozen=True)
class _Routes:
    ingress: Any
    status: Any


def _routes(template: Any) -> _Routes:
    routes = {route.path: route for route in template.http_routes()}
    return _Routes(routes["/hooks/{source}"], routes["/events/{id}"])


@contextlib.contextmanager
def _quiet_stdout(path: Path) -> Iterator[None]:
    """The functions' log lines (one or more per request) go to a file, at the descriptor level."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(path, "wb") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inqueue_local.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--http-share", type=float, default=0.5, help="share of cases sent over HTTP (0..1)")
    parser.add_argument("--workers", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--case", type=int, help="replay this one case of the seed")
    args = parser.parse_args(argv)
    report = fuzz(
        args.requests, args.seed, http_share=args.http_share, workers=args.workers, only=args.case,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )  # fmt: skip
    print(report.render())
    return 0 if report.valid else 1


if __name__ == "__main__":
    sys.exit(main())
