"""Every cell of two tables of runs, compared: its statistics (harness/compare/stats.py) and
what they mean.

Verdict: "slower" needs that the ratio passes the threshold (ratio > 1 + threshold), that the
interval lies wholly above 1 (significant), and that the cell's q-value over the grid's timed
cells is at most the false discovery rate `fdr` (overall.py; fdr=None leaves it out);
"faster" is the mirror (ratio < 1 / (1 + threshold), interval wholly below 1, the same q);
anything else is "same". A cell stored on one side only is "new" or "gone"; one not timed on
both sides shows its statuses ("ok -> over_budget", or "unsupported" when both agree), and one
that went from ok to wrong or error is "broken".

Instruction counts have their own threshold, COUNT_THRESHOLD, not the times' 10%, and a
change must also exceed COUNT_FLOOR instructions a call: any change to the code moves the
heap, and with it the alignment of the arrays that vectorized loops and memcpy peel to, by
up to ~1,000 instructions a call (measured: an unchanged rung's 28k-instruction xor cell
moved 2.2% between two commits, its 2-4M-instruction MNIST cells 0.04%). A cell counted on
one side and timed on the other is two cells, "new" and "gone".

A cell is `unstable` when a timed run on either side was (measure/stability.py: its spread,
outliers, short or few rounds, steal or load broke a rule); the verdict stands, and the
tables mark it. Runs stored before that check say nothing and count as stable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.compare.overall import FDR, check_fdr, q_values
from harness.compare.stats import CONFIDENCE, count_ratio, ratio_test, side_time

KEYS = ["impl", "workload", "size", "phase"]
THRESHOLD = 0.10
COUNT_THRESHOLD = 0.005  # instruction counts: a 1% change clears it with room to spare
COUNT_FLOOR = 2000  # instructions a call that a change must add or remove, over layout noise
BROKEN = ("wrong", "error")


def _run_samples(rows: pd.DataFrame) -> list:
    """One array of per-round seconds per run (ok rows only, oldest run first)."""
    if "samples_s" not in rows:  # instruction counts only
        return []
    rows = rows.sort_values(["timestamp", "run_id"], kind="stable")
    return [
        np.asarray(s, dtype=float)
        for s in rows["samples_s"]
        if isinstance(s, (list, tuple, np.ndarray)) and len(s)
    ]


def _unstable(rows: pd.DataFrame) -> bool:
    return "unstable" in rows and bool(rows["unstable"].eq(True).any())


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


def _with_measure(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a `measure` column: "instructions" for counts, "time" for everything else."""
    measure = rows["measure"].fillna("time") if "measure" in rows else "time"
    return rows.assign(measure=measure)


def compare(
    base: pd.DataFrame,
    head: pd.DataFrame,
    threshold: float = THRESHOLD,
    confidence: float = CONFIDENCE,
    count_threshold: float = COUNT_THRESHOLD,
    fdr: float | None = FDR,
) -> pd.DataFrame:
    """Every cell of either side: base_s, head_s (or base_n, head_n: instruction counts),
    ratio, ci_low, ci_high, p and q (timed cells), verdict.

    `base` and `head` are result rows (one or more runs each); rows of workload "train"
    carry no timing samples and are left out.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    for name, value in (("threshold", threshold), ("count threshold", count_threshold)):
        if value < 0:
            raise ValueError(f"{name} must be 0 or more (0.10 means 10%), got {value}")
    check_fdr(fdr)
    keys = [*KEYS, "measure"]
    sides = {
        name: _with_measure(rows[rows["workload"] != "train"])
        for name, rows in (("base", base), ("head", head))
    }
    cells = pd.concat([s[keys] for s in sides.values()]).drop_duplicates()
    groups = {name: dict(list(s.groupby(keys, sort=False))) for name, s in sides.items()}
    empty = sides["base"].iloc[0:0]
    out = []
    for key in cells.itertuples(index=False, name=None):
        base_rows, head_rows = (groups[n].get(key, empty) for n in ("base", "head"))
        row = dict(
            zip(keys, key, strict=True),
            base_status=_status(base_rows),
            head_status=_status(head_rows),
            base_s=np.nan,
            head_s=np.nan,
            base_n=np.nan,
            head_n=np.nan,
            ratio=np.nan,
            ci_low=np.nan,
            ci_high=np.nan,
            p=np.nan,
        )
        base_ok, head_ok = (rows[rows["status"] == "ok"] for rows in (base_rows, head_rows))
        base_runs, head_runs = _run_samples(base_ok), _run_samples(head_ok)
        row["unstable"] = _unstable(base_ok) or _unstable(head_ok)
        if row["measure"] == "instructions" and not base_ok.empty and not head_ok.empty:
            ratio, low, high = count_ratio(base_ok["instructions"], head_ok["instructions"])
            base_n, head_n = (float(ok["instructions"].median()) for ok in (base_ok, head_ok))
            moved = abs(head_n - base_n) > COUNT_FLOOR
            row.update(
                base_n=base_n,
                head_n=head_n,
                ratio=ratio,
                ci_low=low,
                ci_high=high,
                verdict=verdict(ratio, low, high, count_threshold) if moved else "same",
            )
        elif base_runs and head_runs:
            ratio, low, high, p = ratio_test(base_runs, head_runs, confidence)
            row.update(
                base_s=side_time(base_runs),
                head_s=side_time(head_runs),
                ratio=ratio,
                ci_low=low,
                ci_high=high,
                p=p,
                verdict=verdict(ratio, low, high, threshold),
            )
        elif row["base_status"] == "ok" and row["head_status"] in BROKEN:
            row["verdict"] = "broken"
        elif base_rows.empty or head_rows.empty:
            row["verdict"] = "new" if base_rows.empty else "gone"
        elif row["base_status"] == row["head_status"]:
            row["verdict"] = row["base_status"]  # not timed on either side, for one reason
        else:
            row["verdict"] = f"{row['base_status']} -> {row['head_status']}"
        out.append(row)
    result = pd.DataFrame(
        out,
        columns=[
            *keys,
            "base_status",
            "head_status",
            "base_s",
            "head_s",
            "base_n",
            "head_n",
            "ratio",
            "ci_low",
            "ci_high",
            "p",
            "verdict",
            "unstable",
        ],
    )
    result.insert(result.columns.get_loc("p") + 1, "q", q_values(result["p"]))
    if fdr is not None:  # a call the grid's false discovery rate does not allow is "same"
        called = result["verdict"].isin(["slower", "faster"]) & (result["q"] > fdr)
        result.loc[called, "verdict"] = "same"
    return result


def regressed(result: pd.DataFrame) -> bool:
    """True when a cell is significantly slower past the threshold, or broke."""
    return bool(result["verdict"].isin(["slower", "broken"]).any())
