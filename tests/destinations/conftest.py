"""Real HTTP on loopback for the destination tests: a scripted app, TLS certificates, the example receiver.

Every server binds 127.0.0.1 on a free port; the deliverers here are the only ones that
allow loopback (``SafeHttp(allow_loopback=True)``), as the local runner will.
"""

from __future__ import annotations

import base64
import datetime
import importlib.util
import json
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from inqueue.destinations import Deliverer, DeliveryLimiter, SafeHttp, parse_config
from inqueue.destinations.network import system_resolver
from inqueue.secrets import SecretStore

ROOT = Path(__file__).resolve().parents[2]
KEY = b"destination signing key, 32 byte"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
SECRET_REF = "ssm:/inqueue/destinations/app"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    hold: threading.Event | None = None  # answer only once set: a slow app


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class App:
    """An HTTP app on 127.0.0.1 that answers with the replies it is given, in order, and records each request."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.replies: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.server_names: list[str | None] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real app server
            disable_nagle_algorithm = True  # headers and body leave at once, as a real app server's do

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                app.seen.append(Seen(self.command, self.path, headers, body, self.client_address[1]))
                reply = app.replies.popleft() if app.replies else Reply()
                if reply.hold is not None:
                    reply.hold.wait(10)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_PUT = do_PATCH = do_POST  # noqa: N815 - http.server's names

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: self.server_names.append(name)  # type: ignore[assignment,misc]
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app() -> Iterator[App]:
    server = App()
    yield server
    server.close()


@pytest.fixture
def secrets(aws: None) -> SecretStore:
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name=SECRET_REF.removeprefix("ssm:"), Value=SECRET, Type="SecureString")
    ssm.put_parameter(Name="/inqueue/destinations/app-token", Value="Bearer s3cr3t", Type="SecureString")
    return SecretStore(ssm_client=ssm)


def config_for(url: str, *, name: str = "app", source: str = "bitrix24", **settings: Any) -> dict[str, Any]:
    """One destination ``name`` at ``url`` with ``settings``, the source routed to it."""
    return {"destinations": {name: {"url": url, "secret": SECRET_REF, **settings}}, "routes": {source: name}}


class Names:
    """A resolver the test controls: each host name answers the next of its address lists; calls are counted."""

    def __init__(self, names: dict[str, list[list[str]]]):
        self.names = names
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        answers = self.names[host]
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture
def deliverer(secrets: SecretStore) -> Callable[..., Deliverer]:
    """A deliverer for a configuration (a dict) that may reach loopback, as only the local runner's may."""

    def make(
        config: dict[str, Any],
        *,
        resolver: Callable[[str, int], Sequence[str]] | None = None,
        ca_certs: str | None = None,
        allow_loopback: bool = True,
        limiter: DeliveryLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Deliverer:
        http = SafeHttp(allow_loopback=allow_loopback, ca_certs=ca_certs, resolver=resolver or system_resolver)
        return Deliverer(parse_config(json.dumps(config)), secrets=secrets, http=http, limiter=limiter, clock=clock)

    return make


@dataclass
class Certificates:
    ca: Path
    server: ssl.SSLContext


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A test CA and a certificate it signed for app.test, made with cryptography (no network, no openssl CLI)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Inqueue test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("app.test")]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = folder / "app.pem", folder / "app.key"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return Certificates(ca=ca_path, server=context)


def load_receiver() -> ModuleType:
    """examples/receiver/receiver.py, imported from its file as a user would run it."""
    path = ROOT / "examples" / "receiver" / "receiver.py"
    spec = importlib.util.spec_from_file_location("example_receiver", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module
