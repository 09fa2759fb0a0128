"""PARAMS is read as `sam deploy --parameter-overrides` reads it, and what SAM would drop is an error instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inqueue_local.overrides import OverrideError, parse

# Each string and what SAM CLI 1.x's own parser (samcli.cli.types.CfnParameterOverridesType) makes of it.
AS_SAM_READS_THEM = [
    ("MaxReceiveCount=2 QueueVisibilityTimeout=30", {"MaxReceiveCount": "2", "QueueVisibilityTimeout": "30"}),
    (
        """SourcesConfig='{"demo": {"kind": "generic"}}' MaxReceiveCount=2""",
        {"SourcesConfig": '{"demo": {"kind": "generic"}}', "MaxReceiveCount": "2"},
    ),
    ('SourcesConfig="{\\"a\\": 1}"', {"SourcesConfig": '{"a": 1}'}),
    ("ParameterKey=A,ParameterValue=1 ParameterKey=B,ParameterValue=x", {"A": "1", "B": "x"}),
    ("A=x\\ y", {"A": "x y"}),
    ("Empty='' B=1", {"Empty": "", "B": "1"}),
]


@pytest.mark.parametrize(("text", "expected"), AS_SAM_READS_THEM)
def test_overrides_mean_what_they_mean_to_sam_deploy(text: str, expected: dict[str, str]) -> None:
    assert parse(text) == expected


def test_words_split_by_a_shell_are_joined_back() -> None:
    assert parse(["MaxReceiveCount=2", "WorkerTimeout=5"]) == {"MaxReceiveCount": "2", "WorkerTimeout": "5"}


def test_unquoted_json_is_refused_with_how_to_quote_it() -> None:
    # GIVEN JSON with double quotes and no quotes around it (SAM would set SourcesConfig to "{" and drop the rest)
    text = 'SourcesConfig={"orders":{"kind":"generic","auth":"hmac","secret":"ssm:/inqueue/orders"}}'

    # THEN the error names what it could not read and shows the quoting that works for both
    with pytest.raises(OverrideError) as refused:
        parse(text)
    message = str(refused.value)
    assert "after SourcesConfig={" in message
    assert """PARAMS="SourcesConfig='{\\"demo\\": ...}'\"""" in message
    assert "\n" not in message


def test_text_without_name_value_pairs_is_refused() -> None:
    with pytest.raises(OverrideError, match="must look like Name=Value"):
        parse("MaxReceiveCount")


def test_a_params_file_holds_json_values_as_strings(tmp_path: Path) -> None:
    sources = json.dumps({"demo": {"kind": "generic", "auth": "hmac", "secret": "ssm:/inqueue/demo"}})
    (tmp_path / "params.json").write_text(json.dumps({"SourcesConfig": sources, "MaxReceiveCount": 2}))
    (tmp_path / "params.yaml").write_text("MaxReceiveCount: 3\nAlarmActionArn:\n")

    assert parse("file://params.json", base=tmp_path) == {"SourcesConfig": sources, "MaxReceiveCount": "2"}
    assert parse(f"file://{tmp_path / 'params.yaml'}") == {"MaxReceiveCount": "3", "AlarmActionArn": ""}


def test_a_params_file_with_an_object_value_says_to_write_it_as_a_string(tmp_path: Path) -> None:
    (tmp_path / "params.json").write_text(json.dumps({"SourcesConfig": {"demo": {"kind": "generic"}}}))

    with pytest.raises(OverrideError, match="SourcesConfig is an object; write it as a JSON string"):
        parse("file://params.json", base=tmp_path)


def test_a_missing_params_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(OverrideError, match="No such file"):
        parse("file://nope.json", base=tmp_path)
