"""Section 6: API Gateway HTTP API, payload format 2.0, driven through ``Gateway.handle`` (no sockets)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from inqueue_local.clock import FakeClock
from inqueue_local.pipeline import Pipeline
from tests.local import recorder
from tests.local.conftest import ROOT

MakePipeline = Callable[..., Pipeline]
# The gateway is the runner's own (no backend in it): moto only, except the row through SQS.
pytestmark = pytest.mark.backends("moto")


@pytest.fixture
def pipeline(make_pipeline: MakePipeline) -> Pipeline:
    return make_pipeline()


def _handle(
    pipeline: Pipeline, method: str, target: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None
):  # type: ignore[no-untyped-def]
    assert pipeline.gateway is not None
    default = [("host", "127.0.0.1:3000"), ("user-agent", "curl/8"), ("content-type", "application/json")]
    return pipeline.gateway.handle(method, target, headers or default, body)


def test_event_has_every_payload_2_0_field(pipeline: Pipeline, clock: FakeClock) -> None:
    # GIVEN a POST with a query string, repeated headers and cookies
    headers = [
        ("Host", "127.0.0.1:3000"),
        ("User-Agent", "curl/8"),
        ("X-Dup", "a"),
        ("x-dup", "b"),
        ("Cookie", "s=1; t=2"),
        ("Content-Type", "application/json"),
    ]

    # WHEN it goes through the gateway
    _handle(pipeline, "POST", "/hooks/demo?x=1&x=2&y=", b'{"return": {"ok": true}}', headers)

    # THEN the function got a 2.0 event built for this request
    event = recorder.calls[0]["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /hooks/{source}"
    assert event["rawPath"] == "/hooks/demo"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["pathParameters"] == {"source": "demo"}
    assert event["headers"]["x-dup"] == "a,b"
    assert all(name == name.lower() for name in event["headers"])
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["body"] == '{"return": {"ok": true}}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "$default"
    assert context["routeKey"] == "ANY /hooks/{source}"
    assert context["timeEpoch"] == int(clock.now() * 1000)
    assert context["http"] == {
        "method": "POST", "path": "/hooks/demo", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "curl/8",
    }  # fmt: skip
    assert {"accountId", "apiId", "domainName", "domainPrefix", "requestId", "time"} <= set(context)


def test_query_string_parameters_are_absent_when_there_is_no_query(pipeline: Pipeline) -> None:
    _handle(pipeline, "GET", "/events/abc")
    event = recorder.calls[0]["event"]
    assert event["rawQueryString"] == ""
    assert "queryStringParameters" not in event
    assert event["routeKey"] == "GET /events/{id}"
    assert event["pathParameters"] == {"id": "abc"}


def test_request_ids_and_times_are_made_per_request(pipeline: Pipeline, clock: FakeClock) -> None:
    _handle(pipeline, "POST", "/hooks/a", b"{}")
    clock.advance(1.5)
    _handle(pipeline, "POST", "/hooks/a", b"{}")
    first, second = (call["event"]["requestContext"] for call in recorder.calls)
    assert first["requestId"] != second["requestId"]
    assert second["timeEpoch"] - first["timeEpoch"] == 1500


def test_non_utf8_bodies_arrive_base64_encoded(pipeline: Pipeline) -> None:
    raw = b"\xff\xfe\x00binary"
    _handle(pipeline, "POST", "/hooks/demo", raw)
    event = recorder.calls[0]["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


@pytest.mark.parametrize(
    ("content_type", "as_text"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("Application/JSON", True),
        ("text/plain", True),
        ("text/csv; charset=utf-8", True),
        ("application/xml", True),
        ("application/javascript", True),
        ("application/x-www-form-urlencoded", False),
        ("application/vnd.api+json", False),
        ("application/octet-stream", False),
        ("multipart/form-data; boundary=x", False),
        (None, False),
    ],
)
def test_http_api_passes_text_only_for_text_json_xml_and_javascript(
    pipeline: Pipeline, content_type: str | None, as_text: bool
) -> None:
    # GIVEN a UTF-8 body posted with this content type (or none)
    body = "auth[application_token]=t&data[FIELDS][ID]=7&note=é".encode()
    headers = [("host", "127.0.0.1:3000")] + ([("content-type", content_type)] if content_type else [])

    # WHEN it goes through the gateway
    _handle(pipeline, "POST", "/hooks/demo", body, headers)

    # THEN it arrives as HTTP APIs deliver it: a string, or base64 of the exact bytes
    event = recorder.calls[0]["event"]
    assert event["isBase64Encoded"] is not as_text
    assert (event["body"].encode() if as_text else base64.b64decode(event["body"])) == body


def test_a_text_type_body_that_is_not_utf8_still_arrives_base64(pipeline: Pipeline) -> None:
    raw = "prix: 10 €".encode("cp1252")
    _handle(pipeline, "POST", "/hooks/demo", raw, [("content-type", "text/plain")])
    event = recorder.calls[0]["event"]
    assert (event["isBase64Encoded"], base64.b64decode(event["body"])) == (True, raw)


@pytest.mark.backends("moto", "localstack")
def test_a_bitrix24_form_is_verified_from_base64_as_on_aws(make_pipeline: MakePipeline) -> None:
    # GIVEN the committed Bitrix24 example (a form body) and the project's template
    pipeline = make_pipeline(ROOT / "infra" / "template.yaml", config_dir=_config(ROOT))
    example = json.loads((ROOT / "events" / "apigw-bitrix24-deal-add.json").read_text())
    raw = base64.b64decode(example["body"]) if example.get("isBase64Encoded") else example["body"].encode()
    # Bitrix24's ts is not signed (the token in the body is the proof): make it now, for the ingress's max_age.
    raw = re.sub(rb"ts=\d+", f"ts={int(time.time())}".encode(), raw)
    headers = [(k, v) for k, v in example["headers"].items() if k != "host"]

    # WHEN it is posted through the runner's gateway, which base64-encodes it as an HTTP API does
    response = _handle(pipeline, "POST", "/hooks/bitrix24", raw, headers)

    # THEN the ingress decodes, verifies and queues it
    assert response.status == 202, response.body
    assert response.json()["status"] == "queued"


def test_a_dict_with_status_code_is_the_response(pipeline: Pipeline) -> None:
    answer = {
        "statusCode": 202,
        "headers": {"Content-Type": "application/json"},
        "body": '{"id":"x"}',
        "cookies": ["a=1"],
    }
    response = _handle(pipeline, "POST", "/hooks/demo", json.dumps({"return": answer}).encode())
    assert response.status == 202
    assert response.body == b'{"id":"x"}'
    assert response.header("content-type") == "application/json"
    assert response.header("set-cookie") == "a=1"
    assert response.header("apigw-requestid")


@pytest.mark.parametrize("value", [{"ok": True}, ["a"], "text", 7, None])
def test_any_other_json_value_becomes_200_json(pipeline: Pipeline, value: object) -> None:
    response = _handle(pipeline, "POST", "/hooks/demo", json.dumps({"return": value}).encode())
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert json.loads(response.body) == value


def test_a_function_error_is_500_internal_server_error(pipeline: Pipeline) -> None:
    response = _handle(pipeline, "POST", "/hooks/demo", b'{"raise": true}')
    assert (response.status, response.body) == (500, b'{"message":"Internal Server Error"}')


def test_a_timeout_is_500(pipeline: Pipeline, clock: FakeClock) -> None:
    recorder.during_invocation = lambda: clock.advance(4)
    response = _handle(pipeline, "POST", "/hooks/demo", b'{"return": {"statusCode": 200}}')
    assert response.status == 500


def test_no_route_is_404_not_found(pipeline: Pipeline) -> None:
    response = _handle(pipeline, "POST", "/nope")
    assert (response.status, response.json()) == (404, {"message": "Not Found"})
    assert recorder.calls == []


@pytest.mark.backends("moto", "localstack")
def test_the_real_ingress_accepts_the_demo_event_and_the_worker_processes_it(make_pipeline: MakePipeline) -> None:
    # GIVEN the project's template and the committed example secrets
    pipeline = make_pipeline(ROOT / "infra" / "template.yaml", config_dir=_config(ROOT))
    example = json.loads((ROOT / "events" / "apigw-demo-json.json").read_text())
    headers = [(k, v) for k, v in example["headers"].items() if k != "host"]

    # WHEN the example is posted and the worker polls once
    response = _handle(pipeline, "POST", "/hooks/demo", example["body"].encode(), headers)
    result = pipeline.pollers["WorkerFunction.Queue"].poll_once()

    # THEN 202 with the event id, and the worker's batch deleted it
    assert response.status == 202
    assert response.json()["status"] == "queued"
    assert result is not None
    assert len(result.deleted) == 1
    assert json.loads(result.records[0]["body"])["id"] == response.json()["id"]


def test_each_function_sees_its_own_environment(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(ROOT / "infra" / "template.yaml", config_dir=_config(ROOT))
    ingress = pipeline.functions["IngressFunction"]
    worker = pipeline.functions["WorkerFunction"]
    ingress.warm_up()
    worker.warm_up()
    ingress_logger = ingress._idle[0].modules["inqueue.observability"].logger  # type: ignore[attr-defined]
    worker_logger = worker._idle[0].modules["inqueue.observability"].logger  # type: ignore[attr-defined]
    assert (ingress_logger.service, worker_logger.service) == ("inqueue-ingress", "inqueue-worker")
    # Only the ingress verifies senders, so only it is given the sources configuration.
    assert "INQUEUE_SOURCES" in ingress.environment
    assert "INQUEUE_SOURCES" not in worker.environment


def _config(root: Path) -> Path:
    return root / "config"
