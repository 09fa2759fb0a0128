"""Section 1: the runner reads every setting from the template and refuses what AWS refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inqueue_local.template import Template, TemplateError, load_yaml
from tests.local.conftest import ROOT, TEST_TEMPLATE

pytestmark = pytest.mark.backends("moto")  # the template's settings: no queue behaviour involved


def test_project_template_gives_the_worker_mapping_and_ingress_route() -> None:
    # GIVEN the project's own template
    template = Template.load(ROOT / "infra" / "template.yaml")

    # WHEN the runner reads it
    (source,) = template.sqs_sources()
    routes = template.http_routes()
    functions = template.functions()

    # THEN the settings are the template's, with parameter defaults applied
    assert source.function == "WorkerFunction"
    assert source.queue == "EventsQueue"
    assert source.batch_size == int(template.parameters["WorkerBatchSize"])
    assert source.report_batch_item_failures is True
    assert source.maximum_concurrency == int(template.parameters["WorkerMaxConcurrency"])
    assert [r.route_key for r in routes] == ["ANY /hooks/{source}", "GET /events/{id}"]
    assert functions["IngressFunction"].timeout == 5
    assert functions["WorkerFunction"].environment["POWERTOOLS_METRICS_NAMESPACE"] == "Inqueue"


def test_short_tags_become_intrinsics() -> None:
    loaded = load_yaml("a: !Ref X\nb: !GetAtt Q.Arn\nc: !Sub '${A}-x'\nd: !If [C, 1, 2]\n")
    assert loaded == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["Q", "Arn"]},
        "c": {"Fn::Sub": "${A}-x"},
        "d": {"Fn::If": ["C", 1, 2]},
    }


def test_overrides_are_checked_against_the_parameter_constraints() -> None:
    with pytest.raises(TemplateError, match="MaxValue"):
        Template.load(ROOT / "infra" / "template.yaml", {"WorkerMaxConcurrency": "5000"})
    with pytest.raises(TemplateError, match="undeclared"):
        Template.load(ROOT / "infra" / "template.yaml", {"Nope": "1"})


def test_samconfig_overrides_are_read_as_sam_reads_them(tmp_path: Path) -> None:
    # GIVEN samconfig.toml overrides with a quoted JSON value, written as sam deploy needs it
    sources = '{"orders": {"kind": "hmac", "secret": "ssm:/inqueue/orders"}}'
    config = tmp_path / "samconfig.toml"
    config.write_text(
        "[default.deploy.parameters]\n"
        f"parameter_overrides = {json.dumps(f'MaxReceiveCount=3 SourcesConfig={sources!r}')}\n",
        encoding="utf-8",
    )

    # WHEN the runner loads the template with it
    template = Template.load(ROOT / "infra" / "template.yaml", samconfig=config)

    # THEN the JSON arrives whole (shlex would have split it), beside the plain value
    assert json.loads(template.parameters["SourcesConfig"]) == json.loads(sources)
    assert template.parameters["MaxReceiveCount"] == "3"


def test_samconfig_overrides_sam_would_mangle_are_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text(
        "[default.deploy.parameters]\nparameter_overrides = 'SourcesConfig={\"a\": 1}'\n", encoding="utf-8"
    )

    with pytest.raises(TemplateError, match=r"samconfig.toml: parameter_overrides: .*quote"):
        Template.load(ROOT / "infra" / "template.yaml", samconfig=config)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"BatchSize": "11", "Window": "0"}, "must be >= 1 when BatchSize > 10"),
        ({"BatchSize": "10001", "Window": "1"}, "BatchSize must be 1..10000"),
        ({"Window": "301"}, "0..300"),
        ({"Concurrency": "1"}, "MaximumConcurrency must be 2..1000"),
    ],
)
def test_mapping_settings_aws_refuses_are_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        Template.load(TEST_TEMPLATE, overrides).sqs_sources()


def test_mapping_the_same_queue_twice_to_one_function_is_refused(tmp_path: Path) -> None:
    # GIVEN the Worker with a second SQS event on the same queue (CreateEventSourceMapping: ResourceConflictException)
    event = "          Type: SQS\n          Properties:\n            Queue: !GetAtt Queue.Arn\n"
    text = TEST_TEMPLATE.read_text().replace(
        f"      Events:\n        Queue:\n{event}", f"      Events:\n        Again:\n{event}        Queue:\n{event}", 1
    )
    assert "Again:" in text
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    # WHEN / THEN the runner refuses to start, naming both events
    with pytest.raises(TemplateError, match="Worker events Again and Queue both map queue Queue"):
        Template.load(path).sqs_sources()


def test_a_fifo_mapping_with_a_window_of_zero_is_accepted(tmp_path: Path) -> None:
    text = TEST_TEMPLATE.read_text().replace(
        "            BatchSize: 10\n            FunctionResponseTypes",
        "            BatchSize: 10\n            MaximumBatchingWindowInSeconds: 0\n            FunctionResponseTypes",
    )
    path = tmp_path / "fifo-window-0.yaml"
    path.write_text(text)
    fifo = next(s for s in Template.load(path).sqs_sources() if s.function == "FifoWorker")
    assert fifo.batching_window == 0


def test_the_project_template_runs_with_a_fifo_queue() -> None:
    # Its window is `!If [IsFifo, !Ref AWS::NoValue, ...]`: absent on FIFO, as AWS wants it.
    template = Template.load(ROOT / "infra" / "template.yaml", {"FifoQueue": "true"})
    (source,) = template.sqs_sources()
    assert (source.batching_window, source.batch_size) == (0, int(template.parameters["FifoWorkerBatchSize"]))


def test_fifo_mapping_rejects_a_window_and_large_batches(tmp_path: Path) -> None:
    text = TEST_TEMPLATE.read_text().replace(
        "            BatchSize: 10\n            FunctionResponseTypes",
        "            BatchSize: 11\n            FunctionResponseTypes",
    )
    path = tmp_path / "fifo.yaml"
    path.write_text(text)
    with pytest.raises(TemplateError, match="FIFO"):
        Template.load(path).sqs_sources()
    windowed = TEST_TEMPLATE.read_text().replace(
        "            BatchSize: 10\n            FunctionResponseTypes",
        "            BatchSize: 10\n            MaximumBatchingWindowInSeconds: 1\n            FunctionResponseTypes",
    )
    path.write_text(windowed)
    with pytest.raises(TemplateError, match="must be 0 for a FIFO queue, not 1"):
        Template.load(path).sqs_sources()


def test_defaults_apply_when_the_template_says_nothing() -> None:
    # GIVEN the filtered worker's event, which sets neither BatchSize nor window nor response types
    source = next(s for s in Template.load(TEST_TEMPLATE).sqs_sources() if s.function == "FilteredWorker")
    # THEN AWS's defaults
    assert (source.batch_size, source.batching_window, source.report_batch_item_failures, source.enabled) == (
        10,
        0,
        False,
        True,
    )
    assert source.maximum_concurrency is None


def test_visibility_below_function_timeout_is_refused_like_aws(make_pipeline) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TemplateError, match="AWS refuses this trigger"):
        make_pipeline(Visibility=10, Timeout=20)


def test_visibility_below_six_timeouts_is_a_warning(make_pipeline) -> None:  # type: ignore[no-untyped-def]
    pipeline = make_pipeline(Visibility=20, Timeout=5)
    assert any("6 x timeout" in w for w in pipeline.warnings)
