"""The console's pages and actions through Flask's test client (no socket), and who may use them."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from inqueue_ops.console.server import ConsoleServer
from inqueue_ops.console.web import CSP, TOKEN_HEADER, create_app
from tests.console.conftest import Stack, envelope

HOST = "127.0.0.1:3901"
TOKEN = "t0ken-for-this-run"


@pytest.fixture
def web(stack: Stack) -> FlaskClient:
    app = create_app(stack.console, token=TOKEN, clock=stack.clock)
    app.config["INQUEUE_HOSTS"] = {HOST, "localhost:3901"}
    return app.test_client()


def post(web: FlaskClient, path: str, body: Any = None, **headers: str) -> Any:
    sent = {TOKEN_HEADER: TOKEN, "Origin": f"http://{HOST}", "Sec-Fetch-Site": "same-origin", **headers}
    sent = {name: value for name, value in sent.items() if value}
    return web.post(path, json=body if body is not None else {}, headers=sent, base_url=f"http://{HOST}")


def get(web: FlaskClient, path: str, host: str = HOST) -> Any:
    return web.get(path, base_url=f"http://{host}")


def test_the_pages_render_what_the_data_layer_reads(stack: Stack, web: FlaskClient) -> None:
    # GIVEN an event in the DLQ and one that succeeded
    stack.kill(envelope(2, at="2026-11-23T11:01:00.000Z"))
    stack.accept(envelope(1, at="2026-11-23T11:00:00.000Z"))
    stack.store.succeeded("evt-001", {"invoice": "INV-1"})

    # WHEN each view is asked for / THEN it shows them, with the run's token for its buttons
    events = get(web, "/events").get_data(as_text=True)
    assert events.index("evt-002") < events.index("evt-001"), "newest first"
    assert 'class="status succeeded"' in events
    assert 'class="status dead"' in events
    assert f'<meta name="inqueue-token" content="{TOKEN}">' in events
    event = get(web, "/events/evt-001").get_data(as_text=True)
    assert "succeeded" in event
    assert "INV-1" in event
    assert "from the envelope archive" in event
    assert "evt-002" in get(web, "/dead-letters").get_data(as_text=True)
    assert 'data-queue="dead letters" data-total="1"' in get(web, "/queues").get_data(as_text=True)
    # AND the live regions' fragments are the same rows without the page around them
    rows = get(web, "/events?fragment=rows").get_data(as_text=True)
    assert "evt-001" in rows
    assert "<html" not in rows


def test_a_dead_job_links_to_its_event(stack: Stack, web: FlaskClient) -> None:
    stack.sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody="{}",
        MessageAttributes={
            "inqueue_job": {"DataType": "String", "StringValue": "callback"},
            "callback_for": {"DataType": "String", "StringValue": "evt-010"},
        },
    )
    stack.kill()
    page = get(web, "/dead-letters").get_data(as_text=True)
    assert 'callback job for <a href="/events/evt-010">evt-010</a>' in page


def test_find_goes_to_the_event_or_says_there_is_none(stack: Stack, web: FlaskClient) -> None:
    stack.accept(envelope(3))
    assert get(web, "/find?id=evt-003").headers["Location"].endswith("/events/evt-003")
    missing = get(web, "/find?id=nope")
    assert missing.status_code == 404
    assert "no event with id &#39;nope&#39;" in missing.get_data(as_text=True)


def test_every_answer_forbids_framing_inline_script_and_caching(web: FlaskClient) -> None:
    answer = get(web, "/queues")
    assert answer.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP
    assert "frame-ancestors 'none'" in CSP
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("host", ["evil.example:3901", "127.0.0.1:9999", "192.168.1.5:3901"])
def test_a_request_naming_another_host_is_refused(web: FlaskClient, host: str) -> None:
    # GIVEN a page elsewhere that rebinds its name to 127.0.0.1 / WHEN its request arrives / THEN refused
    answer = get(web, "/events", host=host)
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "bad_host"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({TOKEN_HEADER: ""}, "bad_token"),
        ({TOKEN_HEADER: "guessed"}, "bad_token"),
        ({"Origin": "http://evil.example"}, "bad_origin"),
        ({"Sec-Fetch-Site": "cross-site"}, "bad_origin"),
    ],
)
def test_a_state_change_without_this_runs_token_from_this_origin_is_refused(
    stack: Stack, web: FlaskClient, headers: dict[str, str], code: str
) -> None:
    # GIVEN a dead letter
    stack.kill(envelope(4))

    # WHEN a redrive arrives without the token, or from another origin
    answer = post(web, "/api/dead-letters/redrive", {"all": True}, **headers)

    # THEN it is refused and nothing moved
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == code
    assert stack.console.queues()[1].total == 1


def test_a_form_post_cannot_change_state(web: FlaskClient) -> None:
    # A cross-site HTML form can send only form bodies: the console takes JSON alone.
    answer = web.post(
        "/api/dead-letters/purge",
        data={"all": "true", "confirm": "purge"},
        headers={TOKEN_HEADER: TOKEN},
        base_url=f"http://{HOST}",
    )
    assert answer.status_code == 415


def test_state_changes_are_posts_only(web: FlaskClient) -> None:
    answer = get(web, "/api/dead-letters/redrive")
    assert answer.status_code == 405
    assert answer.get_json()["error"]["code"] == "method_not_allowed"


def test_purge_needs_its_confirmation(stack: Stack, web: FlaskClient) -> None:
    stack.kill(envelope(5))
    refused = post(web, "/api/dead-letters/purge", {"all": True})
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (400, "not_confirmed")
    assert stack.console.queues()[1].total == 1
    stack.clock.now = time.time()  # the purge takes what SQS received before it began
    started = post(web, "/api/dead-letters/purge", {"all": True, "confirm": "purge"})
    assert started.status_code == 202
    assert follow(web, started.get_json()["id"])["summary"] == "deleted 1, failed 0"


def follow(web: FlaskClient, job_id: str) -> dict[str, Any]:
    for _ in range(200):
        job = get(web, f"/api/jobs/{job_id}").get_json()
        if job["state"] != "running":
            return dict(job)
        time.sleep(0.02)
    raise AssertionError("the job did not end")


def test_redrive_of_chosen_ids_runs_as_a_job_with_a_count(stack: Stack, web: FlaskClient) -> None:
    stack.kill(envelope(6), envelope(7))
    started = post(web, "/api/dead-letters/redrive", {"ids": ["evt-007"]})
    assert started.status_code == 202
    job = follow(web, started.get_json()["id"])
    assert (job["state"], job["summary"], job["outcome"]["ids"][0]["id"]) == ("done", "moved 1, failed 0", "evt-007")
    assert post(web, "/api/dead-letters/redrive", {"ids": []}).status_code == 400


def test_replay_answers_the_outcome_and_refuses_what_cannot_be_replayed(stack: Stack, web: FlaskClient) -> None:
    stack.accept(envelope(8))
    stack.store.succeeded("evt-008", None)
    answer = post(web, "/api/events/evt-008/replay", {"bypass_idempotency": True})
    assert answer.status_code == 200
    assert answer.get_json()["summary"] == "replayed 1, failed 0"
    assert "bypassing idempotency: the processor runs again" in answer.get_json()["notes"]
    unknown = post(web, "/api/events/nope/replay")
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (409, "not_replayable")


def test_the_event_api_gives_the_record_and_its_timeline(stack: Stack, web: FlaskClient) -> None:
    stack.accept(envelope(9))
    answer = get(web, "/api/events/evt-009").get_json()
    assert answer["record"]["status"] == "queued"
    assert [step["title"] for step in answer["timeline"]] == ["received"]
    assert get(web, "/api/events/nope").status_code == 404
    assert json.loads(get(web, "/api/queues").get_data())[0]["name"] == "events"


def test_the_server_listens_on_loopback_only(stack: Stack) -> None:
    # GIVEN a console asked to listen on every interface / THEN it refuses, before binding anything
    with pytest.raises(ValueError, match=r"127\.0\.0\.1 only"):
        ConsoleServer(stack.console, 0, host="0.0.0.0")  # noqa: S104 - what it must refuse


@pytest.mark.enable_socket
def test_a_served_console_is_bound_to_loopback_and_knows_its_own_host(stack: Stack) -> None:
    server = ConsoleServer(stack.console, 0)
    try:
        assert server.server.server_address[0] == "127.0.0.1"
        assert server.app.config["INQUEUE_HOSTS"] == {f"127.0.0.1:{server.port}", f"localhost:{server.port}"}
        assert server.url == f"http://127.0.0.1:{server.port}"
    finally:
        server.server.server_close()


@pytest.mark.enable_socket
def test_a_busy_port_is_one_line_not_an_exit(stack: Stack) -> None:
    from inqueue_ops.dlq import DlqError

    first = ConsoleServer(stack.console, 0)
    try:
        with pytest.raises(DlqError, match=rf"port {first.port} on 127\.0\.0\.1 is in use"):
            ConsoleServer(stack.console, first.port)
    finally:
        first.server.server_close()


@pytest.mark.enable_socket
def test_inqueue_console_says_where_it_serves(stack: Stack) -> None:
    import io

    import boto3

    from inqueue_ops import cli

    out = io.StringIO()
    ui = cli.Ui(out, io.StringIO(), terminal=False)
    targets = stack.console.targets
    code = cli.serve_console(
        targets, lambda service, _t: boto3.client(service, region_name="us-east-1"), 0, ui, forever=False
    )
    assert code == 0
    line = out.getvalue().strip()
    assert line.startswith("console: http://127.0.0.1:")
    assert line.endswith(f"-> {targets.queue_url}; Ctrl-C to stop")
