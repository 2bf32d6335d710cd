"""Renders reports/summary.html: one self-contained file (figures inlined) from results/.

The report covers one machine (the one of the newest run; timings of different machines do
not mix). It opens with a line and a bar chart per workload (glance.py), then what could not
run and every other status in counts, the ladder at each workload's headline size
(tables.py), the figures (trends.py, plots.py), a section per trained model (training.py),
the correctness of every cell, and the machine, commit, versions and roofs. Each cell shows its
newest row; every impl has one colour throughout (palette.py). Derived columns are computed
here, never stored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader

from harness import registry
from harness.execute.grid import PHASES
from harness.measure import roofs
from harness.report import bounds, draw, glance, headline, plots, tables, training, trends
from harness.report.palette import colours
from harness.results import atomic, machine, store
from harness.results import ceilings as machine_ceilings
from harness.results.machine import ROOT
from harness.workloads import WORKLOADS

REPORTS = ROOT / "reports"
BASELINES = ("pure_python", "numpy")  # the rungs the speedup figure is drawn against
KEYS = ["impl", "workload", "size", "phase"]
RANK = {name: i for i, name in enumerate([*WORKLOADS, *PHASES])}  # unknown names sort last
INFO = [
    "machine",
    "cpu",
    "cores",
    "gpu",
    "platform",
    "python",
    "numpy",
    "blas",
    "threads",
    "commit",
    "dirty",
]


def ordered(frame: pd.DataFrame, by: list, ranks: dict) -> pd.DataFrame:
    """A stable sort on `by`, ranking the columns named in `ranks` by their given order."""
    return frame.sort_values(
        by, kind="stable", key=lambda c: c.map(ranks[c.name]) if c.name in ranks else c
    )


def latest(table: pd.DataFrame) -> pd.DataFrame:
    """The newest row of every (impl, workload, size, phase) cell, in the order of
    WORKLOADS, then phase (fwd, bwd, step), then work."""
    cells = table.sort_values("timestamp", kind="stable").drop_duplicates(KEYS, keep="last")
    return ordered(cells, ["workload", "phase", "flops"], {"workload": RANK, "phase": RANK})


def ladder_order(impls) -> list:
    """Impls in ladder order (the registry's rungs), unknown ones after, by name."""
    known = registry.names()
    return sorted(set(impls), key=lambda i: (known.index(i) if i in known else len(known), i))


def figures(rows: pd.DataFrame, cells: pd.DataFrame, order: list, ceilings) -> list:
    """[(title, Figure)] of every figure there is something to draw for: the ok
    cells with a time (an ok row from a damaged file may have lost it)."""
    timed = rows[(rows["status"] == "ok") & (rows["t_median_s"] > 0)]
    done = cells[(cells["status"] == "ok") & (cells["t_median_s"] > 0)]
    drawn = [
        ("Speedup across the ladder", trends.speedups(done, order, BASELINES)),
        ("Time against work", trends.scaling(done, order)),
        ("Roofline", plots.roofline(done, order, ceilings)),
        ("Forward against backward", plots.fwd_bwd(done, order)),
        ("Peak memory", plots.memory(done, order)),
        ("History across commits", trends.history(timed, order)),
    ]
    return [(title, fig) for title, fig in drawn if fig is not None]


def training_figures(table: pd.DataFrame, order: list) -> list:
    """harness/report/training.py's figures of the training rows."""
    train = table[table["workload"] == "train"]
    if train.empty:
        return []
    return training.figures(train, order)


def training_sections(table: pd.DataFrame, order: list) -> list:
    """training.sections of the table, each figure it lists that was drawn as (title, caption,
    data URI); sections with nothing drawn and no sample are left out."""
    drawn = {title: draw.to_data_uri(fig) for title, fig in training_figures(table, order)}
    out = []
    for section in training.sections(table[table["workload"] == "train"]):
        shown = [(t, caption, drawn[t]) for t, caption in section["figures"] if t in drawn]
        if shown or section["samples"]:
            out.append({**section, "figures": shown})
    return out


def roof_lines(ceilings) -> list:
    """[(what, figure)] of every roof measured on the machine: CPU (one core, every core),
    then GPU."""
    out = []
    for (device, scope), panel in plots.PANELS.items():
        where = panel.split(":")[0]
        out += [
            (f"{where}: {c['name']}", f"{c['gflops_per_s']:,.1f} GFLOP/s")
            for c in roofs.compute_roofs(ceilings, device)
            if c["scope"] in ("device", scope)
        ]
        out += [
            (
                f"{where}: {m['name']} bandwidth",
                f"{m['gb_per_s']:,.1f} GB/s"
                + (f" ({m['bytes'] / 2**10:,.0f} KiB)" if np.isfinite(m["bytes"]) else ""),
            )
            for m in roofs.levels(ceilings, device, scope)
        ]
    if not out:
        return [
            (
                "roofs",
                "not measured for this machine (render the report on it, or "
                "python -m harness report --remeasure-ceilings)",
            )
        ]
    return out + [("roofs measured", ceilings.get("measured_at", ""))]


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
    ceilings = (
        machine_ceilings.for_this_machine(results, remeasure)
        if name == machine.machine_name()
        else machine_ceilings.read(name, results)
    )
    cells = bounds.judged(latest(timed), ceilings) if not timed.empty else timed
    order = ladder_order(table["impl"])
    palette = colours(order)
    sizes = headline.sizes(cells) if not cells.empty else {}
    drawn = figures(timed, cells, order, ceilings) if not cells.empty else []
    newest = (timed if not timed.empty else table).sort_values("timestamp", kind="stable").iloc[-1]
    return {
        "empty": False,
        "machine": name,
        "others": others,
        "runs": table["run_id"].nunique(),
        "cells": len(cells),
        "commits": table["commit"].nunique(),
        "palette": palette,
        "statuses": {s: int(n) for s, n in cells["status"].value_counts().items()},
        "glance": glance.lines(cells, sizes, palette, ceilings) if sizes else [],
        "unavailable": tables.unavailable(cells),
        "others_status": tables.other_statuses(cells, order),
        "unstable": tables.unstable(cells, order),
        "ladder": tables.ladder(cells, sizes, order, ceilings),
        "cuda_ladder": tables.cuda_ladder(timed),
        "figures": [(title, draw.to_data_uri(fig)) for title, fig in drawn],
        "training": training_sections(table, order),
        "correctness": tables.correctness(cells, order, RANK),
        "info": [(k, "" if pd.isna(newest.get(k)) else newest.get(k)) for k in INFO]
        + [("newest run", newest["run_id"])],
        "roofs": roof_lines(ceilings),
    }


def render(
    table: pd.DataFrame, out: Path | None = None, results=None, remeasure: bool = False
) -> Path:
    """Write the report (atomically: a reader never sees half a file) -> its path.

    `results` is the results folder the table came from: this machine's ceilings are kept
    there (measured on first use, or again when `remeasure`).
    """
    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=True)
    html = env.get_template("summary.html").render(**context(table, results, remeasure))
    return atomic.write_atomic(out or REPORTS / "summary.html", html)
