"""The grid impl x workload x size x phase on pytest-benchmark.

Each cell lives the one life of harness/execute/lifecycle.py, its measurement taken by
pytest-benchmark's fixture: the same correctness gate as `python -m harness run` first. A
wrong or failing cell fails its test; an unsupported, unavailable or over-budget one is
skipped with the reason (and recorded).
"""

from __future__ import annotations

import pytest

from harness.execute import lifecycle
from harness.measure.timing import Stats


class Benchmarked(lifecycle.Measurement):
    """pytest-benchmark's rounds (or, untimed, one call: the CI smoke) as the row's times."""

    def __init__(self, benchmark):
        self.benchmark = benchmark

    def measure(self, impl, fn, row):
        self.benchmark.extra_info.update(
            {
                k: row.get(k)
                for k in (
                    "flops",
                    "bytes",
                    "rel_err",
                    "err_ratio",
                    "peak_mem_bytes",
                    "peak_rss_bytes",
                    "intensity",
                )
            }
        )
        sync = impl.sync
        self.benchmark(lambda: (fn(), sync()))
        if not self.benchmark.enabled:
            return {}
        stats = self.benchmark.stats
        return Stats(tuple(stats.stats.data), stats.iterations).as_dict()


def test_cell(cell, grid, benchmark):
    impl, budget = grid.impl(cell.impl)
    row = lifecycle.run_cell(impl, cell, budget, Benchmarked(benchmark), grid.ceilings)
    benchmark.extra_info["unstable_reason"] = row.get("unstable_reason")
    if row["status"] in ("wrong", "error"):
        grid.rows.append(row)
        pytest.fail(f"{row['status']}: {row['reason']}")
    if row["status"] != "ok":
        grid.rows.append(row)
        pytest.skip(f"{row['status']}: {row['reason']}")
    if benchmark.enabled:
        grid.rows.append(row)
