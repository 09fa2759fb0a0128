"""Deliveries over real HTTP to an app on 127.0.0.1: every answer class, SSRF on the wire, TLS, pooling, limits."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pytest

from inqueue.destinations import AddressRefused, Deliverer, DeliveryFailed, DeliveryLimiter
from inqueue.destinations.payload import delivery_body
from inqueue.errors import Deferred, PermanentError, RetryLater
from tests.factories import Clock, make_envelope
from tests.tables import STATUS_TABLE, create_status_table

from .conftest import App, Certificates, Names, Reply, config_for

pytestmark = pytest.mark.enable_socket

Make = Callable[..., Deliverer]


def event(**fields: Any) -> Any:
    return make_envelope(
        "3f0c8a8e-8f4b-5c1e-a8d1-6b7e2f9c0d11",
        **{"source": "bitrix24", "type": "ONCRMDEALADD", "body": {"data": {"FIELDS": {"ID": "42"}}}, **fields},
    )


def test_a_delivery_goes_to_the_checked_address_with_the_urls_host_path_and_signed_headers(
    app: App, deliverer: Make
) -> None:
    # GIVEN a destination named by a host that only the injected resolver knows (so nothing else can resolve it)
    names = Names({"app.test": [["127.0.0.1"]]})
    url = f"http://app.test:{app.port}/hooks/inqueue?tenant=eu"
    make = deliverer(config_for(url, headers={"x-tenant": "eu"}), resolver=names)
    app.reply(Reply(200, b'{"deal": 42}'))

    # WHEN the event is delivered
    delivered = make.deliver(event(), attempt=2)

    # THEN the app got exactly the documented bytes, on the URL's path, with the URL's Host
    assert (delivered.status, delivered.result, delivered.address) == (200, {"deal": 42}, "127.0.0.1")
    [seen] = app.seen
    assert (seen.method, seen.path) == ("POST", "/hooks/inqueue?tenant=eu")
    assert seen.headers["host"] == f"app.test:{app.port}"
    assert seen.body == delivery_body(event())
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["content-length"] == str(len(seen.body))
    assert seen.headers["webhook-id"] == event().id
    assert seen.headers["webhook-signature"].startswith("v1,")
    assert (seen.headers["inqueue-source"], seen.headers["inqueue-type"]) == ("bitrix24", "ONCRMDEALADD")
    assert seen.headers["inqueue-attempt"] == "2"
    assert seen.headers["x-tenant"] == "eu"
    assert seen.headers["user-agent"].startswith("Inqueue/")
    assert names.calls == ["app.test"]


def test_secret_headers_are_resolved_and_sent(app: App, deliverer: Make) -> None:
    config = config_for(
        f"http://127.0.0.1:{app.port}/", secret_headers={"authorization": "ssm:/inqueue/destinations/app-token"}
    )
    deliverer(config).deliver(event())
    assert app.seen[0].headers["authorization"] == "Bearer s3cr3t"


@pytest.mark.parametrize(
    ("reply", "result", "omitted"),
    [
        (Reply(200, b'{"deal": 42}'), {"deal": 42}, None),
        (Reply(201, b'{"queued": true}', {"content-type": "text/html"}), {"queued": True}, None),  # PHP's default type
        (Reply(204, b"", {}), None, None),
        (Reply(200, b"OK", {"content-type": "text/plain"}), None, "not_json"),
        (Reply(200, json.dumps({"rows": ["x" * 100] * 100}).encode()), None, "too_large"),
        (Reply(200, b"[" + b"1," * 70_000 + b"1]"), None, "too_large"),  # more than is ever read
    ],
)
def test_a_2xx_answer_succeeds_with_its_json_as_the_result(
    app: App, deliverer: Make, reply: Reply, result: Any, omitted: str | None
) -> None:
    app.reply(reply)
    delivered = deliverer(config_for(f"http://127.0.0.1:{app.port}/")).deliver(event())
    assert (delivered.result, delivered.result_omitted) == (result, omitted)


def test_retry_after_is_honoured_as_delta_seconds_and_as_an_http_date(app: App, deliverer: Make) -> None:
    clock = Clock()
    make = deliverer(config_for(f"http://127.0.0.1:{app.port}/"), clock=clock)
    app.reply(
        Reply(429, b'{"error": "slow down"}', {"retry-after": "30"}),
        Reply(503, b"maintenance", {"retry-after": formatdate(clock.now + 600, usegmt=True)}),
    )
    with pytest.raises(RetryLater) as delta:
        make.deliver(event())
    assert delta.value.seconds == 30
    with pytest.raises(RetryLater) as date:
        make.deliver(event())
    assert date.value.seconds == 600


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(429, b"", {}), DeliveryFailed),  # no Retry-After: the backoff decides
        (Reply(503, b"", {}), DeliveryFailed),
        (Reply(408, b"", {}), DeliveryFailed),
        (Reply(500, b'{"error": "db down"}'), DeliveryFailed),
        (Reply(502, b"bad gateway", {}), DeliveryFailed),
        (Reply(400, b'{"error": "unknown deal"}'), PermanentError),
        (Reply(404, b"no such route", {}), PermanentError),
        (Reply(422, b'{"error": "invalid"}'), PermanentError),
    ],
)
def test_failures_are_retried_or_permanent_by_status(app: App, deliverer: Make, reply: Reply, error: type) -> None:
    app.reply(reply)
    with pytest.raises(error) as raised:
        deliverer(config_for(f"http://127.0.0.1:{app.port}/")).deliver(event())
    assert f"answered {reply.status}" in str(raised.value)
    if reply.body:
        assert reply.body.decode()[:20] in str(raised.value)
    if error is DeliveryFailed:
        assert not isinstance(raised.value, PermanentError)


def test_redirects_are_never_followed(app: App, deliverer: Make) -> None:
    make = deliverer(config_for(f"http://127.0.0.1:{app.port}/in"))
    app.reply(Reply(302, b"", {"location": f"http://127.0.0.1:{app.port}/elsewhere"}))
    with pytest.raises(DeliveryFailed, match=r"302.*redirects are not followed"):
        make.deliver(event())
    app.reply(Reply(301, b"", {"location": "https://new.example/in"}))
    with pytest.raises(PermanentError, match=r"301.*location: https://new\.example/in"):
        make.deliver(event())
    assert [seen.path for seen in app.seen] == ["/in", "/in"]


def test_an_app_that_does_not_answer_in_time_is_a_retried_timeout(app: App, deliverer: Make) -> None:
    release = threading.Event()
    app.reply(Reply(hold=release))
    try:
        with pytest.raises(DeliveryFailed, match=r"no answer within 0\.2 s"):
            deliverer(config_for(f"http://127.0.0.1:{app.port}/", timeout=0.2)).deliver(event())
    finally:
        release.set()


def test_an_app_that_is_not_listening_is_a_retried_connection_error(deliverer: Make) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(DeliveryFailed, match="could not connect"):
        deliverer(config_for(f"http://127.0.0.1:{port}/")).deliver(event())


def test_connections_are_kept_alive_and_a_half_read_one_is_not_reused(app: App, deliverer: Make) -> None:
    make = deliverer(config_for(f"http://127.0.0.1:{app.port}/"))
    app.reply(Reply(), Reply(), Reply(200, b"x" * 100_000), Reply())
    for _ in range(4):
        make.deliver(event())
    ports = [seen.client_port for seen in app.seen]
    assert ports[0] == ports[1] == ports[2]  # one connection for the first three
    assert ports[3] != ports[2]  # the answer that was not read to its end closed that one


def test_loopback_is_refused_unless_the_local_runner_allows_it(app: App, deliverer: Make) -> None:
    with pytest.raises(AddressRefused, match=r"127\.0\.0\.1 is a loopback address"):
        deliverer(config_for(f"http://127.0.0.1:{app.port}/"), allow_loopback=False).deliver(event())
    names = Names({"localhost.example": [["127.0.0.1"]]})
    make = deliverer(config_for(f"http://localhost.example:{app.port}/"), resolver=names, allow_loopback=False)
    with pytest.raises(AddressRefused, match=r"resolves to 127\.0\.0\.1"):
        make.deliver(event())
    assert app.seen == []


def test_a_name_rebound_to_a_private_address_is_refused_on_the_next_attempt(app: App, deliverer: Make) -> None:
    # GIVEN a name that answers an allowed address, then a private one
    names = Names({"app.test": [["127.0.0.1"], ["10.0.0.1"]]})
    make = deliverer(config_for(f"http://app.test:{app.port}/"), resolver=names)
    app.reply(Reply(500, b"try again", {}))

    # WHEN the first attempt fails and the event is tried again
    with pytest.raises(DeliveryFailed):
        make.deliver(event())
    with pytest.raises(AddressRefused, match=r"resolves to 10\.0\.0\.1, which is a private address"):
        make.deliver(event())

    # THEN the second attempt never connected: the app saw one request, though a kept-alive connection was there
    assert len(app.seen) == 1
    assert names.calls == ["app.test", "app.test"]


def test_https_connects_to_the_address_but_sends_and_verifies_the_host_name(
    certificates: Certificates, deliverer: Make
) -> None:
    tls_app = App(tls=certificates.server)
    try:
        names = Names({"app.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
        make = deliverer(
            {
                "destinations": {
                    "app": {"url": f"https://app.test:{tls_app.port}/in", "secret": "ssm:/inqueue/destinations/app"},
                    "other": {
                        "url": f"https://other.test:{tls_app.port}/in",
                        "secret": "ssm:/inqueue/destinations/app",
                    },
                },
                "routes": {"bitrix24": "app", "github": "other"},
            },
            resolver=names,
            ca_certs=str(certificates.ca),
        )

        # WHEN delivered to app.test, whose certificate the server has
        delivered = make.deliver(event())

        # THEN TLS went to 127.0.0.1 with app.test as SNI and the certificate checked against it
        assert delivered.status == 200
        assert tls_app.server_names == ["app.test"]
        assert tls_app.seen[0].headers["host"] == f"app.test:{tls_app.port}"

        # AND a name the certificate does not cover fails verification (retried: the app can fix its certificate)
        with pytest.raises(DeliveryFailed, match="TLS failed"):
            make.deliver(event(source="github"))
        assert len(tls_app.seen) == 1
    finally:
        tls_app.close()


def test_https_without_a_trusted_certificate_is_refused(app: App, certificates: Certificates, deliverer: Make) -> None:
    tls_app = App(tls=certificates.server)
    try:
        make = deliverer(config_for(f"https://app.test:{tls_app.port}/"), resolver=Names({"app.test": [["127.0.0.1"]]}))
        with pytest.raises(DeliveryFailed, match=r"TLS failed.*CERTIFICATE_VERIFY_FAILED"):
            make.deliver(event())
        assert tls_app.seen == []
    finally:
        tls_app.close()


def test_a_rate_limited_destination_defers_rather_than_sends(app: App, deliverer: Make, aws: None) -> None:
    clock = Clock()
    limiter = DeliveryLimiter(STATUS_TABLE, create_status_table(), clock=clock, sleep=lambda seconds: None)
    make = deliverer(config_for(f"http://127.0.0.1:{app.port}/", rate=1), limiter=limiter, clock=clock)

    make.deliver(event())
    with pytest.raises(Deferred) as deferred:
        make.deliver(event(), max_wait=0)

    assert deferred.value.seconds == pytest.approx(1.0)
    assert len(app.seen) == 1
