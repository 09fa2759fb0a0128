"""The fixes ``make run`` applies to moto's SQS keep moto's behaviour (they only make it cheaper)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from moto.core import utils as moto_utils
from moto.sqs import models as sqs_models

from inqueue_local import motoserver


def test_now_is_the_same_clock_as_motos() -> None:
    # GIVEN moto's own clock
    # WHEN the fixed one and moto's are read together
    before = moto_utils.unix_time()
    fixed, fixed_millis = motoserver.unix_time(), motoserver.unix_time_millis()
    after = moto_utils.unix_time()
    # THEN they agree (to moto's microsecond resolution)
    assert before - 1e-6 <= fixed <= after + 1e-6
    assert before * 1000 - 1e-3 <= fixed_millis <= after * 1000 + 1e-3


def test_a_given_datetime_converts_as_moto_does() -> None:
    # GIVEN a naive UTC datetime, as moto passes one
    moment = datetime.datetime(2026, 11, 23, 12, 0, 0, 123456)
    # WHEN / THEN
    assert motoserver.unix_time(moment) == moto_utils.unix_time(moment)
    assert motoserver.unix_time_millis(moment) == moto_utils.unix_time_millis(moment)


@pytest.mark.parametrize("age_seconds", [0, 59, 61, 3600])
def test_retention_check_answers_as_motos_own(aws: None, age_seconds: int) -> None:
    # GIVEN a queue keeping messages 60 s and a message sent age_seconds ago
    backend = sqs_models.sqs_backends["123456789012"]["us-east-1"]
    backend.create_queue("retained", MessageRetentionPeriod="60")
    message = backend.send_message("retained", "body")
    message.sent_timestamp = int(moto_utils.unix_time_millis()) - age_seconds * 1000
    # WHEN the fixed check and moto's are asked
    fixed = motoserver.is_message_valid_based_on_retention_period(backend, "retained", message)
    original = sqs_models.SQSBackend.is_message_valid_based_on_retention_period(backend, "retained", message)
    # THEN they agree: kept within the period, expired after it
    assert fixed == original == (age_seconds < 60)


def _fifo_group_after_visibility(aws: None, monkeypatch: pytest.MonkeyPatch, receive: Any) -> list[str]:
    """A FIFO group a: 1, 2 received together, not deleted; received again once its visibility ends."""
    now = [1_795_435_200.0]
    monkeypatch.setattr(sqs_models, "unix_time", lambda *_: now[0])
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda *_: now[0] * 1000)
    backend = sqs_models.sqs_backends["123456789012"]["us-east-1"]
    backend.create_queue("group.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    for body in ("1", "2"):
        backend.send_message("group.fifo", body, group_id="a", deduplication_id=body)
    first = receive(backend, "group.fifo", 10, 0, 30)
    assert [m.body for m in first] == ["1", "2"]
    now[0] += 31
    return [m.body for m in receive(backend, "group.fifo", 10, 0, 30)]


def test_the_fix_returns_a_fifo_group_in_order_once_its_visibility_ends(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _fifo_group_after_visibility(aws, monkeypatch, motoserver.keep_fifo_group_order) == ["1", "2"]


@pytest.mark.xfail(
    strict=True,
    reason="moto 5.2.5 returns the group from its 2nd message; when this passes, moto is fixed: "
    "drop motoserver.keep_fifo_group_order",
)
def test_motos_own_receive_returns_a_fifo_group_in_order(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _fifo_group_after_visibility(aws, monkeypatch, motoserver.MOTO_RECEIVE_MESSAGE) == ["1", "2"]


@pytest.mark.parametrize(
    "host",
    [
        None,
        "moto_api",
        "dynamodb",
        "dynamodb.us-east-1.amazonaws.com",
        "sqs.eu-west-1.amazonaws.com",
        "s3.amazonaws.com",
        "bucket.s3.amazonaws.com",
        "ssm.us-east-1.amazonaws.com",
        "nothing.example.test",
    ],
)
def test_the_backend_found_for_a_host_is_motos_own_every_time(host: str | None) -> None:
    # GIVEN moto's dispatcher
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    # WHEN the remembered lookup is asked twice / THEN it answers as moto's own, both times
    expected = motoserver.MOTO_GET_BACKEND_FOR_HOST(app, host)
    assert motoserver.get_backend_for_host(app, host) == expected
    assert motoserver.get_backend_for_host(app, host) == expected


def test_a_response_classs_methods_are_motos_own_list_every_time() -> None:
    from moto.dynamodb.responses import DynamoHandler
    from moto.s3.responses import S3Response
    from moto.sqs.responses import SQSResponse

    for response_class in (DynamoHandler, SQSResponse, S3Response):
        expected = motoserver.MOTO_METHOD_NAMES_FROM_CLASS(response_class)
        first = motoserver.method_names_from_class(response_class)
        first.append("changed by a caller")  # a caller's list is its own
        assert motoserver.method_names_from_class(response_class) == expected
        assert "update_item" in motoserver.method_names_from_class(DynamoHandler)
