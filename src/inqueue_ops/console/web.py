"""The console's pages and actions (Flask): server-rendered HTML, live regions polled by a little JavaScript.

Security, for a tool that runs with the operator's credentials:

* it is served on 127.0.0.1 only (``server.py`` refuses any other address);
* every request must name this server in ``Host`` (127.0.0.1 or localhost, this port), so a
  page elsewhere cannot reach it through DNS rebinding;
* state changes (replay, redrive, purge) are POSTs of JSON carrying this run's token in
  ``X-Inqueue-Token``, from this origin (``Origin``, ``Sec-Fetch-Site`` when the browser sends
  them): another web page the operator has open can neither read the token (same-origin
  policy, no CORS) nor send such a request without it (JSON and a custom header need a
  preflight the server never allows);
* pages forbid framing and inline script (``Content-Security-Policy``), and nothing is cached.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from inqueue.status import STATUSES
from inqueue_ops.console.data import Console
from inqueue_ops.console.events import Cursor, Filters
from inqueue_ops.console.jobs import Busy
from inqueue_ops.dlq import DlqError, NotFoundError

TOKEN_HEADER = "X-Inqueue-Token"  # noqa: S105 - a header name
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def create_app(console: Console, *, token: str | None = None, clock: Callable[[], float] = time.time) -> Flask:
    app = Flask(__name__)
    app.config["INQUEUE_TOKEN"] = token or secrets.token_urlsafe(32)
    app.config["INQUEUE_HOSTS"] = set()  # "127.0.0.1:PORT", "localhost:PORT": set by the server once bound
    app.jinja_env.globals.update(age=age, when=when, short=short, pretty=pretty, statuses=STATUSES)
    app.jinja_env.autoescape = True

    @app.context_processor
    def common() -> dict[str, Any]:
        return {"console": console, "token": app.config["INQUEUE_TOKEN"], "now": clock()}

    _guard(app)
    _pages(app, console)
    _api(app, console)
    return app


def _guard(app: Flask) -> None:
    def hosts() -> set[str]:
        allowed: set[str] = app.config["INQUEUE_HOSTS"]
        return allowed

    @app.before_request
    def guard() -> Response | None:
        if request.host not in hosts():
            return error(403, "bad_host", "this console answers only to 127.0.0.1 or localhost on its own port")
        if request.method in ("GET", "HEAD"):
            return None
        origin = request.headers.get("Origin")
        foreign = origin is not None and origin.removeprefix("http://") not in hosts()
        if foreign or request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return error(403, "bad_origin", "state changes are accepted from this console's own pages only")
        given = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), str(app.config["INQUEUE_TOKEN"]).encode()):
            return error(403, "bad_token", f"missing or wrong {TOKEN_HEADER}: reload the console's page")
        if not request.is_json:
            return error(415, "unsupported_media_type", "send JSON (application/json)")
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = (exc.name or "error").lower().replace(" ", "_")
        if request.path.startswith("/api/"):
            return error(exc.code or 500, code, exc.description or code)
        return render_template("error.html", status=exc.code, message=exc.description), exc.code


def _filters() -> Filters:
    status = request.args.get("status")
    return Filters(
        source=request.args.get("source") or None,
        type=request.args.get("type") or None,
        status=status if status in STATUSES else None,
    )


def _pages(app: Flask, console: Console) -> None:
    @app.get("/")
    def home() -> Any:
        return redirect(url_for("events"))

    @app.get("/events")
    def events() -> Any:
        filters = _filters()
        before = Cursor.decode(request.args.get("before"))
        page = console.events(filters, before=before)
        args = {"filters": filters, "page": page, "before": before, "query": _query(filters)}
        if request.args.get("fragment") == "rows":
            return render_template("_event_rows.html", **args)
        return render_template("events.html", view="events", **args)

    @app.get("/find")
    def find() -> Any:
        wanted = (request.args.get("id") or "").strip()
        if wanted and console.record(wanted) is not None:
            return redirect(url_for("event", event_id=wanted))
        return render_template("error.html", view="events", status=404, message=f"no event with id {wanted!r}"), 404

    @app.get("/events/<event_id>")
    def event(event_id: str) -> Any:
        live = request.args.get("fragment") == "live"
        view = console.event(event_id, with_envelope=not live)
        if view is None:
            abort(404, f"no event with id {event_id!r}")
        if live:
            return render_template("_event_live.html", event=view)
        return render_template("event.html", view="events", event=view)

    @app.get("/queues")
    def queues() -> Any:
        stats = console.queues()
        if request.args.get("fragment") == "stats":
            return render_template("_queue_stats.html", stats=stats)
        return render_template("queues.html", view="queues", stats=stats)

    @app.get("/dead-letters")
    def dead_letters() -> Any:
        rows = console.dead_letters()
        if request.args.get("fragment") == "list":
            return render_template("_dead_list.html", rows=rows)
        return render_template("dead_letters.html", view="dead", rows=rows)


def _api(app: Flask, console: Console) -> None:
    @app.get("/api/queues")
    def api_queues() -> Any:
        return jsonify([stats.as_dict() for stats in console.queues()])

    @app.get("/api/events")
    def api_events() -> Any:
        page = console.events(_filters(), before=Cursor.decode(request.args.get("before")))
        return jsonify({"events": page.rows, "next": page.next.encode() if page.next else None})

    @app.get("/api/events/<event_id>")
    def api_event(event_id: str) -> Any:
        view = console.event(event_id, with_envelope=False)
        if view is None:
            return error(404, "unknown_event", f"no event with id {event_id!r}")
        return jsonify({"record": view.record, "timeline": [asdict(step) for step in view.timeline]})

    @app.post("/api/events/<event_id>/replay")
    def api_replay(event_id: str) -> Any:
        bypass = bool((request.get_json(silent=True) or {}).get("bypass_idempotency"))
        try:
            outcome = console.replay(event_id, bypass_idempotency=bypass)
        except NotFoundError as exc:
            return error(404, "not_replayable", str(exc))
        except DlqError as exc:
            return error(409, "not_replayable", str(exc))
        return jsonify({"summary": outcome.summary(), **outcome.as_dict()}), 200 if outcome.ok else 502

    @app.post("/api/dead-letters/redrive")
    def api_redrive() -> Any:
        chosen = _chosen()
        if isinstance(chosen, Response):
            return chosen
        return _job(lambda: console.redrive(chosen))

    @app.post("/api/dead-letters/purge")
    def api_purge() -> Any:
        chosen = _chosen()
        if isinstance(chosen, Response):
            return chosen
        if (request.get_json(silent=True) or {}).get("confirm") != "purge":
            return error(400, "not_confirmed", 'purge deletes dead letters for good: confirm with "confirm": "purge"')
        return _job(lambda: console.purge(chosen))

    @app.get("/api/jobs/<job_id>")
    def api_job(job_id: str) -> Any:
        job = console.jobs.get(job_id)
        if job is None:
            return error(404, "unknown_job", f"no job {job_id!r}")
        return jsonify(job.as_dict())


def _chosen() -> list[str] | Response | None:
    body = request.get_json(silent=True) or {}
    if body.get("all") is True:
        return None
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        return error(400, "bad_request", 'say which: {"ids": ["<event id>", ...]} or {"all": true}')
    return [str(i) for i in ids]


def _job(start: Callable[[], Any]) -> Any:
    try:
        job = start()
    except Busy as exc:
        return error(409, "busy", str(exc))
    return jsonify(job.as_dict()), 202


def error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _query(filters: Filters) -> dict[str, str]:
    return {k: v for k, v in (("source", filters.source), ("type", filters.type), ("status", filters.status)) if v}


# ---------------------------------------------------------------- display helpers (templates)


def age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.0f} d"


def when(stamp: Any) -> str:
    """An ISO time as the operator reads it: the time of day in UTC, with the date when it is not today."""
    if not isinstance(stamp, str) or len(stamp) < 19:
        return str(stamp or "")
    today = datetime.now(UTC).date().isoformat()
    return stamp[11:23] if stamp.startswith(today) else f"{stamp[:10]} {stamp[11:19]}"


def short(text: Any, size: int = 90) -> str:
    shown = "" if text is None else str(text)
    return shown if len(shown) <= size else shown[: size - 1] + "…"


def pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
