"""The report's figures, drawn with matplotlib's object API from the results table.

Each function takes the latest ok rows of one machine (`cells`: one row per impl, workload,
size and phase, timing workloads only) and returns a Figure, or None when the table holds
nothing to draw; `to_data_uri` turns a figure into an inline PNG, so the report is one file.
Impls keep one colour and their ladder order in every figure. Every text that comes from the
table (impl, workload, size and commit names) goes through `plain`, so that matplotlib draws it
as written.
"""

from __future__ import annotations

import base64
import io

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.workloads import WORKLOADS, get_workload

DPI = 90
PHASE_STYLE = {"fwd": "-", "bwd": "--", "step": ":"}


def plain(text) -> str:
    """`text` for matplotlib to draw verbatim. Names come from stored files and out-of-tree
    impls (NNLADDER_IMPLS); two `$` in one would start mathtext, where `_`, `^` and `\\` are
    markup and one that does not parse stops the whole figure from drawing."""
    return str(text).replace("$", r"\$")


def figure(width: float, height: float, rows: int = 1, cols: int = 1):
    """A figure on the Agg canvas (files only, no window, no pyplot state) and its axes."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def colours(impls: list) -> dict:
    palette = matplotlib.colormaps["tab10"].colors
    return {impl: palette[i % len(palette)] for i, impl in enumerate(impls)}


def to_data_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _grid(count: int, width: float = 4.2, height: float = 3.2):
    cols = min(count, 3)
    rows = -(-count // cols)
    fig, axes = figure(width * cols, height * rows, rows, cols)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def speedups(cells: pd.DataFrame, order: list, baseline: str):
    """Per workload, each impl's speedup over `baseline`: geometric mean over shared cells."""
    base = cells[cells["impl"] == baseline].set_index(["workload", "size", "phase"])["t_median_s"]
    joined = cells.join(base.rename("t_base_s"), on=["workload", "size", "phase"], how="inner")
    if joined.empty or joined["impl"].nunique() < 2:
        return None
    joined["log_speedup"] = np.log(joined["t_base_s"] / joined["t_median_s"])
    means = joined.groupby(["workload", "impl"])["log_speedup"].mean().map(np.exp)
    workloads = list(dict.fromkeys(joined["workload"]))
    palette = colours(order)
    fig, axes = _grid(len(workloads), 3.6, 3.0)
    for ax, workload in zip(axes, workloads, strict=True):
        impls = [i for i in order if (workload, i) in means.index]
        values = [means[(workload, i)] for i in impls]
        ax.bar(range(len(impls)), values, color=[palette[i] for i in impls])
        ax.set_xticks(range(len(impls)), [plain(i) for i in impls], rotation=30, ha="right")
        ax.set_yscale("log")
        ax.axhline(1, color="grey", linewidth=0.8)
        for x, value in enumerate(values):
            ax.annotate(f"{value:.3g}x", (x, value), ha="center", va="bottom", fontsize=8)
        ax.set_title(plain(workload))
    axes[0].set_ylabel(f"speedup over {baseline}")
    fig.suptitle(f"Speedup over {baseline} (geometric mean over the cells both ran)")
    fig.tight_layout()
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


def scaling(cells: pd.DataFrame, order: list):
    """Time against work (FLOPs) on log-log axes, with each impl's fitted exponent."""
    cells = cells[cells["flops"] > 0].assign(series=_series(cells))  # the fit takes logs
    lines = ["workload", "impl", "phase", "series"]
    cells = cells[cells.groupby(lines)["flops"].transform("nunique") >= 2]
    if cells.empty:
        return None
    workloads = list(dict.fromkeys(cells["workload"]))
    palette = colours(order)
    fig, axes = _grid(len(workloads))
    for ax, workload in zip(axes, workloads, strict=True):
        rows = cells[cells["workload"] == workload]
        for (impl, phase, series), line in sorted(
                rows.groupby(["impl", "phase", "series"]),
                key=lambda g: (order.index(g[0][0]), g[0][1], g[0][2])):
            line = line.sort_values("flops")
            slope = fit_exponent(line["flops"], line["t_median_s"])
            ax.loglog(line["flops"], line["t_median_s"], PHASE_STYLE.get(phase, "-"),
                      marker="o", markersize=3, color=palette[impl],
                      label=plain(" ".join(filter(None, (impl, phase, series)))
                                  + f": t ~ W^{slope:.2f}"))
        ax.set_title(plain(workload))
        ax.set_xlabel("work (FLOPs)")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("median time (s)")
    fig.suptitle("Time against work, log-log: the exponent says how cost grows with work")
    fig.tight_layout()
    return fig


def roofline(cells: pd.DataFrame, order: list, ceilings: dict | None):
    """Achieved GFLOP/s against arithmetic intensity, under this machine's measured roofs."""
    rows = cells[cells["gflops_per_s"].notna() & (cells["gflops_per_s"] > 0)]
    if rows.empty:
        return None
    palette = colours(order)
    fig, ((ax,),) = figure(8, 5)
    for impl in [i for i in order if i in set(rows["impl"])]:
        mine = rows[rows["impl"] == impl]
        ax.scatter(mine["intensity"], mine["gflops_per_s"], s=14, color=palette[impl],
                   label=plain(impl))
    intensity = np.logspace(np.log10(rows["intensity"].min() / 2),
                            np.log10(rows["intensity"].max() * 2), 200)
    for prefix, label, style in (("", "CPU", "-"), ("cuda_", "GPU", "-.")):
        if ceilings and f"{prefix}gemm_gflops_per_s" in ceilings:
            peak, bandwidth = (ceilings[f"{prefix}gemm_gflops_per_s"],
                               ceilings[f"{prefix}copy_gb_per_s"])
            ax.loglog(intensity, np.minimum(peak, bandwidth * intensity), style,
                      color="black", linewidth=1,
                      label=f"{label} roof: {peak:.0f} GFLOP/s, {bandwidth:.0f} GB/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.set_title("Roofline" + ("" if ceilings else " (ceilings not measured)"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fwd_bwd(cells: pd.DataFrame, order: list):
    """Backward time against forward time per cell: the lines mark bwd = 1x, 2x, 3x fwd."""
    wide = cells.pivot_table(index=["impl", "workload", "size"], columns="phase",
                             values="t_median_s")
    if "fwd" not in wide or "bwd" not in wide:
        return None
    wide = wide.dropna(subset=["fwd", "bwd"]).reset_index()
    if wide.empty:
        return None
    palette = colours(order)
    fig, ((ax,),) = figure(6.5, 5)
    for impl in [i for i in order if i in set(wide["impl"])]:
        mine = wide[wide["impl"] == impl]
        ax.scatter(mine["fwd"], mine["bwd"], s=16, color=palette[impl], label=plain(impl))
    span = np.array([wide["fwd"].min() / 2, wide["fwd"].max() * 2])  # seconds, both axes
    for factor in (1, 2, 3):
        ax.loglog(span, factor * span, color="grey", linewidth=0.7, linestyle=":")
        ax.annotate(f"bwd = {factor}x fwd", (span[1], factor * span[1]), fontsize=7,
                    ha="right", va="bottom", color="grey")
    ax.set_xlabel("forward median time (s)")
    ax.set_ylabel("backward median time (s)")
    ax.set_title("Forward against backward, per cell")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def memory(cells: pd.DataFrame, order: list):
    """Peak memory of one call against the fewest bytes the phase must touch."""
    rows = cells[cells["peak_mem_bytes"].notna() & (cells["peak_mem_bytes"] > 0)]
    if rows.empty:
        return None
    palette = colours(order)
    fig, ((ax,),) = figure(6.5, 5)
    for impl in [i for i in order if i in set(rows["impl"])]:
        mine = rows[rows["impl"] == impl]
        ax.scatter(mine["bytes"], mine["peak_mem_bytes"], s=16, color=palette[impl],
                   label=plain(impl))
    span = np.array([rows["bytes"].min() / 2, rows["bytes"].max() * 2])  # bytes, both axes
    ax.loglog(span, span, color="grey", linewidth=0.7, linestyle=":")
    ax.set_xlabel("bytes the phase must read and write")
    ax.set_ylabel("peak memory of one call (bytes)")
    ax.set_title("Peak memory (on the dotted line: nothing beyond inputs and outputs)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def history(rows: pd.DataFrame, order: list):
    """Median time per commit, oldest first: for each impl and phase of a workload, its
    largest size measured on two commits or more; None when there is no such cell."""
    commits = list(rows.sort_values("timestamp").drop_duplicates("commit")["commit"])
    rank = {c: i for i, c in enumerate(commits)}
    latest = rows.sort_values("timestamp").drop_duplicates(
        ["commit", "impl", "workload", "size", "phase"], keep="last")
    latest = latest[latest.groupby(["impl", "workload", "size", "phase"])["commit"]
                    .transform("nunique") >= 2]
    if latest.empty:
        return None
    workloads = list(dict.fromkeys(latest["workload"]))
    palette = colours(order)
    fig, axes = _grid(len(workloads))
    for ax, workload in zip(axes, workloads, strict=True):
        mine = latest[latest["workload"] == workload]
        for (impl, phase), line in sorted(mine.groupby(["impl", "phase"]),
                                          key=lambda g: (order.index(g[0][0]), g[0][1])):
            largest = line.sort_values("flops")["size"].iloc[-1]
            line = line[line["size"] == largest].sort_values("commit", key=lambda c: c.map(rank))
            ax.semilogy(line["commit"].map(rank), line["t_median_s"],
                        PHASE_STYLE.get(phase, "-"), marker="o", markersize=3,
                        color=palette[impl], label=plain(f"{impl} {phase} {largest}"))
        ax.set_xticks(range(len(commits)), [plain(c[:7]) for c in commits], rotation=45,
                      ha="right", fontsize=7)
        ax.set_title(plain(workload))
        ax.legend(fontsize=6)
    axes[0].set_ylabel("median time (s)")
    fig.suptitle("History across commits (each line: one impl and phase at its largest size)")
    fig.tight_layout()
    return fig
