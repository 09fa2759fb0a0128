"""The runtime library is exactly what the functions run, and stands alone.

Lambda ships ``inqueue`` (the layer) and nothing else: every module in it is one the three
functions import, directly or not, and none imports the operator tools, the runner or the
benchmarks (an import of ``inqueue_ops``, ``inqueue_local`` or ``bench`` would either fail on
Lambda or drag dev tooling into the layer).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.imports import FUNCTIONS, imported_names, reached

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "src" / "inqueue"
FORBIDDEN = ("inqueue_ops", "inqueue_local", "bench")


def forbidden(name: str) -> bool:
    return any(name == top or name.startswith(f"{top}.") for top in FORBIDDEN)


def test_no_runtime_module_names_the_operator_tools_the_runner_or_the_benchmarks() -> None:
    # GIVEN every module of the runtime library
    modules = sorted(RUNTIME.rglob("*.py"))
    assert len(modules) > 20, "the scan found too few modules to prove anything"

    # WHEN their imports (and module-path strings) are read
    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in imported_names(path) if forbidden(name))
        for path in modules
    }

    # THEN none names inqueue_ops, inqueue_local or bench
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_scan_would_see_a_forbidden_import_inside_a_function(tmp_path: Path) -> None:
    # GIVEN a module that imports the operator tools lazily, and one that loads the runner by name
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    from inqueue_ops.dlq import DeadLetters\n    import bench.ingress\n")
    by_name = tmp_path / "by_name.py"
    by_name.write_text("import importlib\nimportlib.import_module('inqueue_local.runner')\n")

    # THEN the scan reports all three
    found = {name for name in imported_names(lazy) | imported_names(by_name) if forbidden(name)}
    assert {"inqueue_ops.dlq", "bench.ingress", "inqueue_local.runner"} <= found


def test_importing_every_runtime_module_loads_none_of_them() -> None:
    # GIVEN a fresh interpreter that imports every inqueue module, the source kinds included
    code = (
        "import importlib, pkgutil, sys\n"
        "import inqueue, inqueue.sources\n"
        "for mod in pkgutil.walk_packages(inqueue.__path__, 'inqueue.'):\n"
        "    importlib.import_module(mod.name)\n"
        "for name in inqueue.sources.KINDS.values():\n"
        "    importlib.import_module(name)\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "AWS_DEFAULT_REGION": "us-east-1", "PATH": ""},
    )

    # THEN none of the operator tools, the runner or the benchmarks came along
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""


# Shipped ahead of the code that runs it (none now: the worker delivers to destinations since issue 11's
# integration step). The test below fails once a function imports one: drop it from here then.
AHEAD_OF_USE: set[str] = set()


def test_every_runtime_module_is_one_the_functions_run() -> None:
    # GIVEN the three functions' code (ingress, worker with its processors, status)
    assert {path.parent.name for path in FUNCTIONS} == {"ingress", "worker", "status"}

    # WHEN what they import is followed through the runtime library (lazy imports and source kinds included)
    run = {path.relative_to(RUNTIME) for path in reached(FUNCTIONS)}

    # THEN that is every module of it: nothing ships in the layer that Lambda never runs
    every = {path.relative_to(RUNTIME) for path in RUNTIME.rglob("*.py")}
    ahead = {path for path in every if path.parts[0] in AHEAD_OF_USE}
    assert run == every - ahead
    assert not run & ahead, "a function runs it now: remove it from AHEAD_OF_USE"


def test_a_module_no_function_imports_would_be_found(tmp_path: Path) -> None:
    # GIVEN a library with a module nothing imports (as the CLI was)
    package = tmp_path / "inqueue"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "used.py").write_text("import json\n")
    (package / "cli.py").write_text("from inqueue.used import x\n")
    app = tmp_path / "app.py"
    app.write_text("def handler():\n    from inqueue.used import x\n")

    # THEN the walk reaches the used module and its package, not the other
    assert {path.name for path in reached([app], src=tmp_path)} == {"__init__.py", "used.py"}
