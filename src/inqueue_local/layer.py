"""What a function's process may import: its code, its layer, the runtime client. Nothing else.

On Lambda a function sees ``/var/task`` (its ``CodeUri``), ``/opt/python`` (its layers)
and ``/var/runtime`` (the runtime interface client). The runner's own virtualenv holds
far more (moto, pytest, the runner, the operator tooling), so a child process is never
given that virtualenv: it runs with ``python -S`` (no site-packages) and a ``PYTHONPATH``
of two directories made here, each a set of links into the virtualenv:

* ``layer/``: exactly what ``src/Makefile`` puts in the layer: the packages it copies
  (``cp -R inqueue ...``) and the pinned ``requirements-layer.txt`` with their own
  dependencies, resolved from the installed distributions' metadata;
* ``runtime/``: ``awslambdaric`` and its dependencies (Lambda's ``/var/runtime``), and
  boto3, which Lambda's Python runtime includes (a layer's own boto3 comes first).

So a function that imports ``inqueue_local``, ``moto`` or anything the layer does not ship
fails locally with the ``ModuleNotFoundError`` it would get on Lambda.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from inqueue_local.template import TemplateError

# The layer's build recipe: `cp -R <package> "$(ARTIFACTS_DIR)/python/<package>"`.
_COPY = re.compile(r'^\s*cp\s+-R\s+(\w+)\s+"\$\(ARTIFACTS_DIR\)/python/', re.MULTILINE)
_NOT_MODULES = {"__pycache__", "bin", "..", ""}


@dataclass(frozen=True)
class LayerSource:
    """One layer of the template: its directory, the packages it copies and its requirements file."""

    content: Path
    packages: tuple[str, ...]
    requirements: Path

    @classmethod
    def from_makefile(cls, content: Path) -> LayerSource:
        makefile = content / "Makefile"
        if not makefile.is_file():
            raise TemplateError(f"layer {content}: no Makefile (BuildMethod: makefile) to say what the layer holds")
        packages = tuple(_COPY.findall(makefile.read_text(encoding="utf-8")))
        requirements = content / "requirements-layer.txt"
        if not packages or not requirements.is_file():
            raise TemplateError(
                f'layer {content}: expected `cp -R <package> "$(ARTIFACTS_DIR)/python/..."` in its Makefile '
                "and a requirements-layer.txt beside it"
            )
        return cls(content, packages, requirements)

    def requirement_names(self) -> list[str]:
        names = []
        for raw in self.requirements.read_text(encoding="utf-8").splitlines():
            line = raw.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.append(Requirement(line).name)
        return names


def closure(names: Iterable[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions these names need, their dependencies included (no extras)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in found:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise TemplateError(f"{name} is not installed in this virtualenv: run `make venv`") from None
        found[name] = distribution
        for text in distribution.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return list(found.values())


def top_level(distribution: importlib.metadata.Distribution) -> dict[str, Path]:
    """Importable top-level names of a distribution and where each is installed."""
    names: dict[str, Path] = {}
    for file in distribution.files or []:
        first = file.parts[0]
        if first.endswith((".dist-info", ".egg-info", ".pth")) or first in _NOT_MODULES:
            continue
        if len(file.parts) == 1 and not first.endswith((".py", ".so")):
            continue
        names[first] = Path(str(distribution.locate_file(first)))
    return names


def source_paths(code_uri: Path, layers: Iterable[Path]) -> list[Path]:
    """Where a function's own code lives: its ``CodeUri`` and the packages its layers copy (not their wheels)."""
    sources = [LayerSource.from_makefile(layer) for layer in layers]
    return [code_uri, *(source.content / package for source in sources for package in source.packages)]


class CodeView:
    """The ``layer/`` and ``runtime/`` directories for child processes; ``close()`` removes them."""

    def __init__(self, layers: Iterable[LayerSource], runtime: Iterable[str] = ("awslambdaric", "boto3")):
        self.root = Path(tempfile.mkdtemp(prefix="inqueue-lambda-"))
        self.layer = self.root / "layer"
        self.runtime = self.root / "runtime"
        self.layers = list(layers)
        self.layer.mkdir()
        self.runtime.mkdir()
        layer_names: set[str] = set()
        for source in self.layers:
            for package in source.packages:
                self._link(self.layer, package, source.content / package)
            layer_names.update(source.requirement_names())
        for distribution in closure(layer_names):
            for name, path in top_level(distribution).items():
                self._link(self.layer, name, path)
        for distribution in closure(runtime):
            for name, path in top_level(distribution).items():
                self._link(self.runtime, name, path)

    @staticmethod
    def _link(directory: Path, name: str, target: Path) -> None:
        link = directory / name
        if not link.exists() and target.exists():
            link.symlink_to(target, target_is_directory=target.is_dir())

    def names(self) -> set[str]:
        return {path.name for path in self.layer.iterdir()}

    def python_path(self, code_dir: Path) -> str:
        """``PYTHONPATH`` as Lambda orders it: the function's code, its layers, the runtime client."""
        return ":".join(str(p) for p in (code_dir, self.layer, self.runtime))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
