"""``make run FORWARD_TO=...``: the destination it configures, and loopback allowed for the worker alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inqueue.destinations import ALLOW_LOOPBACK_ENV, parse_config
from inqueue_local.forward import LOCAL_SECRET_REF, LocalDestinations, forward_config, forward_to, local_secret
from inqueue_local.template import Template, TemplateError

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"


def test_forwarding_routes_every_source_without_processors_to_one_signed_local_destination() -> None:
    # GIVEN the project's template, forwarded to an app on this machine
    template = Template.load(TEMPLATE)
    forward_to(template, "http://127.0.0.1:9000/hooks", {})

    # THEN DestinationsConfig is one destination signed with the local secret, taking the catch-all route
    config = parse_config(template.parameters["DestinationsConfig"])
    local = config.destinations["local"]
    assert (local.url, local.secret) == ("http://127.0.0.1:9000/hooks", LOCAL_SECRET_REF)
    assert config.route("bitrix24", "ONCRMDEALADD", frozenset({"demo"})) is local
    assert config.route("demo", "order.created", frozenset({"demo"})) is None  # demo keeps its processors
    # AND its deliveries fit in the worker's timeout (2 x 10 s + 3 s in WorkerTimeout's 30 s)
    assert local.timeout == 10


@pytest.mark.parametrize(("worker_timeout", "timeout"), [(30, 10), (5, 1.0), (900, 10)])
def test_the_local_destinations_timeout_fits_the_workers(worker_timeout: int, timeout: float) -> None:
    config = json.loads(forward_config("http://127.0.0.1:9000/", worker_timeout))
    assert config["destinations"]["local"]["timeout"] == timeout


def test_forwarding_and_a_destinations_config_of_ones_own_are_not_mixed() -> None:
    overrides = {"DestinationsConfig": "{}"}
    template = Template.load(TEMPLATE, overrides)
    with pytest.raises(TemplateError, match="FORWARD_TO and PARAMS' DestinationsConfig are both set"):
        forward_to(template, "http://127.0.0.1:9000/", overrides)


def test_a_forward_url_that_is_not_http_is_refused_with_the_reason() -> None:
    with pytest.raises(TemplateError, match=r"FORWARD_TO=ftp://127.0.0.1/: .*http:// or https://"):
        forward_to(Template.load(TEMPLATE), "ftp://127.0.0.1/", {})


def test_loopback_is_allowed_for_the_function_that_delivers_and_no_other() -> None:
    template = Template.load(TEMPLATE)
    service = LocalDestinations(template)
    assert service.environment() == {"WorkerFunction": {ALLOW_LOOPBACK_ENV: "true"}}
    # AND the template itself never allows it (in Lambda, 127.0.0.1 is the runtime API)
    for spec in template.functions().values():
        assert ALLOW_LOOPBACK_ENV not in spec.environment


def test_a_route_to_a_source_the_template_does_not_have_is_refused_before_anything_starts() -> None:
    config = {
        "destinations": {"shop": {"url": "http://127.0.0.1:9000/", "secret": LOCAL_SECRET_REF}},
        "routes": {"bitrx24": "shop"},
    }
    template = Template.load(TEMPLATE, {"DestinationsConfig": json.dumps(config)})
    with pytest.raises(TemplateError, match=r"DestinationsConfig: routes: source 'bitrx24' is not configured"):
        LocalDestinations(template)


def test_the_receivers_secret_is_the_local_one_else_the_examples(tmp_path: Path) -> None:
    example = json.loads((ROOT / "config" / "secrets.example.json").read_text())
    (tmp_path / "secrets.example.json").write_text(json.dumps(example))
    (tmp_path / "secrets.local.json").write_text(json.dumps({"ssm:/inqueue/demo": "x"}))  # an older copy
    assert local_secret(tmp_path) == example[LOCAL_SECRET_REF]
    (tmp_path / "secrets.local.json").write_text(json.dumps({LOCAL_SECRET_REF: "whsec_bWluZQ=="}))
    assert local_secret(tmp_path) == "whsec_bWluZQ=="
