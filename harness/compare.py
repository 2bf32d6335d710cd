"""Compares two sets of runs cell by cell: a ratio, its confidence interval, and a verdict.

Method. A cell is (impl, workload, size, phase); each side (BASE, HEAD) has one or more runs
of it, and each run stored its raw per-round times (`samples_s`). The ratio is HEAD / BASE
(above 1: HEAD is slower).

Several runs a side: the run is the unit, because rounds of one run share that run's luck
(its moment's load, clock and cache state) and are not independent of one another. A run is
summed up by its fastest round (each round already averages many calls): other work on the
machine only ever adds time, so the fastest round is the least disturbed reading, where the
median still moves with a burst that lasts a third of the cell. A run whose fastest round is
still 25% slower than its side's fastest run was disturbed from start to end (on a shared
2-core VM one run in eight by 2x, five in eight in a busy minute) and is left out. Between
the remaining runs the comparison is by ranks: the ratio is the Hodges-Lehmann estimate (the
median of all HEAD/BASE ratios of run minima) and its interval the Mann-Whitney one around
it (exact distribution for small samples), so a run that is off by a little less still
counts as one slow run, not by how slow. Ranks need 4 runs a side for a 95% interval; with 2
or 3 a side it is Welch's t-interval on the logs of the run minima (Student's, with the
spread of the other side, when a side has a single run). `ab` makes 12 runs a side,
alternating A B A B ..., so drift over the minutes lands on both sides alike.

One run a side (or one left on each): the noise within the run is all there is to see; the
interval is a percentile bootstrap of the ratio of the two median rounds, with a seeded
generator, so the same results always give the same verdict. It cannot see run-to-run drift:
the threshold guards against it, and `ab` makes several runs for this reason.

Instruction counts (`run --instructions`, harness/measure/count.py) are compared as what they are:
near-exact. A cell's count on a side is the median over its runs, the ratio HEAD / BASE, and
the interval the range of ratios between any run of one side and any of the other (runs of
one commit agree to the instruction). Their threshold is COUNT_THRESHOLD, not the times' 10%,
and a change must also exceed COUNT_FLOOR instructions a call: any change to the code moves
the heap, and with it the alignment of the arrays that vectorized loops and memcpy peel to,
by up to ~1,000 instructions a call (measured: an unchanged rung's 28k-instruction xor cell
moved 2.2% between two commits, its 2-4M-instruction MNIST cells 0.04%). A cell counted on
one side and timed on the other is two cells, "new" and "gone".

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
COUNT_THRESHOLD = 0.005  # instruction counts: a 1% change clears it with room to spare
COUNT_FLOOR = 2000  # instructions a call that a change must add or remove, over layout noise
CONFIDENCE = 0.95
RESAMPLES = 2000
BROKEN = ("wrong", "error")
# A run whose fastest round is 25% or more slower than its side's fastest run was slowed down
# by other work for its whole length (on a shared 2-core VM one run in eight by 2x, and in a
# busy minute five in eight): it is left out, since one such run among eight moves a rank
# interval past 1. Measured from the fastest, not the median: the median is a disturbed run
# when most are.
DISTURBED = 1.25


def _run_samples(rows: pd.DataFrame) -> list:
    """One array of per-round seconds per run (ok rows only, oldest run first)."""
    if "samples_s" not in rows:  # instruction counts only
        return []
    rows = rows.sort_values(["timestamp", "run_id"], kind="stable")
    return [np.asarray(s, dtype=float) for s in rows["samples_s"]
            if isinstance(s, (list, tuple, np.ndarray)) and len(s)]


def _undisturbed(runs: list) -> list:
    """The runs other work did not slow down from start to end: those whose fastest round is
    within DISTURBED of the side's fastest run (normal runs lie within ~5% of one another)."""
    fastest = min(np.min(samples) for samples in runs)
    return [samples for samples in runs if np.min(samples) <= fastest * DISTURBED]


def side_time(runs: list) -> float:
    """A side's time for one cell: the median over its undisturbed runs of each run's fastest
    round (one run: its median round, as the one-run interval uses)."""
    runs = _undisturbed(runs)
    if len(runs) == 1:
        return float(np.median(runs[0]))
    return float(np.median([np.min(samples) for samples in runs]))


def _t_interval(mean: float, se: float, df: float, confidence: float) -> tuple:
    """exp of mean -/+ t quantile x standard error: (ratio, low, high)."""
    if se == 0:
        return float(np.exp(mean)), float(np.exp(mean)), float(np.exp(mean))
    half = stats.t.ppf(1 - (1 - confidence) / 2, df) * se
    return float(np.exp(mean)), float(np.exp(mean - half)), float(np.exp(mean + half))


def _welch(log_base: np.ndarray, log_head: np.ndarray, confidence: float) -> tuple:
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


def _u_cut(m: int, n: int, confidence: float) -> int:
    """The number k of smallest (and of largest) of the m * n pairwise differences that the
    Mann-Whitney interval leaves out: the largest k with P(U < k) <= (1 - confidence) / 2
    when both samples come from one distribution. 0: no interval at this confidence."""
    tail = (1 - confidence) / 2
    if m * n > 2500:  # normal approximation, with the continuity correction
        half = stats.norm.ppf(1 - tail) * np.sqrt(m * n * (m + n + 1) / 12)
        return max(int(np.floor(m * n / 2 - half + 0.5)), 0)
    # counts[j][u]: arrangements of i BASE values and j HEAD values with U = u, for i = 0..m
    counts = [np.ones(1) for _ in range(n + 1)]
    for i in range(1, m + 1):
        row = [np.ones(1)]
        for j in range(1, n + 1):
            grown = np.zeros(i * j + 1)
            grown[j:j + len(counts[j])] += counts[j]  # the largest value is BASE's: > all j
            grown[:len(row[j - 1])] += row[j - 1]  # it is HEAD's: it adds no pair to U
            row.append(grown)
        counts = row
    cdf = np.cumsum(counts[n]) / counts[n].sum()
    return int(np.searchsorted(cdf, tail, side="right"))


def _ranks(log_base: np.ndarray, log_head: np.ndarray, confidence: float) -> tuple:
    """Hodges-Lehmann shift of log HEAD over log BASE and its Mann-Whitney interval."""
    diffs = np.sort((log_head[None, :] - log_base[:, None]).ravel())
    k = _u_cut(len(log_base), len(log_head), confidence)
    return (float(np.exp(np.median(diffs))), float(np.exp(diffs[k - 1])),
            float(np.exp(diffs[len(diffs) - k])))


def _between_runs(base_runs: list, head_runs: list, confidence: float) -> tuple:
    log_base, log_head = (np.log([np.min(r) for r in runs]) for runs in (base_runs, head_runs))
    if _u_cut(len(log_base), len(log_head), confidence) >= 1:
        return _ranks(log_base, log_head, confidence)
    return _welch(log_base, log_head, confidence)


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
             resamples: int = RESAMPLES, seed: int = 0) -> tuple:
    """-> (ratio, ci_low, ci_high) of HEAD / BASE for one cell. A side is a list of runs,
    each a sequence of per-round seconds."""
    base_runs, head_runs = (_undisturbed([np.asarray(r, dtype=float) for r in runs])
                            for runs in (base_runs, head_runs))
    if len(base_runs) == 1 and len(head_runs) == 1:
        return _within_run(base_runs[0], head_runs[0], confidence, resamples, seed)
    return _between_runs(base_runs, head_runs, confidence)


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


def count_ratio(base_counts, head_counts) -> tuple:
    """-> (ratio, low, high) of HEAD / BASE instruction counts: the ratio of the medians and
    the range of the ratios between any run of one side and any run of the other."""
    base_counts, head_counts = (np.asarray(c, dtype=float) for c in (base_counts, head_counts))
    return (float(np.median(head_counts) / np.median(base_counts)),
            float(head_counts.min() / base_counts.max()),
            float(head_counts.max() / base_counts.min()))


def _with_measure(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a `measure` column: "instructions" for counts, "time" for everything else."""
    measure = rows["measure"].fillna("time") if "measure" in rows else "time"
    return rows.assign(measure=measure)


def compare(base: pd.DataFrame, head: pd.DataFrame, threshold: float = THRESHOLD,
            confidence: float = CONFIDENCE,
            count_threshold: float = COUNT_THRESHOLD) -> pd.DataFrame:
    """Every cell of either side: base_s, head_s (or base_n, head_n: instruction counts),
    ratio, ci_low, ci_high, verdict.

    `base` and `head` are result rows (one or more runs each); rows of workload "train"
    carry no timing samples and are left out.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    for name, value in (("threshold", threshold), ("count threshold", count_threshold)):
        if value < 0:
            raise ValueError(f"{name} must be 0 or more (0.10 means 10%), got {value}")
    keys = [*KEYS, "measure"]
    sides = {name: _with_measure(rows[rows["workload"] != "train"]) for name, rows in
             (("base", base), ("head", head))}
    cells = pd.concat([s[keys] for s in sides.values()]).drop_duplicates()
    groups = {name: dict(list(s.groupby(keys, sort=False))) for name, s in sides.items()}
    empty = sides["base"].iloc[0:0]
    out = []
    for key in cells.itertuples(index=False, name=None):
        base_rows, head_rows = (groups[n].get(key, empty) for n in ("base", "head"))
        row = dict(zip(keys, key, strict=True), base_status=_status(base_rows),
                   head_status=_status(head_rows), base_s=np.nan, head_s=np.nan,
                   base_n=np.nan, head_n=np.nan, ratio=np.nan, ci_low=np.nan, ci_high=np.nan)
        base_ok, head_ok = (rows[rows["status"] == "ok"] for rows in (base_rows, head_rows))
        base_runs, head_runs = _run_samples(base_ok), _run_samples(head_ok)
        if row["measure"] == "instructions" and not base_ok.empty and not head_ok.empty:
            ratio, low, high = count_ratio(base_ok["instructions"], head_ok["instructions"])
            base_n, head_n = (float(ok["instructions"].median()) for ok in (base_ok, head_ok))
            moved = abs(head_n - base_n) > COUNT_FLOOR
            row.update(base_n=base_n, head_n=head_n, ratio=ratio, ci_low=low, ci_high=high,
                       verdict=verdict(ratio, low, high, count_threshold) if moved else "same")
        elif base_runs and head_runs:
            ratio, low, high = ratio_ci(base_runs, head_runs, confidence)
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
    return pd.DataFrame(out, columns=[*keys, "base_status", "head_status", "base_s", "head_s",
                                      "base_n", "head_n", "ratio", "ci_low", "ci_high",
                                      "verdict"])


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
        ci = "-" if not np.isfinite(r.ratio) else \
            f"[{r.ci_low:.{digits}f}, {r.ci_high:.{digits}f}]"
        ratio = "-" if not np.isfinite(r.ratio) else f"{r.ratio:.{digits}f}"
        base, head = ((format_count(r.base_n), format_count(r.head_n)) if counted else
                      (format_seconds(r.base_s), format_seconds(r.head_s)))
        rows.append([r.impl, r.workload, r.size, r.phase, base, head, ratio, ci, r.verdict])
    return rows


HEADER = ["impl", "workload", "size", "phase", "base", "head", "head/base", "CI", "verdict"]


def summary_line(result: pd.DataFrame, threshold: float, confidence: float,
                 count_threshold: float = COUNT_THRESHOLD) -> str:
    counts = result["verdict"].value_counts()
    parts = ", ".join(f"{n} {v}" for v, n in counts.items())
    counted = result["measure"] == "instructions"
    rules = [f"threshold {threshold:.0%}, {confidence:.0%} confidence interval"] \
        if counted.empty or not counted.all() else []
    if counted.any():
        rules.append(f"instruction counts: threshold {count_threshold:.1%} and "
                     f"{COUNT_FLOOR:,} a call")
    return f"{len(result)} cells: {parts} ({'; '.join(rules)})"


def to_terminal(result: pd.DataFrame, threshold: float = THRESHOLD,
                confidence: float = CONFIDENCE, count_threshold: float = COUNT_THRESHOLD) -> str:
    rows = [HEADER, *_lines(result)]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(HEADER))]
    text = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]
    return "\n".join([*text, "", summary_line(result, threshold, confidence, count_threshold)])


def to_markdown(result: pd.DataFrame, base_label: str, head_label: str,
                threshold: float = THRESHOLD, confidence: float = CONFIDENCE,
                count_threshold: float = COUNT_THRESHOLD) -> str:
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
             f"{head}. {summary_line(result, threshold, confidence, count_threshold)}.", ""]
    if moved:
        parts += ["Cells that changed:", "", table(moved), ""]
    parts += ["<details><summary>All cells</summary>", "", table(lines), "", "</details>"]
    return "\n".join(parts)
