"""Compares two sets of runs cell by cell: a ratio, its confidence interval, and a verdict.

Method. A cell is (impl, workload, size, phase); each side (BASE, HEAD) has one or more runs
of it, and each run stored its raw per-round times (`samples_s`). A side's time is the median
over its runs of each run's median round: the median round shrugs off the rounds a
neighbour's burst spoiled, and the median over runs (of three or more) shrugs off a whole
spoiled run; load on a shared machine only ever slows a run down. The ratio is
HEAD / BASE (above 1: HEAD is slower).

The confidence interval is a two-level percentile bootstrap: resample the runs of each side
with replacement, and within each chosen run resample its rounds with replacement, then take
the ratio of the two sides' times; the interval is the central `confidence` mass of those
ratios. Resampling runs carries the run-to-run drift into the interval whenever a side has
several runs; with one run a side it is the ordinary bootstrap of the median, which sees
only the noise within that run. The generator is seeded: the same results always give the
same verdict.

Paired (`ab`'s runs, made A B A B ...): run i of BASE and run i of HEAD ran back to back, so
the load of those seconds hit both. The ratio is then the median over pairs of each pair's
ratio of run medians, and the bootstrap resamples pairs (both runs of a pair together), then
rounds: the machine's drift cancels within a pair instead of widening the interval.

Verdict: "slower" needs both that the ratio passes the threshold (ratio > 1 + threshold)
and that the interval lies wholly above 1 (significant); "faster" is the mirror
(ratio < 1 / (1 + threshold), interval wholly below 1); anything else is "same". A cell
stored on one side only is "new" or "gone"; one not timed on both sides shows its statuses
("ok -> over_budget", or "unsupported" when both agree), and one that went from ok to wrong
or error is "broken".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["impl", "workload", "size", "phase"]
THRESHOLD = 0.10
CONFIDENCE = 0.95
RESAMPLES = 2000
BROKEN = ("wrong", "error")


def _run_samples(rows: pd.DataFrame) -> list:
    """One array of per-round seconds per run (ok rows only, oldest run first)."""
    rows = rows.sort_values(["timestamp", "run_id"], kind="stable")
    return [np.asarray(s, dtype=float) for s in rows["samples_s"]
            if isinstance(s, (list, tuple, np.ndarray)) and len(s)]


def side_time(runs: list) -> float:
    """A side's time for one cell: the median over runs of each run's median round."""
    return float(np.median([np.median(samples) for samples in runs]))


def _round_medians(runs: list, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Per run, bootstrap replicates of its median round: shape (runs, resamples)."""
    return np.stack([
        np.median(samples[rng.integers(0, len(samples), (resamples, len(samples)))], axis=1)
        for samples in runs])


def ratio_ci(base_runs: list, head_runs: list, confidence: float = CONFIDENCE,
             resamples: int = RESAMPLES, seed: int = 0, paired: bool = False) -> tuple:
    """-> (ratio, ci_low, ci_high) of HEAD / BASE for one cell. A side is a list of runs,
    each a sequence of per-round seconds; paired: run i of each side ran back to back."""
    rng = np.random.default_rng(seed)
    base_runs, head_runs = ([np.asarray(r, dtype=float) for r in runs]
                            for runs in (base_runs, head_runs))
    base_RB, head_RB = (_round_medians(runs, rng, resamples) for runs in (base_runs, head_runs))
    if paired:
        if len(base_runs) != len(head_runs):
            raise ValueError(f"paired runs need as many on each side: got {len(base_runs)} "
                             f"BASE and {len(head_runs)} HEAD")
        ratio = float(np.median([np.median(h) / np.median(b)
                                 for b, h in zip(base_runs, head_runs, strict=True)]))
        chosen_RB = rng.integers(0, len(base_runs), base_RB.shape)
        boot_B = np.median(np.take_along_axis(head_RB, chosen_RB, axis=0)
                           / np.take_along_axis(base_RB, chosen_RB, axis=0), axis=0)
    else:
        ratio = side_time(head_runs) / side_time(base_runs)
        boot_B = np.median(np.take_along_axis(
            head_RB, rng.integers(0, len(head_runs), head_RB.shape), axis=0), axis=0) / \
            np.median(np.take_along_axis(
                base_RB, rng.integers(0, len(base_runs), base_RB.shape), axis=0), axis=0)
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot_B, [tail, 1 - tail])
    return ratio, float(low), float(high)


def verdict(ratio: float, low: float, high: float, threshold: float = THRESHOLD) -> str:
    if ratio > 1 + threshold and low > 1:
        return "slower"
    if ratio < 1 / (1 + threshold) and high < 1:
        return "faster"
    return "same"


def _status(rows: pd.DataFrame) -> str:
    """A side's status for a cell: ok if any run timed it, else the statuses seen."""
    seen = sorted(set(rows["status"].dropna()))
    return "ok" if "ok" in seen else "/".join(seen) or "absent"


def compare(base: pd.DataFrame, head: pd.DataFrame, threshold: float = THRESHOLD,
            confidence: float = CONFIDENCE, paired: bool = False) -> pd.DataFrame:
    """Every cell of either side: base_s, head_s, ratio, ci_low, ci_high, verdict.

    `base` and `head` are result rows (one or more runs each); rows of workload "train"
    carry no timing samples and are left out. paired: the runs alternated (as `ab` makes
    them), so the i-th oldest of each side form a pair; a cell timed in a different number
    of runs on each side falls back to the unpaired comparison.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if threshold < 0:
        raise ValueError(f"threshold must be 0 or more (0.10 means 10%), got {threshold}")
    sides = {name: rows[rows["workload"] != "train"] for name, rows in
             (("base", base), ("head", head))}
    cells = pd.concat([s[KEYS] for s in sides.values()]).drop_duplicates()
    groups = {name: dict(list(s.groupby(KEYS, sort=False))) for name, s in sides.items()}
    empty = base.iloc[0:0]
    out = []
    for key in cells.itertuples(index=False, name=None):
        base_rows, head_rows = (groups[n].get(key, empty) for n in ("base", "head"))
        row = dict(zip(KEYS, key, strict=True), base_status=_status(base_rows),
                   head_status=_status(head_rows), base_s=np.nan, head_s=np.nan,
                   ratio=np.nan, ci_low=np.nan, ci_high=np.nan)
        base_runs = _run_samples(base_rows[base_rows["status"] == "ok"])
        head_runs = _run_samples(head_rows[head_rows["status"] == "ok"])
        if base_runs and head_runs:
            pairs = paired and len(base_runs) == len(head_runs)
            ratio, low, high = ratio_ci(base_runs, head_runs, confidence, paired=pairs)
            row.update(base_s=side_time(base_runs), head_s=side_time(head_runs), ratio=ratio,
                       ci_low=low, ci_high=high, verdict=verdict(ratio, low, high, threshold))
        elif row["base_status"] == "ok" and row["head_status"] in BROKEN:
            row["verdict"] = "broken"
        elif base_rows.empty or head_rows.empty:
            row["verdict"] = "new" if base_rows.empty else "gone"
        elif row["base_status"] == row["head_status"]:
            row["verdict"] = row["base_status"]  # not timed on either side, for one reason
        else:
            row["verdict"] = f"{row['base_status']} -> {row['head_status']}"
        out.append(row)
    return pd.DataFrame(out, columns=[*KEYS, "base_status", "head_status", "base_s", "head_s",
                                      "ratio", "ci_low", "ci_high", "verdict"])


def regressed(result: pd.DataFrame) -> bool:
    """True when a cell is significantly slower past the threshold, or broke."""
    return bool(result["verdict"].isin(["slower", "broken"]).any())


def format_seconds(seconds, missing: str = "-") -> str:
    """1.5e-05 -> '15 us': three significant digits in the unit that reads best."""
    if seconds is None or not np.isfinite(seconds):
        return missing
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _lines(result: pd.DataFrame) -> list:
    """The table's cells as strings, one list per row."""
    rows = []
    for r in result.itertuples(index=False):
        ci = "-" if not np.isfinite(r.ratio) else f"[{r.ci_low:.3f}, {r.ci_high:.3f}]"
        ratio = "-" if not np.isfinite(r.ratio) else f"{r.ratio:.3f}"
        rows.append([r.impl, r.workload, r.size, r.phase, format_seconds(r.base_s),
                     format_seconds(r.head_s), ratio, ci, r.verdict])
    return rows


HEADER = ["impl", "workload", "size", "phase", "base", "head", "head/base", "CI", "verdict"]


def summary_line(result: pd.DataFrame, threshold: float, confidence: float) -> str:
    counts = result["verdict"].value_counts()
    parts = ", ".join(f"{n} {v}" for v, n in counts.items())
    return (f"{len(result)} cells: {parts} (threshold {threshold:.0%}, "
            f"{confidence:.0%} bootstrap interval)")


def to_terminal(result: pd.DataFrame, threshold: float = THRESHOLD,
                confidence: float = CONFIDENCE) -> str:
    rows = [HEADER, *_lines(result)]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(HEADER))]
    text = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]
    return "\n".join([*text, "", summary_line(result, threshold, confidence)])


def to_markdown(result: pd.DataFrame, base_label: str, head_label: str,
                threshold: float = THRESHOLD, confidence: float = CONFIDENCE) -> str:
    """A pull-request comment: the verdict first, then the cells that moved, then all."""
    def table(rows):
        escaped = [[str(c).replace("|", "\\|") for c in r] for r in rows]
        return "\n".join(["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER),
                          *("| " + " | ".join(r) + " |" for r in escaped)])

    lines = _lines(result)
    moved = [r for r in lines if r[-1] != "same"]
    head = (":x: **significant regression**" if regressed(result)
            else ":white_check_mark: no significant regression")
    parts = [f"### nnladder benchmarks: `{head_label}` vs `{base_label}`", "",
             f"{head}. {summary_line(result, threshold, confidence)}.", ""]
    if moved:
        parts += ["Cells that changed:", "", table(moved), ""]
    parts += ["<details><summary>All cells</summary>", "", table(lines), "", "</details>"]
    return "\n".join(parts)
