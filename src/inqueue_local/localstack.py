"""LocalStack as the runner's data plane: its core in host mode, no Docker, loopback only.

``make run BACKEND=localstack`` and the LocalStack test lane use this. On first use it
installs ``requirements/localstack.txt`` into ``.tools/localstack`` (its own venv:
LocalStack pins its own boto3, moto and friends), then for each run:

* makes a self-signed certificate for 127.0.0.1/localhost with this venv's
  ``cryptography`` (LocalStack's bundled pyOpenSSL fails to make one here, and its own
  would be downloaded);
* starts ``python -m localstack.runtime.main`` on ``127.0.0.1:<free port>`` with
  ``GATEWAY_SERVER=hypercorn`` (the default server ignores the host in ``GATEWAY_LISTEN``
  and listens on every interface), DNS off, state under ``.local/localstack/``, no
  downloads and no usage events, in a clean environment of its own;
* waits for ``/_localstack/health`` (bounded), then checks in ``/proc`` that every TCP
  listener of the process tree is on a loopback address, and refuses to go on otherwise;
* stops it with SIGTERM, then SIGKILL after ``STOP_SECONDS``: from ``stop()``, at exit,
  and (Linux) when this process dies, through the parent-death signal.

Its log goes to ``.local/localstack/localstack.log`` (the path is in the ready line).

DynamoDB is not LocalStack's here: its DynamoDB is Amazon's DynamoDB Local, a Java
program LocalStack downloads with a JDK on first use, and this machine reaches package
registries only. So tables live in moto's server, embedded in this process on 127.0.0.1,
and the functions get ``AWS_ENDPOINT_URL_DYNAMODB`` for it (``endpoint("dynamodb")``). SQS, S3, SSM, Secrets
Manager and STS are LocalStack's.

Clients: plain boto3 with explicit endpoints, not ``localstack-client``. The backend
hands out clients (``Backend.client``) and the in-process functions find their endpoints
through the SDK's own ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_DYNAMODB``, which
``inqueue.aws`` and Powertools already honour. ``localstack-client`` would add a
dependency that sends every service to one host and port (configured through
``LOCALSTACK_HOST``/``EDGE_PORT``-style variables), which cannot express "DynamoDB
elsewhere" and would be a second way to say what ``endpoint_url`` already says.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from inqueue_local.backends import Backend, MotoServer

PROJECT = Path(__file__).resolve().parents[2]
REQUIREMENTS = PROJECT / "requirements" / "localstack.txt"
VENV = PROJECT / ".tools" / "localstack"
STATE = PROJECT / ".local" / "localstack"
# Python 3.13 works (checked); 3.12 is LocalStack's own and the fallback.
PYTHONS = ("python3.13", "~/.pyenv/versions/3.13.0/bin/python", "python3.12", "~/.pyenv/versions/3.12.1/bin/python")
# events: its TestEventPattern is the second event-pattern engine the FilterCriteria conformance rows check.
SERVICES = ("sqs", "s3", "ssm", "secretsmanager", "sts", "events")
START_SECONDS = 90.0
STOP_SECONDS = 10.0
INSTALL_SECONDS = 900.0


class LocalStackError(RuntimeError):
    """LocalStack could not be installed, started, or started safely."""


# ---------------------------------------------------------------- install


def _python() -> str | None:
    for candidate in PYTHONS:
        found = shutil.which(os.path.expanduser(candidate))
        if found:
            return found
    return None


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def installed(venv: Path = VENV, requirements: Path = REQUIREMENTS) -> bool:
    stamp = venv / ".installed"
    return stamp.exists() and stamp.stat().st_mtime >= requirements.stat().st_mtime


def available() -> bool:
    """Whether this machine can run the backend: installed already, or a Python to install it with."""
    return installed() or (_python() is not None and REQUIREMENTS.exists())


def install(venv: Path = VENV, requirements: Path = REQUIREMENTS, say: Callable[[str], None] = print) -> Path:
    """Install the pinned LocalStack into its own venv, once; returns its Python."""
    python = venv_python(venv)
    if installed(venv, requirements):
        return python
    base = _python()
    if base is None:
        raise LocalStackError(
            f"BACKEND=localstack needs Python 3.13 or 3.12 to install it (tried {', '.join(PYTHONS)})"
        )
    started = time.monotonic()
    say(f"installing LocalStack ({requirements.relative_to(PROJECT)}) into {venv.relative_to(PROJECT)}, once")
    if not python.exists():
        subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=120)  # noqa: S603 - our own paths
    subprocess.run(  # noqa: S603 - pinned requirements, our own venv
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(requirements)],
        check=True,
        timeout=INSTALL_SECONDS,
    )
    (venv / ".installed").touch()
    say(f"installed LocalStack in {time.monotonic() - started:.0f} s")
    return python


def version(venv: Path = VENV) -> str:
    for metadata in (venv / "lib").glob("python3.*/site-packages/localstack_core-*.dist-info"):
        return metadata.name.split("-")[1].removesuffix(".dist")
    return "?"


# ---------------------------------------------------------------- certificate


def certificate(path: Path) -> Path:
    """A self-signed certificate + key for 127.0.0.1 and localhost, valid 30 days; remade when near its end."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    if path.exists():
        with contextlib.suppress(ValueError):
            existing = x509.load_pem_x509_certificate(path.read_bytes())
            if existing.not_valid_after_utc - now > datetime.timedelta(days=1):
                return path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(pem + cert.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o600)
    return path


# ---------------------------------------------------------------- listeners


def _tree(pid: int) -> set[int]:
    """``pid`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(children.get(current, []))
    return found


def _socket_inodes(pids: Iterable[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    return inodes


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    # /proc/net/tcp6: four 32-bit words, each in host (little-endian) order
    return ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))


def listeners(pid: int) -> list[tuple[str, int]]:
    """Every TCP socket in LISTEN state held by ``pid`` or a descendant, as (address, port). Linux only."""
    inodes = _socket_inodes(_tree(pid))
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                    continue
                host, port = fields[1].split(":")
                found.append((str(_address(host)), int(port, 16)))
    return found


def _loopback(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback  # 127.0.0.0/8 or ::1; never 0.0.0.0 or ::


def check_loopback_only(pid: int) -> list[tuple[str, int]]:
    """Raise if any listener of the process tree is on a non-loopback address (0.0.0.0, ::, a LAN address)."""
    if not Path("/proc/net/tcp").exists():
        raise LocalStackError("cannot check LocalStack's listeners (no /proc): refusing to run it")
    found = listeners(pid)
    exposed = [(host, port) for host, port in found if not _loopback(host)]
    if exposed:
        shown = ", ".join(f"{host}:{port}" for host, port in exposed)
        raise LocalStackError(f"LocalStack listens beyond loopback ({shown}): stopped it; nothing may listen there")
    return found


# ---------------------------------------------------------------- the process


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _parent_death_signal() -> Callable[[], None] | None:
    """Linux: the child gets SIGTERM when this process dies, even by SIGKILL. Resolved here, not in the child."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_signal() -> None:  # runs in the child between fork and exec: no imports, no locks
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return set_signal


def environment(port: int, cert: Path, state: Path, services: Iterable[str] = SERVICES) -> dict[str, str]:
    """LocalStack's whole environment: nothing inherited but what a process needs to run."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"}}
    listen = f"127.0.0.1:{port}"
    return {
        **keep,
        "GATEWAY_LISTEN": listen,
        "GATEWAY_SERVER": "hypercorn",  # the default (twisted) ignores the host and binds every interface
        "LOCALSTACK_HOST": listen,  # what it writes into URLs it returns
        "SQS_ENDPOINT_STRATEGY": "path",  # queue URLs on 127.0.0.1, not *.localhost.localstack.cloud (DNS)
        "CUSTOM_SSL_CERT_PATH": str(cert),
        "DNS_ADDRESS": "0",  # no DNS server of its own (it would bind port 53)
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(state / "filesystem"),
        "SERVICES": ",".join(services),
        "DISABLE_EVENTS": "1",  # no usage events
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "LS_LOG": os.environ.get("LOCALSTACK_LOG", "warn"),  # one line per AWS call at info slows SQS down
        "PYTHONUNBUFFERED": "1",
    }


class LocalStack(Backend):
    """LocalStack's core in host mode for SQS/S3/SSM/Secrets Manager/STS, moto for DynamoDB; both on 127.0.0.1."""

    name = "localstack"
    account_id = "000000000000"

    def __init__(
        self,
        region: str = "us-east-1",
        root: Path = STATE,
        venv: Path = VENV,
        say: Callable[[str], None] | None = None,
    ):
        super().__init__(region)
        self.root = Path(root)
        self.venv = venv
        self.log_path = self.root / "localstack.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.dynamodb = MotoServer(region)
        self.startup_seconds = 0.0
        self._say = say or (lambda line: print(f"localstack: {line}", file=sys.stderr, flush=True))
        self._log_file: IO[bytes] | None = None

    # ------------------------------------------------------------ Backend
    def start(self) -> None:
        python = install(self.venv, say=self._say)
        started = time.monotonic()
        cert = certificate(self.root / "cert" / "server.test.pem")
        state = self.root / "state"
        shutil.rmtree(state, ignore_errors=True)  # a fresh data plane each run, as with moto
        state.mkdir(parents=True)
        port = _free_port()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own venv's Python, a fixed module
            [str(python), "-m", "localstack.runtime.main"],
            env=environment(port, cert, state),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the runner, which drains, then stops LocalStack
            preexec_fn=_parent_death_signal(),  # noqa: PLW1509 - one libc call, resolved before the fork
        )
        atexit.register(self.stop)
        try:
            self._wait_healthy(port)
            self._touch_services()  # services start on first use; the listener check must see them running
            check_loopback_only(self.process.pid)
            self.dynamodb.start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_SECONDS)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self.dynamodb.stop()
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def endpoint(self, service: str) -> str | None:
        if service in ("dynamodb", "dynamodbstreams"):
            return self.dynamodb.endpoint_url
        return self.endpoint_url

    def describe(self) -> str:
        where = self.log_path.relative_to(PROJECT) if self.log_path.is_relative_to(PROJECT) else self.log_path
        return (
            f"localstack {version(self.venv)} at {self.endpoint_url} (DynamoDB: moto at {self.dynamodb.endpoint_url}; "
            f"log {where})"
        )

    # ------------------------------------------------------------ start-up
    def _wait_healthy(self, port: int) -> None:
        url = f"http://127.0.0.1:{port}/_localstack/health"
        deadline = time.monotonic() + START_SECONDS
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalStackError(
                    f"LocalStack exited with {self.process.returncode} while starting; see {self.log_path}:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(url, timeout=2) as response:
                    services = json.load(response).get("services", {})
                if all(services.get(name) in ("available", "running") for name in SERVICES):
                    return
            time.sleep(0.2)
        raise LocalStackError(f"LocalStack was not healthy within {START_SECONDS:g} s; see {self.log_path}")

    def _touch_services(self) -> None:
        self.client("sqs").list_queues()
        self.client("s3").list_buckets()
        self.client("ssm").describe_parameters(MaxResults=1)
        self.client("secretsmanager").list_secrets(MaxResults=1)
        self.account_id = str(self.client("sts").get_caller_identity()["Account"])

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def main(argv: list[str] | None = None) -> int:
    """``python -m inqueue_local.localstack install|check``: install it, or start, check and stop it once."""
    command = (argv if argv is not None else sys.argv[1:] or ["install"])[0]
    if command == "install":
        install()
        return 0
    backend = LocalStack()
    started = time.monotonic()
    backend.start()
    assert backend.process is not None
    print(f"started in {time.monotonic() - started:.1f} s: {backend.describe()}")
    print("listening:", ", ".join(f"{h}:{p}" for h, p in listeners(backend.process.pid)))
    started = time.monotonic()
    backend.stop()
    print(f"stopped in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
