"""Secret values (lists, per-portal maps), config errors, and rejections logged without secrets or bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.senders import compact, github_signature

from inqueue.secrets import SecretError, SecretStore, parse_keyed_secret_value, parse_secret_value
from inqueue.sources import ConfigError, KindDeps, Sources, parse_config

Send = Callable[..., dict[str, Any]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("token", ("token",)),
        ('["new", "old"]', ("new", "old")),
        ('{"m1": "t1", "x.bitrix24.com": ["t2", "t3"]}', {"m1": ("t1",), "x.bitrix24.com": ("t2", "t3")}),
    ],
)
def test_keyed_secret_values(value: str, expected: Any) -> None:
    assert parse_keyed_secret_value(value) == expected


@pytest.mark.parametrize("value", ["{}", '{"m1": ""}', '{"m1": []}', '{"": "t"}', '{"m1": 5}', "{not json", "[]", " "])
def test_malformed_keyed_secret_values_are_refused(value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by mistake
        parse_keyed_secret_value(value)


def test_plain_get_keeps_a_json_object_as_one_secret() -> None:
    assert parse_secret_value('{"a": 1}') == ('{"a": 1}',)


def test_get_keyed_loads_a_map_from_ssm_and_a_broken_one_is_503(ssm: Any) -> None:
    ssm.put_parameter(Name="/inqueue/portals", Value='{"m1": ["t1"]}', Type="SecureString")
    ssm.put_parameter(Name="/inqueue/broken", Value='{"m1": 7}', Type="SecureString")
    store = SecretStore(ssm_client=ssm)

    assert store.get_keyed("ssm:/inqueue/portals") == {"m1": ("t1",)}
    with pytest.raises(SecretError) as error:
        store.get_keyed("ssm:/inqueue/broken")
    assert error.value.status == 503
    assert "t1" not in error.value.message


@pytest.mark.parametrize(
    "sources",
    [
        {"s": {"kind": "stripe"}},
        {"s": {"kind": "github", "secret": "plaintext-not-a-reference"}},
        {"s": {"kind": "slack", "secret": "ssm:/x", "tolerence": 60}},
        {"s": {"kind": "bitrix24", "secret": "ssm:/x", "max_age": -1}},
    ],
)
def test_misconfigured_sources_fail_validation_with_the_source_name(sources: dict[str, Any]) -> None:
    built = Sources(parse_config(json.dumps(sources)), KindDeps(secrets=SecretStore(), clock=lambda: 0.0))

    with pytest.raises(ConfigError, match="'s'"):
        built.validate()


def test_sample_configuration_validates(senders_env: dict[str, str]) -> None:
    Sources(parse_config(senders_env["INQUEUE_SOURCES"]), KindDeps(secrets=SecretStore(), clock=lambda: 0.0)).validate()


def test_a_kind_is_imported_only_when_its_source_is_used() -> None:
    # GIVEN a fresh interpreter with the ingress loaded and the sample configuration
    import subprocess
    import sys

    code = (
        "import sys, json; from inqueue.sources import Sources, KindDeps, parse_config;"
        "from inqueue.secrets import SecretStore;"
        "s = Sources(parse_config(json.dumps({'gh': {'kind': 'github', 'secret': 'ssm:/x'},"
        "'st': {'kind': 'stripe', 'secret': 'ssm:/y'}})), KindDeps(SecretStore(), lambda: 0.0));"
        "s.verifier('gh');"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('inqueue.sources.'))))"
    )

    # WHEN only the GitHub source is used
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout  # noqa: S603

    # THEN only its module (and the shared signing helpers) were imported
    assert json.loads(out) == ["inqueue.sources.github", "inqueue.sources.signing"]


def test_a_rejection_is_logged_with_source_and_reason_but_no_secret_or_body(
    send: Send, caplog: pytest.LogCaptureFixture
) -> None:
    body = compact({"ref": "refs/heads/main", "note": "a-distinctive-body-marker"})
    headers = {"content-type": "application/json", "x-github-event": "push"}

    answer = send("github", body, {**headers, "x-hub-signature-256": github_signature(body, "attacker-guess")})

    assert answer["status"] == 401
    [line] = [record.__dict__ for record in caplog.records if record.getMessage() == "rejected"]
    assert (line["source"], line["code"], line["status"]) == ("github", "bad_signature", 401)
    logged = " ".join(str(record.__dict__) for record in caplog.records)
    for secret_or_body in ("local-github-secret", "attacker-guess", "a-distinctive-body-marker"):
        assert secret_or_body not in logged


def test_a_rotated_value_is_parsed_again_once_the_cache_hands_it_out(ssm: Any) -> None:
    # GIVEN a store without Powertools caching, so every get sees SSM's current value
    store = SecretStore(max_age=0, ssm_client=ssm)
    ssm.put_parameter(Name="/inqueue/rolling", Value="old", Type="SecureString")
    assert store.get("ssm:/inqueue/rolling") == ("old",)

    # WHEN the secret is rotated
    ssm.put_parameter(Name="/inqueue/rolling", Value='["new", "old"]', Type="SecureString", Overwrite=True)

    # THEN the new list is used, not the last parsed value
    assert store.get("ssm:/inqueue/rolling") == ("new", "old")
