"""Comparing two sets of runs, in the order the data moves:

- stats.py: one cell's ratio HEAD / BASE, its confidence interval and p-value (the method is
  there) and a side's time;
- overall.py: the grid as a whole: q-values over its cells (the false discovery rate), the
  geometric mean ratio and its interval;
- verdicts.py: every cell of two tables of runs, and what each means (slower, same, broken...);
- render.py: the comparison as a terminal table or a pull-request comment;
- ab.py: two commits run interleaved, each in its own worktree, for the above to compare.

Callers import the package, `from harness import compare`, and use the names below
(compare.compare, compare.to_markdown, compare.THRESHOLD, ...); ab is imported by name.
"""

from harness.compare.overall import FDR, geometric_mean, q_values
from harness.compare.render import (
    format_count,
    format_seconds,
    summary_line,
    to_markdown,
    to_terminal,
)
from harness.compare.stats import CONFIDENCE, count_ratio, ratio_test, side_time
from harness.compare.verdicts import (
    COUNT_FLOOR,
    COUNT_THRESHOLD,
    THRESHOLD,
    compare,
    regressed,
    verdict,
)

__all__ = [
    "CONFIDENCE",
    "COUNT_FLOOR",
    "COUNT_THRESHOLD",
    "FDR",
    "THRESHOLD",
    "compare",
    "count_ratio",
    "format_count",
    "format_seconds",
    "geometric_mean",
    "q_values",
    "ratio_test",
    "regressed",
    "side_time",
    "summary_line",
    "to_markdown",
    "to_terminal",
    "verdict",
]
