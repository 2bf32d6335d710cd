"""The grid impl x workload x size x phase on pytest-benchmark.

Each cell passes the same correctness gate as `python -m harness run` before it is timed;
a wrong or failing cell fails its test, an unsupported, unavailable or over-budget one is
skipped with the reason (and recorded).
"""

from __future__ import annotations

import pytest

from harness.execute import lifecycle as runner
from harness.measure.timing import Stats


def test_cell(cell, grid, benchmark):
    impl, budget = grid.impl(cell.impl)
    row, fn = runner.prepare(impl, cell, budget)
    if fn is None:
        grid.rows.append(row)
        if row["status"] in ("wrong", "error"):
            pytest.fail(f"{row['status']}: {row['reason']}")
        pytest.skip(f"{row['status']}: {row['reason']}")
    benchmark.extra_info.update({k: row.get(k) for k in
                                 ("flops", "bytes", "rel_err", "peak_mem_bytes", "intensity")})
    sync = impl.sync
    benchmark(lambda: (fn(), sync()))
    if benchmark.enabled:
        metadata = benchmark.stats
        grid.rows.append(runner.finish(
            row, Stats(tuple(metadata.stats.data), metadata.iterations), budget))
