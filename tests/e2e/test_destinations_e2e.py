"""``make run FORWARD_TO=...`` end to end: the runner, its worker process, and the example receiver, on loopback.

A Bitrix24 event posted to the runner is delivered to ``examples/receiver/receiver.py``
(which verifies it with the ``standardwebhooks`` library), and the receiver's answer is
the event's result from ``GET /events/{id}?wait=10``; a receiver answering 500 sees
retries with backoff, one answering 400 gets the event dead-lettered with the reason.
Every socket is 127.0.0.1 on a free port.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from inqueue_local.backends import MotoServer
from inqueue_local.forward import LOCAL_SECRET_REF, LocalDestinations, forward_to, local_secret
from inqueue_local.pipeline import Log
from inqueue_local.runner import Runner
from inqueue_local.template import Template
from tests.destinations.conftest import load_receiver

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = [pytest.mark.e2e, pytest.mark.enable_socket]


@dataclass
class Forwarding:
    url: str
    receiver: Any
    runner: Runner
    lines: list[str]

    def post_bitrix24_event(self) -> str:
        """The committed Bitrix24 example (its token is the local one), with a fresh ``ts``: the event id."""
        example = json.loads((ROOT / "events" / "apigw-bitrix24-deal-add.json").read_text())
        body = re.sub(rb"ts=\d+", f"ts={int(time.time())}".encode(), base64.b64decode(example["body"]))
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}/hooks/bitrix24",
            data=body,
            headers={"content-type": "application/x-www-form-urlencoded", "user-agent": "Bitrix24 Webhook Engine"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            assert response.status == 202
            return str(json.loads(response.read())["id"])

    def status(self, event_id: str, wait: int = 10) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/events/{event_id}?wait={wait}", timeout=wait + 10) as response:  # noqa: S310
            return dict(json.loads(response.read()))


@contextmanager
def forwarding(answer: int | None = None, params: dict[str, str] | None = None) -> Iterator[Forwarding]:
    """``make receiver [ANSWER=...]`` and ``make run FORWARD_TO=<it> PARAMS=...``, on free ports."""
    receiver = load_receiver().Receiver(local_secret(ROOT / "config"), answer_status=answer)
    server = receiver.serve("127.0.0.1", 0)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    app_url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    overrides = params or {}
    template = Template.load(ROOT / "infra" / "template.yaml", overrides)
    forward_to(template, app_url, overrides)
    lines: list[str] = []
    runner = Runner(
        template,
        MotoServer(),
        port=0,
        config_dir=ROOT / "config",
        log=Log(write=lines.append),
        services=[LocalDestinations(template, forward_to=app_url, config_dir=ROOT / "config")],
        reload=False,
    )
    try:
        url = runner.start()
        yield Forwarding(url, receiver, runner, lines)
    finally:
        runner.stop()
        server.shutdown()
        server.server_close()


def test_a_bitrix24_event_is_delivered_verified_and_the_receivers_answer_comes_back() -> None:
    with forwarding() as forward:
        # WHEN a Bitrix24 event is posted
        event_id = forward.post_bitrix24_event()

        # THEN the caller gets the receiver's answer as the event's result
        record = forward.status(event_id)
        assert (record["status"], record["final"]) == ("succeeded", True), "\n".join(forward.lines[-30:])
        assert record["result"] == {
            "received": event_id, "source": "bitrix24", "type": "ONCRMDEALADD", "tries": 1, "duplicate": False,
        }  # fmt: skip
        # AND the receiver verified it (200 is its answer to a valid signature only) and got the form as JSON
        [delivery] = forward.receiver.deliveries
        assert delivery.status == 200
        assert delivery.payload["data"]["data"]["FIELDS"]["ID"] == "4021"
        assert "application_token" not in json.dumps(delivery.payload)  # the source's secret is not forwarded
        assert {k.lower(): v for k, v in delivery.headers.items()}["webhook-id"] == event_id
    ready = next(line for line in forward.lines if "ready:" in line)
    assert "forwarding every source without processors to http://127.0.0.1:" in ready
    assert LOCAL_SECRET_REF in ready


def test_a_receiver_answering_500_sees_retries_with_backoff_until_the_event_is_dead() -> None:
    params = {"RetryBaseSeconds": "1", "RetryMaxSeconds": "2", "MaxReceiveCount": "3",
              "QueueVisibilityTimeout": "30", "WorkerTimeout": "5"}  # fmt: skip
    with forwarding(answer=500, params=params) as forward:
        event_id = forward.post_bitrix24_event()

        record = forward.status(event_id, wait=20)

        assert (record["status"], record["attempt"]) == ("dead", 3), "\n".join(forward.lines[-30:])
        assert record["reason"] == "failed 3 times (maxReceiveCount 3)"
        assert "answered 500" in record["last_error"]
        retries = [entry for entry in record["history"] if entry["status"] == "retrying"]
        assert [entry["attempt"] for entry in retries] == [1, 2]
        assert all(entry["next_try_at"] >= entry["at"] for entry in retries)
        attempts = [
            {k.lower(): v for k, v in d.headers.items()}["inqueue-attempt"] for d in forward.receiver.deliveries
        ]
        assert attempts == ["1", "2", "3"]


def test_a_receiver_answering_400_gets_the_event_dead_lettered_with_the_reason() -> None:
    with forwarding(answer=400) as forward:
        event_id = forward.post_bitrix24_event()

        record = forward.status(event_id)

        assert (record["status"], record["attempt"]) == ("dead", 1), "\n".join(forward.lines[-30:])
        assert record["reason"].startswith("destination 'local' answered 400 Bad Request: ")
        assert "the receiver was told to answer 400" in record["reason"]
        assert len(forward.receiver.deliveries) == 1
