"""The console in a real browser: Debian's chromium, driven by Playwright, against make run's own Runner.

The runner runs on free loopback ports with its console (``ConsoleService``, as ``make run`` starts
it) on moto's server, with a quick retry policy so that the failing demo event is dead in seconds.
Each test posts its own events over HTTP, as a sender would, and watches the page change by
itself: the page is never reloaded after the events are posted (a marker set on ``window``
survives). Each test saves a screenshot of its view; ``make screenshots`` saves them under
``docs/`` for the README (``INQUEUE_SCREENSHOTS=docs``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from inqueue_local import endpoints
from inqueue_local.backends import MotoServer
from inqueue_local.pipeline import Log
from inqueue_local.poller import EventSourceMapping
from inqueue_local.runner import Runner
from inqueue_local.template import Template
from inqueue_ops.console.server import ConsoleService

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"local-demo-secret"
FAILING_TYPE = "demo.always_fails"
VIEWPORT = {"width": 1100, "height": 640}
# What the lead checked works here with Debian's chromium (COORDINATION.md); no browser download.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 20_000  # what a page may take to show an event's end on a loaded 2-core machine


@dataclass
class Running:
    runner: Runner
    api: str
    console: str
    shots: Path


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # GIVEN make run with a quick failure path: two attempts, a backoff of at most a second
    state = tmp_path_factory.mktemp("local") / "endpoints.json"
    template = Template.load(
        ROOT / "infra" / "template.yaml",
        {
            "MaxReceiveCount": "2",
            "RetryBaseSeconds": "1",
            "QueueVisibilityTimeout": "30",
            "WorkerTimeout": "5",
            "EnvelopeArchive": "true",  # as make run sets it
        },
    )
    console = ConsoleService(0)
    shots = ROOT / "docs" if os.environ.get("INQUEUE_SCREENSHOTS") == "docs" else tmp_path_factory.mktemp("shots")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(endpoints, "STATE_FILE", state)
        runner = Runner(
            template,
            MotoServer(),
            port=0,
            config_dir=ROOT / "config",
            log=Log(write=lambda _: None),
            services=[console],
        )
        api = runner.start()
        assert console.server is not None
        try:
            yield Running(runner, api, console.server.url, shots)
        finally:
            runner.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    assert chromium, "no chromium: `make test` installs Debian's (make browser), or set CHROMIUM=/path/to/it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"the page's script failed: {errors}"


def post(api: str, event_type: str, key: str) -> str:
    """What a sender does: a signed demo event over HTTP; the 202's event id."""
    body = json.dumps({"type": event_type, "id": key, "data": {"order_id": 1001, "total": "49.90"}}).encode()
    headers = {
        "content-type": "application/json",
        "x-signature": "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest(),
        "x-event-type": event_type,
        "idempotency-key": key,
    }
    request = urllib.request.Request(f"{api}/hooks/demo", data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
        assert answer.status == 202
        return str(json.loads(answer.read())["id"])


def mark(page: Any) -> None:
    """A marker only this page load has: it is gone if the page reloads."""
    page.evaluate("window.inqueueMarker = 'not reloaded'")


def not_reloaded(page: Any) -> bool:
    return bool(page.evaluate("window.inqueueMarker") == "not reloaded")


def shoot(running: Running, page: Any, name: str) -> None:
    path = running.shots / f"console-{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 5_000, f"{path} is blank"


def status_of(running: Running, event_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{running.console}/api/events/{event_id}", timeout=10) as answer:  # noqa: S310
        return dict(json.loads(answer.read()))


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_a_posted_event_appears_and_reaches_succeeded_without_a_reload(running: Running, page: Any) -> None:
    from playwright.sync_api import expect

    # GIVEN the console's events page, open
    page.goto(f"{running.console}/events")
    expect(page.locator("h1")).to_contain_text("Events")
    mark(page)

    # WHEN a sender posts the demo event
    event_id = post(running.api, "order.created", "console-e2e-ok")

    # THEN its row appears on the open page and reaches succeeded, with its attempt, without a reload
    row = page.locator(f'tr[data-event-id="{event_id}"]')
    expect(row).to_have_attribute("data-status", "succeeded", timeout=WAIT_MS)
    expect(row.locator("td").nth(4)).to_have_text("1")
    assert not_reloaded(page)

    # AND its page tells the timeline, the result and the envelope as it was queued
    row.locator("a").click()
    expect(page.locator("#event-status")).to_have_text("succeeded")
    expect(page.locator("ol.timeline li").first).to_contain_text("received")
    expect(page.locator("ol.timeline li").last).to_contain_text("succeeded on attempt 1")
    expect(page.locator("#event-result")).to_contain_text('"ok": true')
    expect(page.locator("pre.body")).to_contain_text('"order_id": 1001')
    expect(page.locator("section h2", has_text="Envelope")).to_contain_text("from the envelope archive")


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_a_failing_event_shows_each_attempt_and_its_error(running: Running, page: Any) -> None:
    from playwright.sync_api import expect

    # GIVEN the page of an event that always fails, opened as soon as it is accepted
    event_id = post(running.api, FAILING_TYPE, "console-e2e-fail")
    page.goto(f"{running.console}/events/{event_id}")
    mark(page)

    # WHEN the worker tries it twice (MaxReceiveCount=2) / THEN the page follows it to dead by itself
    expect(page.locator("#event-status")).to_have_text("dead", timeout=WAIT_MS)
    assert not_reloaded(page)
    first = page.locator('ol.timeline li[data-status="retrying"][data-attempt="1"]')
    expect(first).to_contain_text("attempt 1 failed; retrying after")
    expect(first.locator(".error")).to_contain_text("RuntimeError: demo processor for demo.always_fails always fails")
    last = page.locator('ol.timeline li[data-status="dead"]')
    expect(last).to_contain_text("dead: given up after attempt 2")
    expect(last).to_contain_text("failed 2 times (maxReceiveCount 2)")
    expect(page.locator("#event-attempt")).to_have_text("2")
    expect(page.locator("dd.error").first).to_contain_text("always fails")
    shoot(running, page, "event")


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_redrive_from_the_page_moves_a_dead_letter_back(running: Running, page: Any) -> None:
    from playwright.sync_api import expect

    # GIVEN a dead letter, listed on the dead-letters page
    event_id = post(running.api, FAILING_TYPE, "console-e2e-redrive")
    page.goto(f"{running.console}/dead-letters")
    mark(page)
    row = page.locator(f'#dead tr[data-event-id="{event_id}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)  # listed again by itself when the DLQ's count changes
    expect(row.locator("td.error")).to_contain_text("failed 2 times (maxReceiveCount 2)")
    expect(row.locator("td").nth(4)).to_have_text("2")
    shoot(running, page, "dead-letters")

    # WHEN the operator selects it and redrives it
    row.locator("input[name=chosen]").check()
    page.get_by_role("button", name="Redrive selected").click()

    # THEN the page shows the job's count, and the event went back to the queue (status reset by the redrive)
    expect(page.locator(".job output")).to_have_text("moved 1, failed 0", timeout=WAIT_MS)
    assert not_reloaded(page)
    history = status_of(running, event_id)["record"]["history"]
    assert any(entry.get("reason") == "redriven" for entry in history), history


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_the_list_shows_each_outcome_and_filters_by_status(running: Running, page: Any) -> None:
    from playwright.sync_api import expect

    # GIVEN the events page, and an event that succeeds and one that dies posted meanwhile
    page.goto(f"{running.console}/events")
    ok = post(running.api, "order.created", "console-e2e-list-ok")
    dead = post(running.api, FAILING_TYPE, "console-e2e-list-dead")

    # WHEN both are done / THEN each row says how it ended, the dead one with its last error
    expect(page.locator(f'tr[data-event-id="{ok}"]')).to_have_attribute("data-status", "succeeded", timeout=WAIT_MS)
    dead_row = page.locator(f'tr[data-event-id="{dead}"]')
    expect(dead_row).to_have_attribute("data-status", "dead", timeout=WAIT_MS)
    expect(dead_row.locator("td.error")).to_contain_text("RuntimeError: demo processor")
    shoot(running, page, "events")

    # AND filtered by status, the list holds dead events only
    page.select_option("select[name=status]", "dead")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f'tr[data-event-id="{dead}"]')).to_be_visible()
    expect(page.locator(f'tr[data-event-id="{ok}"]')).to_have_count(0)
    statuses = page.locator("table.events tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert set(statuses) == {"dead"}, statuses


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_replay_of_a_succeeded_event_from_its_page(running: Running, page: Any) -> None:
    from playwright.sync_api import expect

    # GIVEN the page of an event that succeeded
    event_id = post(running.api, "order.created", "console-e2e-replay")
    page.goto(f"{running.console}/events/{event_id}")
    expect(page.locator("#event-status")).to_have_text("succeeded", timeout=WAIT_MS)

    # WHEN the operator replays it (its archived envelope, the same event id)
    page.get_by_role("button", name="Replay", exact=True).click()

    # THEN the page says it was queued again, and its timeline follows the delivery to a duplicate's end
    expect(page.locator("section.actions output")).to_contain_text("replayed 1, failed 0 (from the envelope archive)")
    expect(page.locator("ol.timeline")).to_contain_text("sent back to the queue by an operator")
    expect(page.locator("ol.timeline li").last).to_contain_text(
        "a duplicate, answered from the stored result", timeout=WAIT_MS
    )

    # AND replaying it to run the processor again asks first, then does it
    again = page.get_by_role("button", name="Replay, running the processor again")
    again.click()
    expect(page.locator("section.actions output")).to_contain_text("side effects happen twice")
    page.get_by_role("button", name="Click again to confirm").click()
    expect(page.locator("section.actions output")).to_contain_text("bypassing idempotency: the processor runs again")
    expect(page.locator("ol.timeline li").last).to_contain_text("succeeded on attempt 1", timeout=WAIT_MS)


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_purge_from_the_page_asks_first_then_deletes_for_good(running: Running, page: Any) -> None:
    from playwright.sync_api import expect

    # GIVEN a dead letter on the dead-letters page
    event_id = post(running.api, FAILING_TYPE, "console-e2e-purge")
    page.goto(f"{running.console}/dead-letters")
    row = page.locator(f'#dead tr[data-event-id="{event_id}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    row.locator("input[name=chosen]").check()

    # WHEN the operator asks to purge it, THEN nothing happens until the confirmation, which names what goes
    page.get_by_role("button", name="Purge…").click()
    expect(page.locator(".confirm")).to_contain_text("the 1 selected dead letter(s)")
    expect(row).to_be_visible()
    page.get_by_role("button", name="Yes, delete for good").click()

    # AND then it is deleted, counted, and gone from the list by itself
    expect(page.locator(".job output")).to_have_text("deleted 1, failed 0", timeout=WAIT_MS)
    expect(row).to_have_count(0, timeout=WAIT_MS)


def pause_trigger(runner: Runner) -> list[Any]:
    """Stop the worker's pollers, as a disabled trigger would, so that what is posted stays in the queue."""
    for mapping in runner.mappings:
        mapping.close()
    return [source for source in runner.template.sqs_sources() if source.enabled]


def resume_trigger(runner: Runner, sources: list[Any]) -> None:
    assert runner.pipeline is not None
    pipeline = runner.pipeline
    runner.mappings = []
    for source in sources:
        mapping = EventSourceMapping(
            lambda stop, s=source: pipeline.make_poller(s, stop), pipeline.poller_count(source)
        )
        mapping.start()
        runner.mappings.append(mapping)


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_a_burst_shows_in_the_queue_counts_within_seconds_without_a_reload(running: Running, page: Any) -> None:
    from playwright.sync_api import expect

    # GIVEN the queues page open, the events queue idle (what other tests posted is done), the trigger stopped
    page.goto(f"{running.console}/queues")
    mark(page)
    events = page.locator('tr[data-queue="events"]')
    visible = events.locator('td[data-count="visible"]')
    expect(events).to_have_attribute("data-total", "0", timeout=WAIT_MS)
    sources = pause_trigger(running.runner)
    try:
        # WHEN a burst of 12 is posted at once
        threads = [
            threading.Thread(target=post, args=(running.api, "order.created", f"console-e2e-burst-{n}"))
            for n in range(12)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # THEN the events queue shows them all within a couple of seconds, and their oldest age, by itself
        expect(visible).to_have_text("12", timeout=3_000)
        assert not_reloaded(page)
        oldest = page.locator('tr[data-queue="events"] td').nth(4)
        expect(oldest).not_to_have_text("—")
        expect(page.locator('tr[data-queue="events"] td.meta')).to_have_text("moto's queue model (make run)")
        shoot(running, page, "queues")
    finally:
        resume_trigger(running.runner, sources)
    # AND once the trigger runs again they are taken, and the page says so
    expect(events).to_have_attribute("data-total", "0", timeout=WAIT_MS)
