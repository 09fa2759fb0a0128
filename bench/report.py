"""The benchmark report: sections add rows, and one table is printed at the end.

A row is a median with its spread, optionally a baseline measured in the same run, and a
goal: ``goal`` bounds the value itself, ``ratio_goal`` bounds value / baseline. Lower is
better for every figure here (time, memory), so a goal is met when the figure is at or
under it. Goals are judged here and nowhere else: tests never assert on timings.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

# Half the interquartile range above this share of the median marks a run disturbed by other load.
NOISY = 0.10


@dataclass(frozen=True, slots=True)
class Row:
    section: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    goal: float | None = None
    ratio_goal: float | None = None
    spread: float | None = None  # half the interquartile range, in the value's unit
    runs: int | None = None
    note: str = ""
    paired_ratio: float | None = None  # median of per-round subject/baseline ratios, when runs were paired

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        """True or False when the row has a goal; None when it is information only."""
        checks: list[bool] = []
        if self.goal is not None:
            checks.append(self.value <= self.goal)
        if self.ratio_goal is not None:
            ratio = self.ratio
            checks.append(ratio is not None and ratio <= self.ratio_goal)
        return all(checks) if checks else None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    section: str = ""

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        baseline: float | None = None,
        ratio_goal: float | None = None,
        *,
        goal: float | None = None,
        spread: float | None = None,
        runs: int | None = None,
        note: str = "",
        paired_ratio: float | None = None,
    ) -> Row:
        """One row. ``goal`` bounds the value, ``ratio_goal`` bounds value / baseline; lower is better."""
        row = Row(
            section=self.section,
            name=name,
            value=float(value),
            unit=unit,
            baseline=None if baseline is None else float(baseline),
            goal=goal,
            ratio_goal=ratio_goal,
            spread=spread,
            runs=runs,
            note=note,
            paired_ratio=paired_ratio,
        )
        self.rows.append(row)
        return row

    def add_samples(
        self,
        name: str,
        samples: Sequence[float],
        unit: str,
        *,
        baseline: Sequence[float] | None = None,
        goal: float | None = None,
        ratio_goal: float | None = None,
        note: str = "",
    ) -> Row:
        """A row from raw samples: median and spread of each, baseline included.

        Samples taken in interleaved rounds are paired by index: the ratio is then the median of
        the per-round ratios, which cancels load that drifts across the run better than a ratio
        of two medians does.
        """
        paired = None
        if baseline is not None and len(baseline) == len(samples):
            paired = statistics.median(s / b for s, b in zip(samples, baseline, strict=True) if b)
        return self.add(
            name,
            statistics.median(samples),
            unit,
            baseline=None if baseline is None else statistics.median(baseline),
            goal=goal,
            ratio_goal=ratio_goal,
            spread=half_iqr(samples),
            runs=len(samples),
            note=note,
            paired_ratio=paired,
        )

    @property
    def missed(self) -> list[Row]:
        return [row for row in self.rows if row.met is False]

    def render(self) -> str:
        header = ("metric", "value", "± (IQR/2)", "baseline", "ratio", "goal", "", "n")
        lines = [header]
        for row in self.rows:
            lines.append(
                (
                    f"{row.section}: {row.name}" if row.section else row.name,
                    f"{_num(row.value)} {row.unit}",
                    "" if row.spread is None else f"{_num(row.spread)} ({_pct(row.spread, row.value)})",
                    "" if row.baseline is None else f"{_num(row.baseline)} {row.unit}",
                    "" if row.ratio is None else f"{row.ratio:.2f}x",
                    _goal(row),
                    {True: "ok", False: "MISS", None: ""}[row.met],
                    "" if row.runs is None else str(row.runs),
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        aligns = ("<", ">", ">", ">", ">", "<", "<", ">")
        out = []
        for index, line in enumerate(lines):
            out.append(
                "  ".join(f"{cell:{align}{width}}" for cell, align, width in zip(line, aligns, widths, strict=True))
            )
            if index == 0:
                out.append("  ".join("-" * width for width in widths))
        notes = [(row, row.note) for row in self.rows if row.note]
        if notes:
            out.append("")
            out.extend(f"  {row.section}: {row.name}: {note}" for row, note in notes)
        goals = [row for row in self.rows if row.met is not None]
        out.append("")
        out.append(
            "value and baseline: medians; ratio: median of per-round ratios where the two ran in alternating rounds"
        )
        noisy = [row for row in self.rows if row.spread is not None and row.value and row.spread / row.value > NOISY]
        if noisy:
            out.append(
                f"{len(noisy)} rows spread over {NOISY:.0%} of their value: the machine was busy; rerun to trust them"
            )
        out.append(f"{len(goals) - len(self.missed)} of {len(goals)} goals met")
        return "\n".join(out)


def half_iqr(samples: Sequence[float]) -> float:
    if len(samples) < 4:
        return (max(samples) - min(samples)) / 2
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return (q3 - q1) / 2


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _goal(row: Row) -> str:
    goals = []
    if row.goal is not None:
        goals.append(f"<= {_num(row.goal)} {row.unit}")
    if row.ratio_goal is not None:
        goals.append(f"<= {row.ratio_goal:.2f}x")
    return ", ".join(goals)
