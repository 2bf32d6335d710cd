"""Compares two sets of runs cell by cell: a ratio, its confidence interval, and a verdict.

Method. A cell is (impl, workload, size, phase); each side (BASE, HEAD) has one or more runs
of it, and each run stored its raw per-round times (`samples_s`). A run is summed up by its
median round, which shrugs off the rounds a neighbour's burst spoiled. The ratio is
HEAD / BASE (above 1: HEAD is slower).

Several runs a side: the run is the unit, because rounds of one run share that run's luck
(its moment's load, clock and cache state) and are not independent of one another. The
ratio is the geometric mean of the HEAD run medians over that of the BASE run medians, and
its interval a Welch t-interval on the log run medians (Student's, with the spread of the
other side, when a side has a single run). Paired (`ab`'s runs, made A B A B
...): run i of BASE and run i of HEAD ran back to back, so the load of those seconds hit
both; the ratio is the geometric mean of the pairs' ratios and the interval a paired
t-interval on their logs, so drift cancels within a pair instead of widening the interval.
The t quantile with n - 1 degrees of freedom keeps the interval honest with three runs,
where a bootstrap over three values would be far too narrow.

One run a side: the noise within the run is all there is to see; the interval is a
percentile bootstrap of the ratio of the two median rounds, with a seeded generator, so the
same results always give the same verdict. It cannot see run-to-run drift: the threshold
guards against it, and `ab` makes several runs for this reason.

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
from scipy import stats

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
    """A side's time for one cell: the geometric mean of its runs' median rounds."""
    return float(np.exp(np.mean(np.log([np.median(samples) for samples in runs]))))


def _t_interval(mean: float, se: float, df: float, confidence: float) -> tuple:
    """exp of mean -/+ t quantile x standard error: (ratio, low, high)."""
    if se == 0:
        return float(np.exp(mean)), float(np.exp(mean)), float(np.exp(mean))
    half = stats.t.ppf(1 - (1 - confidence) / 2, df) * se
    return float(np.exp(mean)), float(np.exp(mean - half)), float(np.exp(mean + half))


def _between_runs(base_runs: list, head_runs: list, confidence: float, paired: bool) -> tuple:
    log_base, log_head = (np.log([np.median(r) for r in runs]) for runs in (base_runs, head_runs))
    if paired:
        if len(log_base) != len(log_head):
            raise ValueError(f"paired runs need as many on each side: got {len(log_base)} "
                             f"BASE and {len(log_head)} HEAD")
        diff = log_head - log_base
        return _t_interval(diff.mean(), diff.std(ddof=1) / np.sqrt(len(diff)),
                           len(diff) - 1, confidence)
    shift = log_head.mean() - log_base.mean()
    if min(len(log_base), len(log_head)) == 1:  # one run on a side: assume equal spreads
        df = len(log_base) + len(log_head) - 2
        pooled = (np.sum((log_base - log_base.mean()) ** 2)
                  + np.sum((log_head - log_head.mean()) ** 2)) / df
        se = np.sqrt(pooled * (1 / len(log_base) + 1 / len(log_head)))
        return _t_interval(shift, se, df, confidence)
    var_base, var_head = (x.var(ddof=1) / len(x) for x in (log_base, log_head))
    se = np.sqrt(var_base + var_head)
    df = (var_base + var_head) ** 2 / (var_base**2 / (len(log_base) - 1)
                                       + var_head**2 / (len(log_head) - 1)) if se else 1.0
    return _t_interval(shift, se, df, confidence)


def _within_run(base: np.ndarray, head: np.ndarray, confidence: float, resamples: int,
                seed: int) -> tuple:
    """One run a side: percentile bootstrap of the ratio of median rounds."""
    rng = np.random.default_rng(seed)
    base_B, head_B = (np.median(x[rng.integers(0, len(x), (resamples, len(x)))], axis=1)
                      for x in (base, head))
    tail = (1 - confidence) / 2
    low, high = np.quantile(head_B / base_B, [tail, 1 - tail])
    return float(np.median(head) / np.median(base)), float(low), float(high)


def ratio_ci(base_runs: list, head_runs: list, confidence: float = CONFIDENCE,
             resamples: int = RESAMPLES, seed: int = 0, paired: bool = False) -> tuple:
    """-> (ratio, ci_low, ci_high) of HEAD / BASE for one cell. A side is a list of runs,
    each a sequence of per-round seconds; paired: run i of each side ran back to back."""
    base_runs, head_runs = ([np.asarray(r, dtype=float) for r in runs]
                            for runs in (base_runs, head_runs))
    if len(base_runs) == 1 and len(head_runs) == 1:
        return _within_run(base_runs[0], head_runs[0], confidence, resamples, seed)
    return _between_runs(base_runs, head_runs, confidence, paired)


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
    of runs on each side (a run failed) falls back to the unpaired comparison.
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
            f"{confidence:.0%} confidence interval)")


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
