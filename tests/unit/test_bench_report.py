"""The benchmark table: how rows are judged against their goals (no timing here, only arithmetic)."""

from __future__ import annotations

from bench.report import Report


def test_a_ratio_goal_is_met_at_or_under_the_goal_and_missed_over_it() -> None:
    # GIVEN rows whose ratio to the baseline is 1.1 and 1.3 against a 1.2 goal
    report = Report(section="worker")
    met = report.add("fast", 11.0, "us", baseline=10.0, ratio_goal=1.2)
    missed = report.add("slow", 13.0, "us", baseline=10.0, ratio_goal=1.2)

    # THEN one is met, the other missed, and the table says so
    assert met.met is True
    assert missed.met is False
    assert report.missed == [missed]
    table = report.render()
    assert "worker: slow" in table
    assert "MISS" in table
    assert "1 of 2 goals met" in table


def test_an_absolute_goal_bounds_the_value_and_a_row_without_goal_is_information() -> None:
    report = Report()
    warm = report.add("warm", 149.0, "us", goal=150)
    info = report.add("decorators", 15.0, "us")

    assert warm.met is True
    assert info.met is None
    assert info.ratio is None


def test_samples_from_alternating_rounds_are_compared_round_by_round() -> None:
    # GIVEN a subject always 10% slower than the baseline of the same round, under drifting load
    baseline = [100.0, 200.0, 300.0, 400.0, 500.0]
    subject = [b * 1.1 for b in baseline]

    # WHEN they become a row
    row = Report().add_samples("cold", subject, "ms", baseline=baseline, ratio_goal=1.15)

    # THEN the value is the median, and the ratio is the per-round one
    assert row.value == 330.0
    assert row.baseline == 300.0
    assert row.ratio is not None
    assert abs(row.ratio - 1.1) < 1e-9
    assert row.met is True
    assert row.runs == 5


def test_a_run_with_a_wide_spread_says_it_should_be_repeated() -> None:
    report = Report()
    report.add("steady", 100.0, "us", spread=2.0)
    assert "rerun" not in report.render()

    report.add("disturbed", 100.0, "us", spread=30.0)
    assert "1 rows spread over 10%" in report.render()
