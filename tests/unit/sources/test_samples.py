"""inqueue_local.samples.refresh: stale examples re-signed for now, checked by the senders' own libraries."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import stripe
from standardwebhooks import Webhook
from tests.factories import EVENTS, Clock, load_event
from tests.senders import EXAMPLE_TIME, SAMPLE_SECRETS, SOURCES, slack_is_valid

from inqueue.ingress import Ingress
from inqueue_local.samples import kinds_by_source, refresh, secrets_by_source

SECRETS = secrets_by_source(json.dumps(SOURCES), SAMPLE_SECRETS)
KINDS = kinds_by_source(json.dumps(SOURCES))
LATER = EXAMPLE_TIME + 3600
TIMESTAMPED = [
    "apigw-stripe-payment-intent-succeeded.json",
    "apigw-slack-app-mention.json",
    "apigw-slack-slash-command.json",
    "apigw-slack-url-verification.json",
    "apigw-standard-webhooks-invoice-paid.json",
]
BITRIX24 = "apigw-bitrix24-deal-add.json"


def body_of(event: dict[str, Any]) -> bytes:
    return base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()


def test_secrets_by_source_maps_names_to_their_secret_lists() -> None:
    assert SECRETS["github"] == ["local-github-secret", "local-github-secret-previous"]
    assert SECRETS["stripe"] == ["whsec_localStripeSigningSecret0123456789"]
    assert "bitrix24" not in SECRETS  # a per-portal map is not a list of secrets


def test_secrets_by_source_reads_a_list_stored_as_json_text_as_ssm_holds_it() -> None:
    sources = json.dumps({"hooks": {"kind": "standard-webhooks", "secret": "ssm:/x"}, "open": {"kind": "generic"}})

    assert secrets_by_source(sources, {"ssm:/x": '["new", "old"]'}) == {"hooks": ["new", "old"]}


@pytest.mark.parametrize("name", TIMESTAMPED)
def test_a_stale_timestamped_example_is_accepted_after_refresh(senders_env: dict[str, str], name: str) -> None:
    # GIVEN an ingress an hour after the examples were signed
    ingress = Ingress.from_environment(clock=Clock(LATER))
    stale = load_event(name)
    assert ingress.handle(stale)["statusCode"] == 401

    # WHEN the example is refreshed for that time
    fresh = refresh(stale, SECRETS, LATER)

    # THEN it is accepted, with the same body, and the original is untouched
    assert ingress.handle(fresh)["statusCode"] in (200, 202)
    assert fresh["body"] == stale["body"]
    assert stale == load_event(name)
    assert fresh["requestContext"]["timeEpoch"] == LATER * 1000


def test_a_stale_bitrix24_example_gets_a_fresh_ts_and_nothing_else_changes(senders_env: dict[str, str]) -> None:
    # GIVEN an ingress two days after the Bitrix24 example was sent (its max_age is one day)
    two_days_later = EXAMPLE_TIME + 2 * 86_400
    ingress = Ingress.from_environment(clock=Clock(two_days_later))
    stale = load_event(BITRIX24)
    answer = ingress.handle(stale)
    assert (answer["statusCode"], json.loads(answer["body"])["error"]["code"]) == (401, "stale_timestamp")

    # WHEN the example is refreshed for that time
    fresh = refresh(stale, SECRETS, two_days_later, KINDS)

    # THEN it is accepted, and its body differs from the original only in the ts field
    assert ingress.handle(fresh)["statusCode"] == 202
    old, new = body_of(stale), body_of(fresh)
    assert old.replace(b"&ts=1795435198&", f"&ts={two_days_later}&".encode()) == new
    assert fresh["headers"]["content-length"] == str(len(new))
    assert stale == load_event(BITRIX24)


@pytest.mark.parametrize(
    "name", sorted(p.name for p in EVENTS.glob("apigw-*.json") if p.name not in [*TIMESTAMPED, BITRIX24])
)
def test_other_examples_come_back_unchanged(name: str) -> None:
    assert refresh(load_event(name), SECRETS, LATER, KINDS) == load_event(name)


def test_refreshed_signatures_satisfy_the_senders_libraries() -> None:
    now = time.time()  # standardwebhooks checks against the real clock
    stripe_event = refresh(load_event(TIMESTAMPED[0]), SECRETS, now)
    slack_event = refresh(load_event(TIMESTAMPED[1]), SECRETS, now)
    webhook_event = refresh(load_event(TIMESTAMPED[4]), SECRETS, now)

    assert stripe.WebhookSignature.verify_header(
        body_of(stripe_event), stripe_event["headers"]["stripe-signature"], SECRETS["stripe"][0], tolerance=600
    )
    headers = slack_event["headers"]
    assert slack_is_valid(
        body_of(slack_event),
        SECRETS["slack"][0],
        headers["x-slack-request-timestamp"],
        headers["x-slack-signature"],
        now,
    )
    Webhook(SECRETS["webhooks"][0]).verify(body_of(webhook_event), webhook_event["headers"])


def test_a_timestamped_example_without_a_secret_says_which_source() -> None:
    with pytest.raises(KeyError, match="stripe"):
        refresh(load_event(TIMESTAMPED[0]), {}, LATER)
