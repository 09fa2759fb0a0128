"""The runtime library stands alone: nothing in ``inqueue`` imports the operator tools, the runner or the benchmarks.

Lambda ships ``inqueue`` and nothing else; an import of ``inqueue_ops``, ``inqueue_local``
or ``bench`` from it would either fail on Lambda or drag dev tooling into the layer.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "src" / "inqueue"
FORBIDDEN = ("inqueue_ops", "inqueue_local", "bench")
MODULE_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


def imported_names(path: Path) -> set[str]:
    """Every module a file names: import statements anywhere (also inside functions) and module-path strings."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.match(node.value):
            names.add(node.value)  # importlib.import_module("inqueue.sources.github") and the like
    return names


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
    assert {name for name in imported_names(lazy) | imported_names(by_name) if forbidden(name)} == {
        "inqueue_ops.dlq",
        "bench.ingress",
        "inqueue_local.runner",
    }


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
