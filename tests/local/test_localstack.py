"""The LocalStack backend's safety parts, without starting LocalStack: loopback check, environment, certificate."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from cryptography import x509

from inqueue_local.localstack import _address, _loopback, certificate, check_loopback_only, environment, listeners


@pytest.mark.parametrize(
    ("hex_address", "expected", "loopback"),
    [
        ("0100007F", "127.0.0.1", True),
        ("0200007F", "127.0.0.2", True),
        ("00000000", "0.0.0.0", False),  # noqa: S104 - the address this check exists to refuse
        ("0101A8C0", "192.168.1.1", False),
        ("00000000000000000000000001000000", "::1", True),
        ("00000000000000000000000000000000", "::", False),
        ("0000000000000000FFFF00000100007F", "::ffff:127.0.0.1", True),
        ("0000000000000000FFFF000000000000", "::ffff:0.0.0.0", False),
    ],
)
def test_proc_net_addresses_are_read_and_only_loopback_passes(hex_address: str, expected: str, loopback: bool) -> None:
    # GIVEN an address as /proc/net/tcp{,6} writes it WHEN read THEN it is the right one, judged rightly
    assert str(_address(hex_address)) == expected
    assert _loopback(expected) is loopback


@pytest.mark.enable_socket
def test_the_listener_check_sees_this_process_listening_on_loopback() -> None:
    # GIVEN this process listening on 127.0.0.1
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        # WHEN its listeners are checked
        found = check_loopback_only(os.getpid())

        # THEN the socket is found, and passes
        assert ("127.0.0.1", port) in found
        assert ("127.0.0.1", port) in listeners(os.getpid())


def test_environment_binds_loopback_with_hypercorn_and_inherits_no_aws_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://example.invalid")
    monkeypatch.setenv("DEBUG", "1")
    env = environment(4599, tmp_path / "cert.pem", tmp_path / "state")
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4599"
    assert env["GATEWAY_SERVER"] == "hypercorn"
    assert (env["DNS_ADDRESS"], env["OVERRIDE_IN_DOCKER"], env["DISABLE_EVENTS"]) == ("0", "0", "1")
    assert env["FILESYSTEM_ROOT"].startswith(str(tmp_path))
    assert "dynamodb" not in env["SERVICES"].split(",")
    assert "AWS_ENDPOINT_URL" not in env
    assert "DEBUG" not in env


def test_certificate_names_loopback_and_is_reused(tmp_path: Path) -> None:
    path = certificate(tmp_path / "server.test.pem")
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1"}
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert b"PRIVATE KEY" in path.read_bytes()
    before = path.read_bytes()
    assert certificate(path).read_bytes() == before
