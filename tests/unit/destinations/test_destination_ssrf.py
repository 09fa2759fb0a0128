"""SSRF: every address a destination resolves to is checked, on every attempt, before anything connects."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from inqueue.destinations import AddressPolicy, AddressRefused, DeliveryFailed, classify, parse_config
from inqueue.destinations.network import resolve_checked
from inqueue.errors import PermanentError

PUBLIC = ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "64:ff9b::808:808", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.254", "shared (CGNAT)"),
        ("169.254.169.254", "link-local"),  # the instance metadata service
        ("169.254.170.2", "link-local"),  # ECS's task metadata
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fd00:ec2::254", "link-local"),  # the instance metadata service over IPv6
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not to bind
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "reserved"),  # documentation
        ("198.18.0.1", "reserved"),  # benchmarking
        ("2001:db8::1", "reserved"),  # documentation
        ("2002:a00:1::1", "reserved"),  # 6to4 (of 10.0.0.1)
        ("2001:0:4136:e378::1", "reserved"),  # Teredo
        # IPv6 forms of IPv4 addresses are judged by the IPv4 address
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:100.64.0.1", "shared (CGNAT)"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("64:ff9b::7f00:1", "loopback"),
        ("::127.0.0.1", "loopback"),  # IPv4-compatible, deprecated
    ],
)
def test_every_non_public_range_is_named(address: str, kind: str) -> None:
    assert classify(address) == kind


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert classify(address) is None
    assert AddressPolicy().refusal(address) is None


def test_allow_private_networks_opens_private_and_shared_ranges_only() -> None:
    policy = AddressPolicy(allow_private=True)
    for address in ("10.0.0.5", "192.168.0.10", "fd00::5", "100.64.1.1", "::ffff:10.0.0.5"):
        assert policy.refusal(address) is None, address
    # The platform's own endpoints stay closed: Lambda's runtime API is on loopback, metadata on link-local.
    for address in ("127.0.0.1", "169.254.169.254", "fd00:ec2::254", "224.0.0.1", "0.0.0.0", "240.0.0.1"):  # noqa: S104
        assert policy.refusal(address) is not None, address


def test_the_local_runners_flag_opens_loopback_only() -> None:
    policy = AddressPolicy(allow_loopback=True)
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("::1") is None
    assert policy.refusal("::ffff:127.0.0.1") is None
    assert policy.refusal("10.0.0.1") == "private"
    assert policy.refusal("169.254.169.254") == "link-local"


class Resolver:
    """DNS the test controls: each call answers the next list; counts the calls."""

    def __init__(self, *answers: Sequence[str]):
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_a_name_that_resolves_to_a_private_address_is_refused_with_the_address_and_what_to_do() -> None:
    resolver = Resolver(["10.0.0.7"])
    with pytest.raises(AddressRefused, match=r"shop\.example\.com resolves to 10\.0\.0\.7.*private.*allow_private"):
        resolve_checked("shop.example.com", 443, AddressPolicy(), resolver, name="shop")
    assert resolver.calls == [("shop.example.com", 443)]


def test_one_refused_address_among_public_ones_refuses_the_name() -> None:
    resolver = Resolver(["8.8.8.8", "169.254.169.254", "8.8.4.4"])
    with pytest.raises(AddressRefused, match=r"169\.254\.169\.254.*link-local"):
        resolve_checked("metadata.example.com", 80, AddressPolicy(allow_private=True), resolver, name="shop")


def test_a_refusal_is_permanent_so_the_event_is_dead_lettered_with_the_reason() -> None:
    assert issubclass(AddressRefused, PermanentError)


def test_an_ip_literal_is_checked_without_dns() -> None:
    resolver = Resolver(["8.8.8.8"])
    with pytest.raises(AddressRefused, match=r"169\.254\.169\.254 is a link-local address"):
        resolve_checked("169.254.169.254", 80, AddressPolicy(), resolver, name="shop")
    with pytest.raises(AddressRefused, match=r"::ffff:169\.254\.169\.254 is a link-local address"):
        resolve_checked("::ffff:169.254.169.254", 80, AddressPolicy(), resolver, name="shop")
    assert resolve_checked("8.8.8.8", 80, AddressPolicy(), resolver, name="shop") == ["8.8.8.8"]
    assert resolver.calls == []


def test_a_rebinding_name_is_checked_again_on_every_attempt() -> None:
    # GIVEN DNS that answers a public address first, then the metadata address (a rebinding attack)
    resolver = Resolver(["93.184.215.14"], ["169.254.169.254"])

    # WHEN the first attempt resolves, it gets the checked public address to connect to
    first = resolve_checked("rebind.example.com", 80, AddressPolicy(), resolver, name="shop")
    assert first == ["93.184.215.14"]

    # THEN the next attempt resolves again and is refused before anything connects
    with pytest.raises(AddressRefused, match=r"169\.254\.169\.254"):
        resolve_checked("rebind.example.com", 80, AddressPolicy(), resolver, name="shop")
    assert len(resolver.calls) == 2


def test_a_name_that_does_not_resolve_is_retried_not_dead_lettered() -> None:
    def nxdomain(host: str, port: int) -> Sequence[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(DeliveryFailed, match=r"could not resolve nowhere\.example"):
        resolve_checked("nowhere.example", 443, AddressPolicy(), nxdomain, name="shop")
    with pytest.raises(DeliveryFailed, match="resolves to no address"):
        resolve_checked("empty.example", 443, AddressPolicy(), Resolver([]), name="shop")


def test_urls_that_are_not_http_never_configure() -> None:
    # Schemes are refused at start-up, so nothing at run time ever sees gopher:// or file://.
    for url in ("gopher://x/", "file:///etc/passwd", "ftp://x/", "//x/", "x:80"):
        with pytest.raises(ValueError, match="http:// or https://"):
            parse_config(f'{{"destinations": {{"shop": {{"url": "{url}", "secret": "ssm:/x"}}}}}}')
