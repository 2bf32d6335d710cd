"""A comparison (harness/compare/verdicts.py) as text: the terminal table and the markdown of
a pull-request comment, with the grid's geometric mean (overall.py), and the number formats
the report shares."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.compare.overall import FDR, geometric_mean
from harness.compare.stats import CONFIDENCE
from harness.compare.verdicts import COUNT_FLOOR, COUNT_THRESHOLD, THRESHOLD, regressed

HEADER = ["impl", "workload", "size", "phase", "base", "head", "head/base", "CI", "q", "verdict"]
UNSTABLE = "!"  # after a verdict: a run of either side was unstable (its unstable_reason)


def format_seconds(seconds, missing: str = "-") -> str:
    """1.5e-05 -> '15 us': three significant digits in the unit that reads best."""
    if seconds is None or not np.isfinite(seconds):
        return missing
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_count(count, missing: str = "-") -> str:
    """2277186 -> '2.28M instr': three significant digits."""
    if count is None or not np.isfinite(count):
        return missing
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g}{unit} instr"
    return f"{count:.3g} instr"


def _lines(result: pd.DataFrame) -> list:
    """The table's cells as strings, one list per row (a count's ratio to 4 decimals)."""
    rows = []
    for r in result.itertuples(index=False):
        counted = r.measure == "instructions"
        digits = 4 if counted else 3
        ci = "-" if not np.isfinite(r.ratio) else f"[{r.ci_low:.{digits}f}, {r.ci_high:.{digits}f}]"
        ratio = "-" if not np.isfinite(r.ratio) else f"{r.ratio:.{digits}f}"
        q = f"{r.q:.2g}" if np.isfinite(r.q) else "-"
        base, head = (
            (format_count(r.base_n), format_count(r.head_n))
            if counted
            else (format_seconds(r.base_s), format_seconds(r.head_s))
        )
        marked = f"{r.verdict} {UNSTABLE}" if getattr(r, "unstable", False) else r.verdict
        rows.append([r.impl, r.workload, r.size, r.phase, base, head, ratio, ci, q, marked])
    return rows


def summary_line(
    result: pd.DataFrame,
    threshold: float,
    confidence: float,
    count_threshold: float = COUNT_THRESHOLD,
    fdr: float | None = FDR,
) -> str:
    counts = result["verdict"].value_counts()
    parts = ", ".join(f"{n} {v}" for v, n in counts.items())
    unstable = int(result["unstable"].eq(True).sum()) if "unstable" in result else 0
    if unstable:
        parts += f"; {unstable} marked {UNSTABLE}: a run of either side was unstable"
    counted = result["measure"] == "instructions"
    tested = int(result["p"].notna().sum())
    control = (
        f"q <= {fdr:.0%} (Benjamini-Hochberg over {tested} timed cells)"
        if fdr is not None
        else "no false discovery rate control"
    )
    rules = (
        [f"threshold {threshold:.0%}, {confidence:.0%} confidence interval, {control}"]
        if counted.empty or not counted.all()
        else []
    )
    if counted.any():
        rules.append(
            f"instruction counts: threshold {count_threshold:.1%} and {COUNT_FLOOR:,} a call"
        )
    return f"{len(result)} cells: {parts} ({'; '.join(rules)})"


def geometric_mean_lines(result: pd.DataFrame, confidence: float) -> list:
    """One line per measure: the geometric mean of head/base over its cells, with its interval."""
    lines = []
    for measure, what in (("time", "timed"), ("instructions", "counted")):
        ratio, low, high, cells = geometric_mean(
            result.loc[result["measure"] == measure, "ratio"], confidence
        )
        if not cells:
            continue
        interval = (
            f" [{low:.3f}, {high:.3f}] ({confidence:.0%} t-interval on the cells' log ratios)"
            if cells > 1
            else ""
        )
        lines.append(f"geometric mean head/base over {cells} {what} cells: {ratio:.3f}{interval}")
    return lines


def to_terminal(
    result: pd.DataFrame,
    threshold: float = THRESHOLD,
    confidence: float = CONFIDENCE,
    count_threshold: float = COUNT_THRESHOLD,
    fdr: float | None = FDR,
) -> str:
    rows = [HEADER, *_lines(result)]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(HEADER))]
    text = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    return "\n".join(
        [
            *text,
            "",
            *geometric_mean_lines(result, confidence),
            summary_line(result, threshold, confidence, count_threshold, fdr),
        ]
    )


def to_markdown(
    result: pd.DataFrame,
    base_label: str,
    head_label: str,
    threshold: float = THRESHOLD,
    confidence: float = CONFIDENCE,
    count_threshold: float = COUNT_THRESHOLD,
    fdr: float | None = FDR,
) -> str:
    """A pull-request comment: the verdict first, then the cells that moved, then all."""

    def table(rows):
        escaped = [[str(c).replace("|", "\\|") for c in r] for r in rows]
        return "\n".join(
            [
                "| " + " | ".join(HEADER) + " |",
                "|" + "---|" * len(HEADER),
                *("| " + " | ".join(r) + " |" for r in escaped),
            ]
        )

    lines = _lines(result)
    moved = [r for r, v in zip(lines, result["verdict"], strict=True) if v != "same"]
    head = (
        ":x: **significant regression**"
        if regressed(result)
        else ":white_check_mark: no significant regression"
    )
    means = [f"{line}." for line in geometric_mean_lines(result, confidence)]
    parts = [
        f"### nnladder benchmarks: `{head_label}` vs `{base_label}`",
        "",
        f"{head}. {summary_line(result, threshold, confidence, count_threshold, fdr)}.",
        "",
        *([*means, ""] if means else []),
    ]
    if moved:
        parts += ["Cells that changed:", "", table(moved), ""]
    parts += ["<details><summary>All cells</summary>", "", table(lines), "", "</details>"]
    return "\n".join(parts)
