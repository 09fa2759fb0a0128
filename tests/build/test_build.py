"""What `sam build` produced: an arm64 layer with inqueue and its runtime dependencies only
(no operator tools, no local runner, no dev tooling), and functions that are nothing but
their own code.

Run by `make build-check` right after `sam build` (it sets INQUEUE_REQUIRE_BUILD=1). A plain
pytest run skips them: a build left from before an edit would fail them for no real fault.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
LAYER = BUILD / "InqueueLayer" / "python"
FUNCTIONS = {"IngressFunction": ROOT / "functions" / "ingress", "WorkerFunction": ROOT / "functions" / "worker"}

EM_AARCH64 = 183  # ELF e_machine of arm64 (EM_X86_64 is 62)
# Lambda allows 250 MB unzipped for a function and its layers together; keep most of it for users.
LAYER_BUDGET_BYTES = 100 * 1024 * 1024
DEV_TOOLING = (
    "moto",
    "pytest",
    "_pytest",
    "inqueue_local",
    "inqueue_ops",
    "rich",
    "mypy",
    "ruff",
    "hypothesis",
    "responses",
    "cfnlint",
)
REQUIREMENTS = ROOT / "src" / "requirements-layer.txt"
# Lambda's python3.13 arm64 runtime, for the environment markers of the layer's dependencies.
LAMBDA_MARKERS = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "extra": "",
}

if not os.environ.get("INQUEUE_REQUIRE_BUILD"):
    pytest.skip("checks sam build's output: run `make build-check`", allow_module_level=True)
if not (BUILD / "template.yaml").is_file():
    pytest.fail(f"no sam build output in {BUILD}: run `make build`", pytrace=False)


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    assert header[4] == 2, f"{path} is not 64-bit"  # EI_CLASS: ELFCLASS64
    assert header[5] == 1, f"{path} is not little-endian"  # EI_DATA: ELFDATA2LSB
    (machine,) = struct.unpack_from("<H", header, 18)
    return int(machine)


def test_elf_check_tells_architectures_apart() -> None:
    # GIVEN this machine's own Python binary THEN its e_machine is this machine's, not blindly arm64
    expected = {"x86_64": 62, "aarch64": EM_AARCH64}[platform.machine()]
    assert elf_machine(Path(sys.executable).resolve()) == expected


def layer_files() -> list[Path]:
    return [p for p in LAYER.rglob("*") if p.is_file()]


def test_layer_shared_objects_are_arm64() -> None:
    # GIVEN the built layer
    shared = [p for p in layer_files() if p.suffix == ".so" or ".so." in p.name]
    # THEN it has native code (wrapt's, at least), and all of it is for aarch64
    assert shared, "no .so in the layer: this check would prove nothing"
    wrong = {str(p.relative_to(LAYER)): elf_machine(p) for p in shared if elf_machine(p) != EM_AARCH64}
    assert not wrong, f"not aarch64 (e_machine): {wrong}"


def test_layer_wheels_are_arm64_or_pure() -> None:
    # GIVEN every installed distribution's WHEEL metadata
    wheels = sorted(LAYER.glob("*.dist-info/WHEEL"))
    assert wheels, "no *.dist-info/WHEEL in the layer"
    for wheel in wheels:
        tags = [line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines() if line.startswith("Tag:")]
        assert tags, f"{wheel.parent.name} has no wheel tags"
        for tag in tags:
            python, abi, platform = tag.split("-")
            # THEN each is pure Python or built for Linux on aarch64, for CPython 3.13 where it is native
            assert platform == "any" or ("linux" in platform and platform.endswith("aarch64")), (
                f"{wheel.parent.name}: {tag}"
            )
            if platform != "any":
                assert python == "cp313" or abi == "abi3", f"{wheel.parent.name}: {tag}"


def test_layer_holds_inqueue_as_in_source() -> None:
    # GIVEN the library's source files
    source = ROOT / "src" / "inqueue"
    expected = {p.relative_to(source) for p in source.rglob("*.py") if "__pycache__" not in p.parts}
    # THEN the layer holds exactly those, unchanged, under python/ (where Lambda puts layers on sys.path)
    built = LAYER / "inqueue"
    shipped = {p.relative_to(built) for p in built.rglob("*.py")}
    assert shipped == expected
    for rel in expected:
        assert (built / rel).read_bytes() == (source / rel).read_bytes(), f"stale build: {rel}"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions() -> dict[str, Path]:
    """The layer's installed distributions: canonical name -> its .dist-info folder."""
    found = {}
    for info in LAYER.glob("*.dist-info"):
        name = next(line for line in (info / "METADATA").read_text().splitlines() if line.startswith("Name:"))
        found[canonical(name.split(":", 1)[1].strip())] = info
    return found


def runtime_closure() -> set[str]:
    """src/requirements-layer.txt and, through each one's Requires-Dist, everything it needs on Lambda."""
    from packaging.requirements import Requirement

    installed = distributions()
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines()]
    todo = [canonical(Requirement(line).name) for line in lines if line]
    closure: set[str] = set()
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        if name not in installed:
            continue  # reported by the test: a requirement the layer lacks
        for line in (installed[name] / "METADATA").read_text().splitlines():
            if line.startswith("Requires-Dist:"):
                requirement = Requirement(line.split(":", 1)[1].strip())
                if requirement.marker is None or requirement.marker.evaluate(LAMBDA_MARKERS):
                    todo.append(canonical(requirement.name))
    return closure


def test_layer_holds_exactly_the_pinned_requirements_and_what_they_need() -> None:
    # GIVEN the layer's requirements and the dependencies each declares for Lambda's platform
    needed = runtime_closure()

    # THEN the layer's distributions are exactly those: nothing missing, nothing extra (no rich, no CLI)
    assert set(distributions()) == needed


def test_layer_holds_nothing_but_inqueue_and_its_distributions_files() -> None:
    # GIVEN every top-level entry each installed distribution's RECORD accounts for
    accounted = {"inqueue", "__pycache__"}
    for info in distributions().values():
        accounted.add(info.name)
        accounted |= {line.split(",")[0].split("/")[0] for line in (info / "RECORD").read_text().splitlines()}

    # THEN the layer has nothing else: no operator tools, no runner, no console scripts (bin/)
    top = {path.name for path in LAYER.iterdir()}
    assert top - accounted == set()
    assert not {"inqueue_ops", "inqueue_local", "bin"} & top
    assert not (LAYER / "inqueue" / "cli.py").exists()
    assert not (LAYER / "inqueue" / "dlq.py").exists()


def test_layer_has_no_dev_tooling() -> None:
    top = {p.name.split("-")[0].lower() for p in LAYER.iterdir()}
    assert not top & set(DEV_TOOLING), f"dev tooling in the layer: {sorted(top & set(DEV_TOOLING))}"
    stubs = sorted(p.name for p in LAYER.glob("*.dist-info") if p.name.split("-")[0].endswith("_stubs"))
    assert not stubs, stubs


def test_every_module_ships_bytecode_lambda_can_use_from_a_read_only_layer() -> None:
    # /opt is read-only and zip timestamps are not the build's, so each module needs a 3.13
    # .pyc that is hash-based and unchecked (PEP 552 flags == 0b01), or Lambda recompiles it.
    missing, checked = [], []
    for source in layer_files():
        if source.suffix != ".py":
            continue
        compiled = Path(importlib.util.cache_from_source(str(source)))
        if not compiled.exists():
            missing.append(str(source.relative_to(LAYER)))
            continue
        header = compiled.read_bytes()[:8]
        if header[:4] != importlib.util.MAGIC_NUMBER or int.from_bytes(header[4:8], "little") != 0b01:
            checked.append(str(compiled.relative_to(LAYER)))
    assert not missing[:5], f"{len(missing)} modules without bytecode, e.g. {missing[:5]}"
    assert not checked[:5], f"bytecode that is not 3.13 unchecked-hash: {checked[:5]}"


def test_layer_fits_its_budget() -> None:
    size = sum(p.stat().st_size for p in layer_files())
    assert size < LAYER_BUDGET_BYTES, f"layer is {size / 2**20:.1f} MiB unzipped"


def test_layer_imports_with_nothing_else() -> None:
    # GIVEN a Python with only the standard library and the layer on its path (-S: no site-packages;
    # -B: the import must not leave bytecode in the build)
    code = (
        "import importlib, pkgutil, sys\n"
        f"sys.path.insert(0, {str(LAYER)!r})\n"
        "import inqueue\n"
        "assert inqueue.__file__.startswith(sys.path[0]), inqueue.__file__\n"
        "for mod in pkgutil.walk_packages(inqueue.__path__, 'inqueue.'):\n"
        "    importlib.import_module(mod.name)\n"
        "import aws_lambda_powertools.utilities.batch, aws_lambda_powertools.utilities.parameters\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1"}
    # WHEN every inqueue module is imported (the arm64 .so files cannot load here; wrapt falls back to Python)
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-S", "-B", "-c", code], capture_output=True, text=True, env=env, check=False, timeout=120
    )
    # THEN nothing the library needs is missing from the layer
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_function_holds_only_its_own_code(function: str) -> None:
    # GIVEN the function's source folder
    source = FUNCTIONS[function]
    expected = {p.relative_to(source) for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    # THEN the built function is those files and nothing else: its dependencies come from the layer
    built = BUILD / function
    shipped = {p.relative_to(built) for p in built.rglob("*") if p.is_file()}
    assert shipped == expected
    assert all(p.suffix == ".py" for p in shipped), sorted(map(str, shipped))
