"""``python -m bench [--only ingress,worker] [--strict]``: run the benchmark sections, print one table.

A section is a module ``bench/<name>.py`` with ``run(report) -> None`` that adds rows with
``report.add(...)``. Each runs in a fresh interpreter so that one section's imports, patches
and heap do not tilt the next one's figures; the rows come back as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Report, Row

# In order; a section whose module does not exist (yet) is skipped.
SECTIONS = ("ingress", "worker", "calls", "destinations", "redrive", "pipeline")
ROOT = Path(__file__).resolve().parent.parent


def available() -> list[str]:
    return [name for name in SECTIONS if importlib.util.find_spec(f"bench.{name}") is not None]


def run_section_here(name: str, rows_path: str) -> None:
    report = Report(section=name)
    importlib.import_module(f"bench.{name}").run(report)
    Path(rows_path).write_text(json.dumps([dataclasses.asdict(row) for row in report.rows]))


def run_section_child(name: str, report: Report) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        rows_path = os.path.join(tmp, "rows.json")
        started = time.perf_counter()
        subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bench", "--section", name, "--rows-to", rows_path], cwd=ROOT, check=True
        )
        elapsed = time.perf_counter() - started
        report.rows.extend(Row(**row) for row in json.loads(Path(rows_path).read_text()))
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated sections (default: all of %(choices)s)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--section", help=argparse.SUPPRESS)
    parser.add_argument("--rows-to", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.section:
        run_section_here(args.section, args.rows_to)
        return 0

    found = available()
    wanted = [name.strip() for name in args.only.split(",") if name.strip()] or found
    unknown = [name for name in wanted if name not in found]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; available: {', '.join(found)}")

    report = Report()
    for name in wanted:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        elapsed = run_section_child(name, report)
        print(f"bench: {name} done in {elapsed:.0f} s", file=sys.stderr, flush=True)
    print(
        f"\nInqueue benchmarks (python {sys.version.split()[0]}, {os.cpu_count()} cpus; medians of interleaved runs)\n"
    )
    print(report.render())
    return 1 if args.strict and report.missed else 0


if __name__ == "__main__":
    sys.exit(main())
