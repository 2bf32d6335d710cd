"""Renders reports/summary.html: one self-contained file (figures inlined) from results/.

The report covers one machine (the one of the newest run; timings of different machines do
not mix): a headline table per workload and phase at the largest size any impl ran, with
speedups over the pure-Python and NumPy rungs and the fraction of the machine's roofline;
the figures of harness/report/plots.py and harness/report/training.py;
a correctness table; and the machine, commit and versions. Each cell shows its newest row;
statuses are coloured (wrong/error red, over budget amber, unsupported/unavailable grey).
Derived columns are computed here, never stored.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader

from harness import registry
from harness.compare import format_seconds
from harness.execute.grid import PHASES
from harness.report import plots, training
from harness.results import atomic, machine, store
from harness.results import ceilings as machine_ceilings
from harness.results.machine import ROOT
from harness.workloads import WORKLOADS

REPORTS = ROOT / "reports"
BASELINES = ("pure_python", "numpy")  # the rungs every speedup is quoted against
KEYS = ["impl", "workload", "size", "phase"]
RANK = {name: i for i, name in enumerate([*WORKLOADS, *PHASES])}  # unknown names sort last
INFO = ["machine", "cpu", "cores", "gpu", "platform", "python", "numpy", "blas", "threads",
        "commit", "dirty"]


def ordered(frame: pd.DataFrame, by: list, ranks: dict) -> pd.DataFrame:
    """A stable sort on `by`, ranking the columns named in `ranks` by their given order."""
    return frame.sort_values(by, kind="stable",
                             key=lambda c: c.map(ranks[c.name]) if c.name in ranks else c)


def latest(table: pd.DataFrame) -> pd.DataFrame:
    """The newest row of every (impl, workload, size, phase) cell, in the order of
    WORKLOADS, then phase (fwd, bwd, step), then work."""
    cells = table.sort_values("timestamp", kind="stable").drop_duplicates(KEYS, keep="last")
    return ordered(cells, ["workload", "phase", "flops"], {"workload": RANK, "phase": RANK})


def ladder_order(impls) -> list:
    """Impls in ladder order (the registry's rungs), unknown ones after, by name."""
    known = registry.names()
    return sorted(set(impls), key=lambda i: (known.index(i) if i in known else len(known), i))


def _number(value, fmt: str) -> str:
    return "" if value is None or not np.isfinite(value) else format(value, fmt)


def roof_gflops(row, ceilings: dict | None) -> float:
    """The roofline's bound at the row's intensity: min(peak GEMM, bandwidth x intensity)."""
    prefix = "cuda_" if row["device"] == "cuda" else ""
    if not ceilings or f"{prefix}gemm_gflops_per_s" not in ceilings:
        return math.nan
    return min(ceilings[f"{prefix}gemm_gflops_per_s"],
               ceilings[f"{prefix}copy_gb_per_s"] * row["intensity"])


def _speedup(base, row) -> str:
    """'12.3x' over a baseline row that ran; '~1.2e+03x' from its predicted time if skipped."""
    if base is None or row["status"] != "ok":
        return ""
    if base["status"] == "ok":
        return f"{base['t_median_s'] / row['t_median_s']:.3g}x"
    if base["status"] == "over_budget" and np.isfinite(base.get("t_predicted_s", math.nan)):
        return f"~{base['t_predicted_s'] / row['t_median_s']:.3g}x"
    return ""


def headline(cells: pd.DataFrame, order: list, ceilings: dict | None) -> list:
    """Per workload and phase, every impl at the size most of them have a row at."""
    out = []
    for (workload, phase), group in cells.groupby(["workload", "phase"], sort=False):
        # the size most impls have a row at (then: most ran ok, then the most work): a cell
        # where the rungs meet, not a size that only one rung reached
        per_size = group.groupby("size").agg(
            tried=("status", "size"), ran=("status", lambda s: int((s == "ok").sum())),
            flops=("flops", "max"))
        size = per_size.sort_values(["tried", "ran", "flops"]).index[-1]
        at_size = group[group["size"] == size].set_index("impl")
        bases = {b: at_size.loc[b] if b in at_size.index else None for b in BASELINES}
        for impl in [i for i in order if i in at_size.index]:
            row = at_size.loc[impl]
            time = format_seconds(row["t_median_s"]) if row["status"] == "ok" else (
                f"predicted {format_seconds(row['t_predicted_s'])}"
                if row["status"] == "over_budget" else "")
            roof = roof_gflops(row, ceilings)
            out.append({"workload": workload, "phase": phase, "size": size, "impl": impl,
                        "status": row["status"], "time": time, "reason": row["reason"] or "",
                        "gflops": _number(row["gflops_per_s"], ".3g"),
                        **{f"x_{b}": _speedup(bases[b], row) for b in BASELINES},
                        "roof": _number(100 * row["gflops_per_s"] / roof, ".1f")})
    return out


def correctness(cells: pd.DataFrame, order: list) -> list:
    rows = ordered(cells, ["workload", "impl"],
                   {"workload": RANK, "impl": {impl: i for i, impl in enumerate(order)}})
    return [{"impl": r["impl"], "workload": r["workload"], "size": r["size"],
             "phase": r["phase"], "status": r["status"], "reason": r["reason"] or "",
             "rel_err": _number(r["rel_err"], ".2e"), "tol": _number(r["tol"], ".0e")}
            for _, r in rows.iterrows()]


def figures(rows: pd.DataFrame, cells: pd.DataFrame, order: list, ceilings) -> list:
    """[(title, data URI)] of every figure there is something to draw for: the ok cells with
    a time (an ok row from a damaged file may have lost it)."""
    done = cells[(cells["status"] == "ok") & (cells["t_median_s"] > 0)]
    baseline = next((b for b in BASELINES if b in set(done["impl"])), None)
    drawn = [
        ("Speedup across the ladder",
         plots.speedups(done, order, baseline) if baseline else None),
        ("Time against work", plots.scaling(done, order)),
        ("Roofline", plots.roofline(done, order, ceilings)),
        ("Forward against backward", plots.fwd_bwd(done, order)),
        ("Peak memory", plots.memory(done, order)),
        ("History across commits",
         plots.history(rows[(rows["status"] == "ok") & (rows["t_median_s"] > 0)], order)),
    ]
    return [(title, plots.to_data_uri(fig)) for title, fig in drawn if fig is not None]


def training_figures(table: pd.DataFrame) -> list:
    """harness/report/training.py's figures of the training rows."""
    train = table[table["workload"] == "train"]
    if train.empty:
        return []
    return [(title, plots.to_data_uri(fig)) for title, fig in training.figures(train)]


def _machine_of_newest_run(table: pd.DataFrame) -> str:
    """Rows without a time count as the oldest."""
    return table.sort_values("timestamp", kind="stable", na_position="first")["machine"].iloc[-1]


def context(table: pd.DataFrame, results=None, remeasure: bool = False) -> dict:
    """Everything the template shows, from the stored table: rows of no machine (from a
    damaged file) have no place in a machine's report."""
    # Every column of the schema, null where no row has it: a run where nothing ran ok has
    # no timing columns at all.
    table = table.reindex(columns=list(dict.fromkeys([*store.COLUMNS, *table.columns])))
    table = table.dropna(subset=["machine"])
    if table.empty:
        return {"empty": True}
    name = _machine_of_newest_run(table)
    others = sorted(set(table["machine"]) - {name})
    table = table[table["machine"] == name]
    timed = table[table["workload"] != "train"]
    if "measure" in timed:  # instruction counts (run --instructions) are not times
        timed = timed[timed["measure"] != "instructions"]
    ceilings = (machine_ceilings.for_this_machine(results, remeasure)
                if name == machine.machine_name() else machine_ceilings.read(name, results))
    cells = latest(timed) if not timed.empty else timed  # train rows alone have no flops
    order = ladder_order(cells["impl"])
    newest = (timed if not timed.empty else table).sort_values("timestamp", kind="stable").iloc[-1]
    return {
        "empty": False, "machine": name, "others": others,
        "runs": table["run_id"].nunique(), "cells": len(cells),
        "commits": table["commit"].nunique(),
        "headline": headline(cells, order, ceilings) if not cells.empty else [],
        "correctness": correctness(cells, order) if not cells.empty else [],
        "figures": (figures(timed, cells, order, ceilings) if not cells.empty else [])
        + training_figures(table),
        "info": [(k, "" if pd.isna(newest.get(k)) else newest.get(k)) for k in INFO]
        + [("newest run", newest["run_id"])],
        "ceilings": ceilings, "baselines": BASELINES,
        "statuses": {s: int(n) for s, n in cells["status"].value_counts().items()},
    }


def render(table: pd.DataFrame, out: Path | None = None, results=None,
           remeasure: bool = False) -> Path:
    """Write the report (atomically: a reader never sees half a file) -> its path.

    `results` is the results folder the table came from: this machine's ceilings are kept
    there (measured on first use, or again when `remeasure`).
    """
    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=True)
    html = env.get_template("summary.html").render(**context(table, results, remeasure))
    return atomic.write_atomic(out or REPORTS / "summary.html", html)
