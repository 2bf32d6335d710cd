"""The report's figures along an axis, one titled panel per workload: speedup across the
ladder, time against work (with each line's fitted exponent), time across commits.

Each takes ok rows of one machine and the impls in ladder order (`order`, which gives every
impl its palette colour), and returns a Figure or None when there is nothing to draw. The
legends sit beside their panels; every text from the table goes through draw.plain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, NullFormatter

from harness.compare import history as steps_of
from harness.report import draw
from harness.report.headline import PICK, problem
from harness.report.palette import colours
from harness.workloads import WORKLOADS, get_workload

PHASE_STYLE = {"fwd": "-", "bwd": "--", "step": ":"}
COLS = 2  # panels to a row where each has its legend beside it


def speedups(cells: pd.DataFrame, order: list, baselines: tuple):
    """Per workload, each impl's speedup over the first of `baselines` that ran it: the
    geometric mean over the cells both ran (sizes compared without the rank count P)."""
    cells = cells.assign(problem=cells["size"].map(problem))
    keys = ["workload", "problem", "phase"]
    panels = []
    for workload, rows in cells.groupby("workload", sort=False):
        base = next((b for b in baselines if b in set(rows["impl"])), None)
        if base is None:
            continue
        times = rows[rows["impl"] == base].groupby(keys)["t_median_s"].min()
        joined = rows.join(times.rename("t_base_s"), on=keys, how="inner")
        if joined["impl"].nunique() > 1:
            ratios = np.log(joined["t_base_s"] / joined["t_median_s"])
            panels.append((workload, base, ratios.groupby(joined["impl"]).mean().map(np.exp)))
    if not panels:
        return None
    palette = colours(order)
    fig, axes = draw.panels(len(panels), 3, 4.2, 3.2)
    for ax, (workload, base, means) in zip(axes, panels, strict=True):
        impls = [i for i in order if i in means.index]
        # each bar from 1x to its speedup: up when faster than the baseline, down when slower
        ax.bar(range(len(impls)), means[impls] - 1, bottom=1, color=[palette[i] for i in impls])
        ax.set_xticks(
            range(len(impls)), [draw.plain(i) for i in impls], rotation=40, ha="right", fontsize=8
        )
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.axhline(1, color="grey", linewidth=0.8)
        for x, value in enumerate(means[impls]):
            ax.annotate(
                f"{value:.3g}x",
                (x, value),
                ha="center",
                fontsize=7,
                va="bottom" if value >= 1 else "top",
            )
        ax.set(title=draw.plain(workload), ylabel=f"speedup over {draw.plain(base)}")
    return fig


def fit_exponent(work, seconds) -> float:
    """The slope of log time against log work: 1 is linear, below 1 means fixed costs."""
    return float(np.polyfit(np.log(work), np.log(seconds), 1)[0])


def _series(rows: pd.DataFrame) -> pd.Series:
    """The workload's non-axis parameters of each row (layers, optimizer): one line each."""

    def label(row):
        params = get_workload(row["workload"]).params if row["workload"] in WORKLOADS else ()
        return " ".join(f"{p}={row[p]}" for p in params if p in row and pd.notna(row[p]))

    return rows.apply(label, axis=1) if not rows.empty else pd.Series(dtype=str)


def _in_order(groups, order: list):
    """groupby groups keyed (impl, phase, ...): in ladder order, then fwd, bwd, step."""
    phases = list(PHASE_STYLE)
    return sorted(
        groups,
        key=lambda g: (
            order.index(g[0][0]),
            phases.index(g[0][1]) if g[0][1] in phases else len(phases),
            *g[0][2:],
        ),
    )


def scaling(cells: pd.DataFrame, order: list):
    """Time against work (FLOPs) on log-log axes, with each line's fitted exponent."""
    cells = cells[cells["flops"] > 0].assign(series=_series(cells))  # the fit takes logs
    lines = ["workload", "impl", "phase", "series"]
    cells = cells[cells.groupby(lines)["flops"].transform("nunique") >= 2]
    if cells.empty:
        return None
    workloads = list(dict.fromkeys(cells["workload"]))
    palette = colours(order)
    fig, axes = draw.panels(len(workloads), COLS, 6.6, 3.6)
    for ax, workload in zip(axes, workloads, strict=True):
        rows = cells[cells["workload"] == workload]
        for (impl, phase, series), line in _in_order(rows.groupby(lines[1:]), order):
            line = line.sort_values("flops")
            slope = fit_exponent(line["flops"], line["t_median_s"])
            ax.loglog(
                line["flops"],
                line["t_median_s"],
                PHASE_STYLE.get(phase, "-"),
                marker="o",
                markersize=3,
                color=palette[impl],
                label=draw.plain(
                    " ".join(filter(None, (impl, phase, series))) + f": t ~ W^{slope:.2f}"
                ),
            )
        ax.set(title=draw.plain(workload), xlabel="work (FLOPs)", ylabel="median time (s)")
        draw.legend_beside(ax, fontsize=6.5)
    return fig


def _mark_steps(ax, steps: list, rank: dict, colour) -> None:
    """A dotted vertical line at the first commit after each step, labelled with its ratio."""
    for step in steps:
        if step["commit"] in rank:
            x = rank[step["commit"]]
            ax.axvline(x, color=colour, linestyle=":", linewidth=1)
            ax.annotate(
                f"{step['ratio']:.2f}x",
                (x, 0.97),
                xycoords=("data", "axes fraction"),
                xytext=(2, 0),
                textcoords="offset points",
                va="top",
                fontsize=6.5,
                color=colour,
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
            )


def history(rows: pd.DataFrame, order: list):
    """Median time per commit, oldest first: for each impl of a workload, in the phase the
    workload is put forward by (headline.PICK), its largest size measured on two commits or
    more, with the steps `python -m harness history` finds in it marked; None when there is
    no such cell."""
    commits = list(rows.sort_values("timestamp").drop_duplicates("commit")["commit"])
    rank = {c: i for i, c in enumerate(commits)}
    latest = rows.sort_values("timestamp").drop_duplicates(
        ["commit", "impl", "workload", "size", "phase"], keep="last"
    )
    latest = latest[
        latest.groupby(["impl", "workload", "size", "phase"])["commit"].transform("nunique") >= 2
    ]
    phases = latest.groupby("workload")["phase"].transform(
        lambda p: next((x for x in PICK if x in set(p)), p.iloc[0])
    )
    latest = latest[latest["phase"] == phases]
    if latest.empty:
        return None
    keys = steps_of.KEYS
    marks = {}  # the steps of the drawn phases' cells, by cell
    for step in steps_of.plot_steps(rows.merge(latest[keys].drop_duplicates(), on=keys)):
        marks.setdefault(tuple(step[k] for k in keys), []).append(step)
    known = list(WORKLOADS)  # panels in the order of the others, unknown workloads after
    workloads = sorted(
        set(latest["workload"]), key=lambda w: (known.index(w) if w in known else len(known), w)
    )
    palette = colours(order)
    fig, axes = draw.panels(len(workloads), COLS, 6.6, 3.4)
    for ax, workload in zip(axes, workloads, strict=True):
        mine = latest[latest["workload"] == workload]
        for (impl, phase), line in _in_order(mine.groupby(["impl", "phase"]), order):
            largest = line.sort_values("flops")["size"].iloc[-1]
            line = line[line["size"] == largest].sort_values("commit", key=lambda c: c.map(rank))
            ax.semilogy(
                line["commit"].map(rank),
                line["t_median_s"],
                PHASE_STYLE.get(phase, "-"),
                marker="o",
                markersize=3,
                color=palette[impl],
                label=draw.plain(f"{impl} {phase} {largest}"),
            )
            _mark_steps(ax, marks.get((impl, workload, largest, phase), []), rank, palette[impl])
        ax.set_xticks(
            range(len(commits)),
            [draw.plain(c[:7]) for c in commits],
            rotation=45,
            ha="right",
            fontsize=7,
        )
        ax.set(title=draw.plain(workload), ylabel="median time (s)")
        draw.legend_beside(ax, fontsize=6.5)
    return fig
