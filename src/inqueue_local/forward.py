"""Destinations on this machine: ``make run FORWARD_TO=http://127.0.0.1:9000/hooks``, like ``hookdeck listen``.

``forward_to(template, url)`` sets the template's ``DestinationsConfig`` to one destination,
``local``, at that URL, and routes every source to it that has no Python processors of its
own (``"routes": {"*": "local"}``: a source with processors keeps them). Deliveries are
signed with the local secret ``ssm:/inqueue/destinations/local`` from
``config/secrets.local.json``, the one ``make receiver`` verifies with. Its timeout fits the
worker's (``WorkerTimeout``): every delivery must finish within an invocation.

``LocalDestinations`` is the runner's service for any destination, forwarded or configured
by hand: it sets ``INQUEUE_ALLOW_LOOPBACK_DESTINATIONS=true`` on the functions that deliver
(those with ``INQUEUE_DESTINATIONS`` in the template: the worker) and on no other, so an
app on 127.0.0.1 can be reached locally; the template never sets it, because in Lambda
127.0.0.1 is the runtime API. It checks ``DestinationsConfig`` before anything starts,
with the route names against ``SourcesConfig`` (a deployed worker is not given the
sources' configuration, so only here can a misspelt source be caught), seeds the local
secret when an older ``secrets.local.json`` lacks it, and says in the ready line where
events go.
"""

from __future__ import annotations

import json
import socket
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from inqueue.destinations import ALLOW_LOOPBACK_ENV, DESTINATIONS_ENV, DestinationsConfigError, parse_config
from inqueue.worker.destinations import DELIVERY_MARGIN_SECONDS, DELIVERY_START_SECONDS
from inqueue_local.template import Template, TemplateError

if TYPE_CHECKING:
    from inqueue_local.runner import Runner

LOCAL_DESTINATION = "local"
LOCAL_SECRET_REF = "ssm:/inqueue/destinations/local"  # noqa: S105 - a reference, not a secret
DEFAULT_TIMEOUT_SECONDS = 10.0


def forward_config(url: str, worker_timeout: float) -> str:
    """``DestinationsConfig`` routing every source without processors to ``url``; TemplateError if it is no URL."""
    # Every delivery must fit in an invocation (inqueue.worker.destinations), or the worker refuses to start.
    spare = worker_timeout - DELIVERY_MARGIN_SECONDS - DELIVERY_START_SECONDS
    timeout = max(0.5, min(DEFAULT_TIMEOUT_SECONDS, spare / 2))
    config = {
        "destinations": {
            LOCAL_DESTINATION: {
                "url": url,
                "secret": LOCAL_SECRET_REF,
                "timeout": timeout,
                # A dev machine's other apps (a container's 172.17.0.x) are as reachable as 127.0.0.1.
                "allow_private_networks": True,
            }
        },
        "routes": {"*": LOCAL_DESTINATION},
    }
    text = json.dumps(config, separators=(",", ":"))
    try:
        parse_config(text)
    except DestinationsConfigError as exc:
        raise TemplateError(f"FORWARD_TO={url}: {exc}") from None
    return text


def forward_to(template: Template, url: str, overrides: Mapping[str, str]) -> None:
    """Route the template's sources to ``url`` (see the module's docstring)."""
    if "DestinationsConfig" in overrides:
        raise TemplateError("FORWARD_TO and PARAMS' DestinationsConfig are both set: use one or the other")
    template.parameters["DestinationsConfig"] = forward_config(url, float(template.parameters["WorkerTimeout"]))


class LocalDestinations:
    """The runner's service for destinations: loopback for the worker only, the local secret, the ready line."""

    name = "destinations:"

    def __init__(self, template: Template, *, forward_to: str | None = None, config_dir: Path | None = None):
        self.template = template
        self.forward_to = forward_to
        self.config_dir = config_dir
        self.functions = sorted(
            name for name, spec in template.functions().items() if DESTINATIONS_ENV in spec.environment
        )
        self.config = _checked(template)

    def environment(self) -> Mapping[str, Mapping[str, str]]:
        return {name: {ALLOW_LOOPBACK_ENV: "true"} for name in self.functions}

    def start(self, runner: Runner) -> str:
        seeded = self._seed_secret(runner)
        allowed = f"127.0.0.1 reachable from {', '.join(self.functions) or 'no function'}"
        if self.forward_to is None:
            return allowed
        where = f"forwarding every source without processors to {self.forward_to}"
        signed = f"signed with {LOCAL_SECRET_REF}{' (seeded from secrets.example.json)' if seeded else ''}"
        listening = "" if _listens(self.forward_to) else "; nothing listens there yet: deliveries retry until it does"
        return f"{where}, {signed}{listening}"

    def stop(self) -> None:
        return None

    def _seed_secret(self, runner: Runner) -> bool:
        """Put the local signing secret in the backend when ``secrets.local.json`` predates it."""
        pipeline = runner.pipeline
        if pipeline is None or LOCAL_SECRET_REF in pipeline.secrets or self.config_dir is None:
            return False
        example = self.config_dir / "secrets.example.json"
        if not example.exists():
            return False
        value = json.loads(example.read_text(encoding="utf-8")).get(LOCAL_SECRET_REF)
        if not isinstance(value, str):
            return False
        runner.backend.client("ssm").put_parameter(
            Name=LOCAL_SECRET_REF.removeprefix("ssm:"), Value=value, Type="SecureString", Overwrite=True
        )
        return True


def _checked(template: Template) -> str:
    text = template.parameters.get("DestinationsConfig", "")
    try:
        sources = list(json.loads(template.parameters.get("SourcesConfig") or "{}"))
    except ValueError:
        sources = None  # the ingress's own check reports it
    try:
        parse_config(text, known_sources=sources)
    except DestinationsConfigError as exc:
        raise TemplateError(f"DestinationsConfig: {exc}") from None
    return text


def local_secret(config_dir: Path) -> str:
    """The local signing secret, as ``make receiver`` needs it: secrets.local.json's, else the example's."""
    for name in ("secrets.local.json", "secrets.example.json"):
        path = config_dir / name
        if path.exists():
            value = json.loads(path.read_text(encoding="utf-8")).get(LOCAL_SECRET_REF)
            if isinstance(value, str):
                return value
    raise TemplateError(f"no {LOCAL_SECRET_REF} in {config_dir}/secrets.local.json or secrets.example.json")


def _listens(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
