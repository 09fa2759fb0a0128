"""INQUEUE_DESTINATIONS: what a valid configuration means, and a clear start-up error for each mistake."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.template.cfn import load_sam

from inqueue.destinations import Deliverer, DestinationsConfigError, Rate, parse_config
from inqueue.destinations.config import ALLOW_LOOPBACK_ENV, DESTINATIONS_ENV

SHOP = {"url": "https://shop.example.com/inqueue?tenant=eu", "secret": "ssm:/inqueue/destinations/shop"}


def config(**top: Any) -> str:
    return json.dumps({"destinations": {"shop": SHOP}, **top})


def test_a_destination_with_only_url_and_secret_gets_the_documented_defaults() -> None:
    # WHEN a destination names only what it must
    parsed = parse_config(config(routes={"bitrix24": "shop"}))

    # THEN it is a POST of the envelope with a 10 s timeout, no limits, public addresses only
    shop = parsed.destinations["shop"]
    assert (shop.scheme, shop.host, shop.port, shop.target) == ("https", "shop.example.com", 443, "/inqueue?tenant=eu")
    assert (shop.method, shop.timeout, shop.payload) == ("POST", 10.0, "envelope")
    assert (shop.rate, shop.concurrency, shop.allow_private_networks) == (None, None, False)
    assert shop.host_header == "shop.example.com"
    assert not parsed.needs_store


def test_a_source_routes_whole_or_by_type_and_unnamed_types_fall_back_to_processors() -> None:
    # GIVEN one source routed whole and one by type with a catch-all, one by type only
    parsed = parse_config(
        json.dumps(
            {
                "destinations": {"shop": SHOP, "orders": {**SHOP, "url": "http://orders.example.com:8080/in"}},
                "routes": {
                    "bitrix24": "shop",
                    "shopify": {"orders/create": "orders", "*": "shop"},
                    "github": {"push": "orders"},
                },
            }
        )
    )

    # THEN each (source, type) finds its destination, and an unnamed type has none (the router takes it)
    assert parsed.route("bitrix24", "ONCRMDEALADD").name == "shop"  # type: ignore[union-attr]
    assert parsed.route("shopify", "orders/create").name == "orders"  # type: ignore[union-attr]
    assert parsed.route("shopify", "products/update").name == "shop"  # type: ignore[union-attr]
    assert parsed.route("github", "push").name == "orders"  # type: ignore[union-attr]
    assert parsed.route("github", "issues") is None
    assert parsed.route("stripe", "invoice.paid") is None
    assert parsed.destinations["orders"].host_header == "orders.example.com:8080"
    assert parsed.routed_sources == {"bitrix24", "shopify", "github"}


def test_the_catch_all_route_takes_every_other_source_without_named_processors() -> None:
    # GIVEN every source routed to one destination (make run FORWARD_TO), and github routed on its own
    parsed = parse_config(
        json.dumps(
            {
                "destinations": {"local": SHOP, "orders": {**SHOP, "url": "http://orders.example.com/in"}},
                "routes": {"*": "local", "github": {"push": "orders"}},
            }
        )
    )
    named = frozenset({"demo"})  # sources with processors registered by name

    # THEN a source without processors goes to it, one with processors keeps them, a routed one keeps its route
    assert parsed.route("bitrix24", "ONCRMDEALADD", named).name == "local"  # type: ignore[union-attr]
    assert parsed.route("demo", "order.created", named) is None
    assert parsed.route("github", "push", named).name == "orders"  # type: ignore[union-attr]
    assert parsed.route("github", "issues", named) is None  # its own routes name no such type
    # AND the catch-all never conflicts with processors at start-up
    parsed.check_exclusive(named)


def test_callbacks_are_per_source_with_a_catch_all() -> None:
    parsed = parse_config(config(callbacks={"bitrix24": "shop"}))
    assert parsed.callback("bitrix24").name == "shop"  # type: ignore[union-attr]
    assert parsed.callback("github") is None

    everyone = parse_config(config(callbacks={"*": "shop"}))
    assert everyone.callback("github").name == "shop"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("rate", "limit", "per", "interval"),
    [
        (2, 2, 1.0, 0.5),
        (2.0, 2, 1.0, 0.5),
        (2.5, 1, 0.4, 0.4),
        ({"limit": 120, "per": 60}, 120, 60.0, 0.5),
        ({"limit": 3}, 3, 1.0, 0.333334),  # rounded up: three never fit in less than a second
        (0.5, 1, 2.0, 2.0),
    ],
)
def test_a_rate_is_a_spacing_between_deliveries(rate: Any, limit: int, per: float, interval: float) -> None:
    parsed = parse_config(json.dumps({"destinations": {"shop": {**SHOP, "rate": rate, "concurrency": 2}}}))
    shop = parsed.destinations["shop"]
    assert shop.rate == Rate(limit, per)
    assert shop.rate.interval == interval
    assert shop.concurrency == 2
    assert parsed.needs_store


def test_a_source_with_both_a_route_and_named_processors_is_refused_at_start_up() -> None:
    parsed = parse_config(config(routes={"bitrix24": "shop", "github": "shop"}))

    # WHEN the router has processors for bitrix24 by name (and a catch-all, which does not count)
    with pytest.raises(DestinationsConfigError, match=r"bitrix24 are routed .* also have Python processors"):
        parsed.check_exclusive(["bitrix24", "demo"])

    # THEN processors only for other sources are fine
    parsed.check_exclusive(["demo", "stripe"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "is not JSON"),
        ("[]", "must be a JSON object"),
        ('{"destination": {}}', "unknown keys"),
        ('{"destinations": {"Shop": {}}}', "destination name 'Shop'"),
        ('{"destinations": {"shop": "https://x"}}', "must be a JSON object with at least url"),
        ('{"routes": {"bitrix24": "shop"}}', "names destination 'shop', which is not defined"),
        ('{"routes": {"Bitrix 24": "shop"}}', "is not a source name"),
        ('{"routes": {"github": {}}}', "must be a destination name or an object"),
        ('{"callbacks": {"github": "nowhere"}}', "not defined"),
    ],
)
def test_each_mistake_is_refused_with_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(DestinationsConfigError, match=message):
        parse_config(text)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": None}, "url is required"),
        ({"url": "ftp://x/"}, "http:// or https://"),
        ({"url": "file:///etc/passwd"}, "http:// or https://"),
        ({"url": "https://u:p@x/"}, "must not hold credentials"),
        ({"url": "https://x/#a"}, "fragment"),
        ({"url": "https:///x"}, "no host"),
        ({"url": "https://x:99999/"}, "invalid port"),
        ({"url": "https://x/a b"}, "no spaces"),
        ({"secret": None}, "secret is required"),
        ({"secret": "vault:x"}, "must look like 'ssm:/name'"),
        ({"method": "GET"}, "method"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": 901}, "timeout"),
        ({"rate": 0}, "above 0"),
        ({"rate": 501}, "at most 500"),
        ({"rate": {"per": 1}}, "rate must"),
        ({"rate": {"limit": 1.5}}, "whole"),
        ({"concurrency": 0}, "concurrency"),
        ({"payload": "raw"}, "payload"),
        ({"retries": 3}, "unknown settings"),
        ({"allow_private_networks": "yes"}, "true or false"),
        ({"headers": {"Host": "y"}}, "Host"),
        ({"headers": {"webhook-id": "1"}}, "set by the delivery itself"),
        ({"headers": {"x-a": "1\r\nx-b: 2"}}, "ASCII text"),
        ({"headers": {"a b": "1"}}, "header"),
        ({"secret_headers": {"authorization": "t"}}, "must look like 'ssm:/name'"),
    ],
)
def test_each_destination_mistake_is_refused_with_what_to_fix(settings: dict[str, Any], message: str) -> None:
    shop = {key: value for key, value in {**SHOP, **settings}.items() if value is not None}
    with pytest.raises(DestinationsConfigError, match=rf"destination 'shop': .*{message}"):
        parse_config(json.dumps({"destinations": {"shop": shop}}))


def test_a_route_to_an_unconfigured_source_is_refused_when_the_sources_are_known() -> None:
    with pytest.raises(DestinationsConfigError, match="source 'bitrx24' is not configured"):
        parse_config(config(routes={"bitrx24": "shop"}), known_sources=["bitrix24", "github"])


def test_an_empty_or_unset_configuration_means_no_destinations() -> None:
    for text in (None, "", "  ", "{}"):
        parsed = parse_config(text)
        assert not parsed.destinations
        assert parsed.route("bitrix24", "x") is None


def test_a_rate_without_the_status_table_is_a_start_up_error() -> None:
    env = {DESTINATIONS_ENV: json.dumps({"destinations": {"shop": {**SHOP, "rate": 2}}})}
    with pytest.raises(DestinationsConfigError, match=r"shop set a rate or concurrency.*INQUEUE_STATUS_TABLE"):
        Deliverer.from_env(env)

    deliverer = Deliverer.from_env({**env, "INQUEUE_STATUS_TABLE": "inqueue-status"})
    assert deliverer.limiter is not None
    assert deliverer.limiter.table_name == "inqueue-status"


def test_the_loopback_flag_is_read_strictly() -> None:
    assert Deliverer.from_env({ALLOW_LOOPBACK_ENV: "true"}).http.allow_loopback
    assert not Deliverer.from_env({}).http.allow_loopback
    with pytest.raises(DestinationsConfigError, match="must be true or false"):
        Deliverer.from_env({ALLOW_LOOPBACK_ENV: "sometimes"})


def test_the_template_passes_the_destinations_parameter_and_never_allows_loopback() -> None:
    template = load_sam()
    parameter = template["Parameters"]["DestinationsConfig"]
    # The default is a valid configuration: a deploy without destinations starts.
    assert not parse_config(parameter["Default"]).destinations
    worker_env = template["Resources"]["WorkerFunction"]["Properties"]["Environment"]["Variables"]
    assert worker_env[DESTINATIONS_ENV] == {"Ref": "DestinationsConfig"}
    for resource in template["Resources"].values():
        variables = (resource.get("Properties") or {}).get("Environment", {}).get("Variables", {})
        assert ALLOW_LOOPBACK_ENV not in variables
