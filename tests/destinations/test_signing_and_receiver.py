"""Deliveries verified by the standardwebhooks library, through the example receiver a user would run."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from standardwebhooks import Webhook

from inqueue.destinations import Deliverer, DeliveryFailed
from inqueue.errors import PermanentError
from tests.factories import make_envelope

from .conftest import ROOT, SECRET, App, config_for, load_receiver

pytestmark = pytest.mark.enable_socket

Make = Callable[..., Deliverer]
receiver_module = load_receiver()


@pytest.fixture
def receiver() -> Iterator[Any]:
    """The example receiver on a free port, serving in a thread; ``.url`` and ``.app`` for the test."""
    import threading

    app = receiver_module.Receiver(SECRET)
    server = app.serve("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    app.url = f"http://127.0.0.1:{server.server_address[1]}/inqueue"
    yield app
    server.shutdown()
    server.server_close()


def event(event_id: str = "0b5c3f8e-1d2a-5e6f-9a0b-c1d2e3f4a5b6", **fields: Any) -> Any:
    return make_envelope(event_id, **{"source": "bitrix24", "type": "ONCRMDEALADD", "body": {"ID": "42"}, **fields})


def test_the_standardwebhooks_library_verifies_a_delivery_byte_for_byte(app: App, deliverer: Make) -> None:
    deliverer(config_for(f"http://127.0.0.1:{app.port}/")).deliver(event())
    [seen] = app.seen
    payload = Webhook(SECRET).verify(seen.body, seen.headers)
    assert payload["id"] == event().id
    assert payload["data"] == {"ID": "42"}
    # and a single changed byte fails it
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(SECRET).verify(seen.body.replace(b"42", b"43"), seen.headers)


def test_a_retry_carries_the_same_webhook_id_and_body_with_a_fresh_signature(app: App, deliverer: Make) -> None:
    clock = [1_795_435_200.0]
    make = deliverer(config_for(f"http://127.0.0.1:{app.port}/"), clock=lambda: clock[0])
    make.deliver(event(), attempt=1)
    clock[0] += 60
    make.deliver(event(), attempt=2)
    first, second = app.seen
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event().id
    assert first.body == second.body
    assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 60
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]


def test_during_a_rotation_both_the_old_and_the_new_secret_verify(app: App, deliverer: Make, secrets: Any) -> None:
    new = "whsec_" + base64.b64encode(b"the new key after the rotation!!").decode()
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/inqueue/destinations/rotating", Value=json.dumps([new, SECRET]), Type="SecureString"
    )
    config = config_for(f"http://127.0.0.1:{app.port}/")
    config["destinations"]["app"]["secret"] = "ssm:/inqueue/destinations/rotating"
    deliverer(config).deliver(event())
    [seen] = app.seen
    Webhook(SECRET).verify(seen.body, seen.headers)
    Webhook(new).verify(seen.body, seen.headers)


def test_the_receiver_verifies_processes_once_and_answers_json_that_becomes_the_result(
    receiver: Any, deliverer: Make
) -> None:
    make = deliverer(config_for(receiver.url))

    # WHEN an event is delivered, then delivered again (a retry after a lost answer)
    first = make.deliver(event())
    again = make.deliver(event())

    # THEN the receiver's JSON answer is the event's result, and the repeat is recognised, not processed
    assert first.result == {
        "received": event().id,
        "source": "bitrix24",
        "type": "ONCRMDEALADD",
        "tries": 1,
        "duplicate": False,
    }
    assert again.result == {**first.result, "duplicate": True}
    assert [delivery.status for delivery in receiver.deliveries] == [200, 200]


def test_the_receiver_refuses_a_bad_signature_with_401(receiver: Any) -> None:
    body = b'{"id": "x"}'
    headers = {"webhook-id": "x", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,AAAA"}
    port = int(receiver.url.split(":")[2].split("/")[0])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("POST", "/inqueue", body=body, headers={**headers, "content-type": "application/json"})
    answer = connection.getresponse()
    assert answer.status == 401
    assert json.loads(answer.read())["error"]["code"] == "bad_signature"
    connection.close()
    assert receiver.deliveries == []


def test_a_receiver_told_to_answer_500_is_retried_and_one_told_400_dead_letters(receiver: Any, deliverer: Make) -> None:
    make = deliverer(config_for(receiver.url))
    receiver.answer_status = 500
    with pytest.raises(DeliveryFailed, match=r"answered 500.*try_again"):
        make.deliver(event())
    receiver.answer_status = 400
    with pytest.raises(PermanentError, match=r"answered 400.*rejected"):
        make.deliver(event())


def test_a_receiver_failing_first_succeeds_on_a_later_try(receiver: Any, deliverer: Make) -> None:
    receiver.fail_first = 2
    make = deliverer(config_for(receiver.url))
    for _ in range(2):
        with pytest.raises(DeliveryFailed):
            make.deliver(event())
    assert make.deliver(event()).result["tries"] == 3


def test_the_receiver_verifies_a_result_callback_too(receiver: Any, deliverer: Make) -> None:
    config = config_for(receiver.url)
    config["callbacks"] = {"bitrix24": "app"}
    delivered = deliverer(config).notify(
        event_id="e-1",
        source="bitrix24",
        event_type="ONCRMDEALADD",
        status="succeeded",
        attempts=2,
        finished_at="2026-11-23T12:00:05.000Z",
        result={"deal": 42},
    )
    assert delivered is not None
    [callback] = receiver.deliveries
    assert callback.webhook_id == "e-1.succeeded.2"
    assert callback.payload["type"] == "inqueue.event.succeeded"
    assert callback.payload["data"]["result"] == {"deal": 42}
    assert (
        deliverer(config).notify(
            event_id="e-1", source="github", event_type="push", status="dead", attempts=1, reason="x"
        )
        is None
    )  # github has no callback


def test_the_receiver_runs_from_the_command_line_as_the_docs_say(deliverer: Make) -> None:
    process = subprocess.Popen(  # noqa: S603 - our own example, run as a user would
        [sys.executable, str(ROOT / "examples" / "receiver" / "receiver.py"), "--port", "0", "--secret", SECRET],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("receiver: listening on http://127.0.0.1:")
        url = line.split()[-1]
        delivered = deliverer(config_for(url)).deliver(event())
        assert delivered.result["received"] == event().id  # type: ignore[index]
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()


def test_the_receiver_on_a_port_in_use_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a port something already listens on (another receiver, say)
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        # WHEN the receiver is started on it
        status = load_receiver().main(["--port", str(port), "--secret", SECRET])
    finally:
        taken.close()

    # THEN it exits 1 with one line naming the port and what to do, no traceback
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1
    assert f"port {port} on 127.0.0.1" in err
    assert "RECEIVER_PORT" in err
