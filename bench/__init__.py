"""Benchmarks: ``make bench`` prints one table of figures, baselines measured in the same run, and goals."""
