"""HTTP to a destination without server-side request forgery: check every address, connect to the checked one.

On every attempt the host is resolved and **every** address it resolves to is checked;
one refused address refuses the delivery. The connection then goes to a checked
address, never to the name, so a DNS answer that changes between the check and the
connection (rebinding) changes nothing. The request still carries the URL's ``Host``
and, for https, its name as SNI, and the certificate is verified against that name.

Refused, whatever the destination says: loopback (unless the local runner allows it),
link-local (169.254.0.0/16 with the instance metadata address, fe80::/10, and AWS's
IPv6 instance services fd00:ec2::/32), multicast, unspecified, broadcast, reserved and
other special-purpose ranges, 6to4 and Teredo. Refused unless the destination sets
``allow_private_networks``: private (10/8, 172.16/12, 192.168/16, fc00::/7) and shared
(CGNAT, 100.64/10) addresses. IPv6 forms of an IPv4 address (mapped ``::ffff:a.b.c.d``,
NAT64 ``64:ff9b::a.b.c.d``, compatible ``::a.b.c.d``) are judged by that IPv4 address.

Loopback stays closed to ``allow_private_networks`` on purpose: inside Lambda,
127.0.0.1 is the runtime API that completes invocations, and no deployed app lives there.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# urllib3 ships in the layer with botocore, and the worker has loaded it for boto3 already.
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import Timeout

from inqueue.destinations.config import Destination
from inqueue.errors import PermanentError

Resolver = Callable[[str, int], Sequence[str]]

LOOPBACK = "loopback"
PRIVATE = "private"
SHARED = "shared (CGNAT)"
LINK_LOCAL = "link-local"
MULTICAST = "multicast"
UNSPECIFIED = "unspecified"
RESERVED = "reserved"
# What allow_private_networks opens; the rest stays refused.
PRIVATE_KINDS = frozenset({PRIVATE, SHARED})

_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(network), kind)
    for network, kind in (
        ("0.0.0.0/8", UNSPECIFIED),
        ("127.0.0.0/8", LOOPBACK),
        ("169.254.0.0/16", LINK_LOCAL),
        ("10.0.0.0/8", PRIVATE),
        ("172.16.0.0/12", PRIVATE),
        ("192.168.0.0/16", PRIVATE),
        ("100.64.0.0/10", SHARED),
        ("224.0.0.0/4", MULTICAST),
        ("240.0.0.0/4", RESERVED),  # with 255.255.255.255, the broadcast address
    )
)
_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(network), kind)
    for network, kind in (
        ("::/128", UNSPECIFIED),
        ("::1/128", LOOPBACK),
        ("fe80::/10", LINK_LOCAL),
        ("fd00:ec2::/32", LINK_LOCAL),  # the instance metadata service, DNS and time over IPv6
        ("fc00::/7", PRIVATE),
        ("fec0::/10", PRIVATE),  # site-local, deprecated
        ("ff00::/8", MULTICAST),
        ("2002::/16", RESERVED),  # 6to4: reaches whatever IPv4 address it embeds
        ("2001::/32", RESERVED),  # Teredo, likewise
    )
)
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_COMPATIBLE = ipaddress.IPv6Network("::/96")


class AddressRefused(PermanentError):
    """The destination resolves to an address deliveries may not reach: permanent, dead-lettered with why."""


class DeliveryFailed(Exception):
    """A delivery that did not get a usable answer (no connection, a timeout, a 5xx): retried with backoff."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


def classify(address: str) -> str | None:
    """The kind of a non-public address ("loopback", "private", ...), or None for a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id says nothing about the range
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            ip = embedded
        else:
            for network6, kind in _V6:
                if ip in network6:
                    return kind
            return None if ip.is_global else RESERVED
    for network4, kind in _V4:
        if ip in network4:
            return kind
    return None if ip.is_global else RESERVED


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in network for network in _NAT64) or (ip in _COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which kinds of address a delivery may reach."""

    allow_private: bool = False
    allow_loopback: bool = False

    def refusal(self, address: str) -> str | None:
        """Why ``address`` is refused, or None when it may be reached."""
        kind = classify(address)
        if kind is None or (kind in PRIVATE_KINDS and self.allow_private) or (kind == LOOPBACK and self.allow_loopback):
            return None
        return kind


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def resolve_checked(host: str, port: int, policy: AddressPolicy, resolver: Resolver, *, name: str) -> list[str]:
    """Every address of ``host``, each one checked; raises AddressRefused when any is refused.

    A name that resolves to one public and one private address is refused outright: a
    connection to "the public one" would depend on which one a retry picks.
    """
    try:
        literal: str | None = str(ipaddress.ip_address(host))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = list(dict.fromkeys(resolver(host, port)))
        except (OSError, UnicodeError) as exc:
            raise DeliveryFailed(f"destination {name!r}: could not resolve {host} ({exc})") from None
        if not addresses:
            raise DeliveryFailed(f"destination {name!r}: {host} resolves to no address")
    for address in addresses:
        why = policy.refusal(address)
        if why is not None:
            what = host if literal is not None else f"{host} resolves to {address}, which"
            hint = "; set allow_private_networks on the destination to allow it" if why in PRIVATE_KINDS else ""
            raise AddressRefused(f"destination {name!r}: {what} is a {why} address, refused{hint}")
    return addresses


@dataclass(frozen=True, slots=True)
class Answer:
    """What the destination answered: status, headers, and the body up to the read limit."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    truncated: bool
    address: str
    elapsed: float


class SafeHttp:
    """Sends one request to a destination over pooled connections, each pinned to a checked address.

    Pools are kept per (scheme, address, port, host name) for keep-alive across deliveries
    in a warm container; a new address for the same name gets a new pool, never a
    connection opened to the old one by name. Proxies from the environment are not used.
    """

    def __init__(
        self,
        *,
        resolver: Resolver = system_resolver,
        allow_loopback: bool = False,
        ca_certs: str | None = None,
        max_pools: int = 32,
        connections_per_pool: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.resolver = resolver
        self.allow_loopback = allow_loopback
        self.ca_certs = ca_certs
        self.max_pools = max_pools
        self.connections_per_pool = connections_per_pool
        self.clock = clock
        self._pools: OrderedDict[tuple[str, str, int, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def policy(self, destination: Destination) -> AddressPolicy:
        return AddressPolicy(allow_private=destination.allow_private_networks, allow_loopback=self.allow_loopback)

    def send(self, destination: Destination, headers: Mapping[str, str], body: bytes, *, read_limit: int) -> Answer:
        """POST (or the destination's method) ``body``; raises AddressRefused or DeliveryFailed when no answer."""
        addresses = resolve_checked(
            destination.host, destination.port, self.policy(destination), self.resolver, name=destination.name
        )
        request_headers = {"host": destination.host_header, **headers}
        last: DeliveryFailed | None = None
        for address in addresses:
            try:
                return self._send_to(address, destination, request_headers, body, read_limit)
            except _Unconnected as exc:
                # Nothing reached the app on this address: the next one may answer (an AAAA first, say).
                last = DeliveryFailed(str(exc))
        assert last is not None  # addresses is never empty
        raise last

    def _send_to(
        self, address: str, destination: Destination, headers: Mapping[str, str], body: bytes, read_limit: int
    ) -> Answer:
        pool = self._pool(destination.scheme, address, destination.port, destination.host)
        where = f"destination {destination.name!r} ({destination.host} at {address})"
        started = self.clock()
        try:
            response = pool.urlopen(
                destination.method,
                destination.target,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=Timeout(connect=destination.timeout, read=destination.timeout),
                preload_content=False,
                decode_content=False,
                release_conn=False,
            )
        except NewConnectionError as exc:
            raise _Unconnected(f"{where}: could not connect ({_cause(exc)})") from None
        except ConnectTimeoutError:
            raise DeliveryFailed(f"{where}: could not connect within {destination.timeout:g} s") from None
        except SSLError as exc:
            raise DeliveryFailed(f"{where}: TLS failed ({_cause(exc)})") from None
        except Urllib3Timeout:
            raise DeliveryFailed(f"{where}: no answer within {destination.timeout:g} s") from None
        except (HTTPError, OSError) as exc:
            raise DeliveryFailed(f"{where}: the connection failed ({_cause(exc)})") from None
        try:
            data = response.read(read_limit + 1)
        except Urllib3Timeout:
            response.close()
            raise DeliveryFailed(f"{where}: the answer did not finish within {destination.timeout:g} s") from None
        except (HTTPError, OSError) as exc:
            response.close()
            raise DeliveryFailed(f"{where}: reading the answer failed ({_cause(exc)})") from None
        truncated = len(data) > read_limit
        if truncated:
            # The rest is not read: a connection with unread data must not go back to the pool.
            response.close()
        response.release_conn()
        return Answer(
            status=response.status,
            reason=response.reason or "",
            headers={name.lower(): value for name, value in response.headers.items()},
            body=data[:read_limit],
            truncated=truncated,
            address=address,
            elapsed=self.clock() - started,
        )

    def _pool(self, scheme: str, address: str, port: int, host: str) -> Any:
        key = (scheme, address, port, host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            pool = self._new_pool(scheme, address, port, host)
            self._pools[key] = pool
            while len(self._pools) > self.max_pools:
                _, old = self._pools.popitem(last=False)
                old.close()
            return pool

    def _new_pool(self, scheme: str, address: str, port: int, host: str) -> Any:
        if scheme == "https":
            # Connect to the address; SNI and the certificate check use the URL's host name.
            return HTTPSConnectionPool(
                address,
                port,
                maxsize=self.connections_per_pool,
                server_hostname=host,
                assert_hostname=host,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self.ca_certs,
            )
        return HTTPConnectionPool(address, port, maxsize=self.connections_per_pool)

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


class _Unconnected(Exception):
    """No connection was made to this address: nothing was sent, another address may be tried."""


def _cause(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or error
    text = str(reason)
    return f"{type(reason).__name__}: {text}" if text else type(reason).__name__
