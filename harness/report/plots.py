"""The report's scatter figures, one point per cell: the roofline, forward against backward,
peak memory against the bytes a phase must touch.

Each takes the latest ok rows of one machine (`cells`, timing workloads only) and the impls in
ladder order (`order`, which gives every impl its palette colour), and returns a Figure or
None when there is nothing to draw. Every text from the table goes through draw.plain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from harness.measure import roofs
from harness.report import draw
from harness.report.palette import colours

MARKERS = "osD^vP*X<>"  # one per workload, in the roofline
# (device, scope of roofs.py) -> the roofline panel of the rows judged against those roofs
PANELS = {
    ("cpu", "one_core"): "CPU, one core: rows on one thread",
    ("cpu", "all_cores"): "CPU, every core: rows on several threads or ranks",
    ("cuda", "one_core"): "GPU",
}


def _dot(colour, marker: str = "o", label: str = "") -> Line2D:
    """A legend entry of one scatter marker."""
    return Line2D([], [], linestyle="", marker=marker, color=colour, label=draw.plain(label))


def _roofs(ceilings, device: str, scope: str) -> tuple:
    """(compute roofs, memory levels) a row of this device and scope is judged against."""
    computes = [c for c in roofs.compute_roofs(ceilings, device) if c["scope"] in ("device", scope)]
    return computes, roofs.levels(ceilings, device, scope)


LABEL = {
    "fontsize": 7.5,
    "color": "0.15",
    "bbox": {"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 1},
}


def _ceilings(ax, computes: list, memory: list, span: tuple) -> None:
    """Every roof, labelled: compute roofs flat, memory levels slanted up to the highest
    compute roof. Level labels step right along their lines, 2.5x apart, so that levels
    of close bandwidths stay readable; compute labels alternate above and below."""
    top = max((c["gflops_per_s"] for c in computes), default=None)
    low, high = span
    floor = ax.get_ylim()[0]
    for i, level in enumerate(memory):
        bandwidth = level["gb_per_s"]
        ridge = min(top / bandwidth, high) if top else high
        ax.plot([low, ridge], [bandwidth * low, bandwidth * ridge], color="0.35", linewidth=1)
        at = min(max(low * 1.3 * 2.5**i, floor * 1.3 / bandwidth), ridge / 2)
        ax.annotate(
            f"{draw.plain(level['name'])}: {bandwidth:,.0f} GB/s",
            (at, bandwidth * at),
            ha="left",
            va="bottom",
            **LABEL,
        )
    for i, compute in enumerate(sorted(computes, key=lambda c: -c["gflops_per_s"])):
        peak = compute["gflops_per_s"]
        ax.plot(
            [low, high],
            [peak, peak],
            color="0.35",
            linewidth=1,
            linestyle="-" if peak == top else "--",
        )
        ax.annotate(
            f"{draw.plain(compute['name'])}: {peak:,.0f} GFLOP/s",
            (high / 1.1, peak),
            ha="right",
            va="top" if i % 2 else "bottom",
            **LABEL,
        )


def roofline(cells: pd.DataFrame, order: list, ceilings: dict | None):
    """Achieved GFLOP/s against arithmetic intensity under every measured roof: a panel per
    device and scope (each row under the roofs it is judged against), colour the impl,
    marker the workload."""
    rows = cells[(cells["gflops_per_s"] > 0) & (cells["intensity"] > 0)]
    if rows.empty:
        return None
    palette = colours(order)
    rows = rows.assign(
        panel=[
            ("cuda", "one_core") if r.get("device") == "cuda" else ("cpu", roofs.scope(r))
            for _, r in rows.iterrows()
        ]
    )
    workloads = list(dict.fromkeys(rows["workload"]))
    marker = {w: MARKERS[i % len(MARKERS)] for i, w in enumerate(workloads)}
    shown = [p for p in PANELS if p in set(rows["panel"])]
    fig, axes = draw.panels(len(shown), 1, 10, 5)
    for ax, panel in zip(axes, shown, strict=True):
        mine = rows[rows["panel"] == panel]
        for (impl, workload), group in mine.groupby(["impl", "workload"], sort=False):
            ax.scatter(
                group["intensity"],
                group["gflops_per_s"],
                s=18,
                color=palette[impl],
                marker=marker[workload],
                alpha=0.85,
            )
        computes, memory = _roofs(ceilings, *panel)
        peaks = [c["gflops_per_s"] for c in computes]
        ridges = [max(peaks) / m["gb_per_s"] for m in memory if peaks]
        span = (
            min([mine["intensity"].min(), *ridges]) / 4,
            max([mine["intensity"].max(), *ridges]) * 4,
        )
        ax.set(
            xscale="log",
            yscale="log",
            xlim=span,
            ylim=(mine["gflops_per_s"].min() / 4, max([mine["gflops_per_s"].max(), *peaks]) * 2),
        )
        _ceilings(ax, computes, memory, span)
        ax.set(
            xlabel="arithmetic intensity (FLOP / byte)",
            ylabel="achieved GFLOP/s",
            title=f"Roofline, {PANELS[panel]}" + ("" if peaks else " (roofs not measured)"),
        )
        shapes = draw.legend_beside(
            ax,
            "lower",
            title="workload",
            handles=[_dot("0.4", marker[w], w) for w in workloads if w in set(mine["workload"])],
        )
        ax.add_artist(shapes)
        draw.legend_beside(
            ax,
            title="impl",
            handles=[_dot(palette[i], label=i) for i in order if i in set(mine["impl"])],
        )
    return fig


def fwd_bwd(cells: pd.DataFrame, order: list):
    """Backward time against forward time per cell: the lines mark bwd = 1x, 2x, 3x fwd."""
    wide = cells.pivot_table(
        index=["impl", "workload", "size"], columns="phase", values="t_median_s"
    )
    if "fwd" not in wide or "bwd" not in wide:
        return None
    wide = wide.dropna(subset=["fwd", "bwd"]).reset_index()
    if wide.empty:
        return None
    palette = colours(order)
    fig, ((ax,),) = draw.figure(8, 5)
    for impl in [i for i in order if i in set(wide["impl"])]:
        mine = wide[wide["impl"] == impl]
        ax.scatter(mine["fwd"], mine["bwd"], s=16, color=palette[impl], label=draw.plain(impl))
    span = np.array([wide["fwd"].min() / 2, wide["fwd"].max() * 2])  # seconds, both axes
    for factor in (1, 2, 3):  # each label a decade left of the last: close lines, apart
        ax.loglog(span, factor * span, color="grey", linewidth=0.7, linestyle=":")
        at = span[1] / 10 ** (factor - 1)
        ax.annotate(
            f"bwd = {factor}x fwd",
            (at, factor * at),
            fontsize=7,
            ha="right",
            va="bottom",
            color="0.3",
        )
    ax.set(
        xlabel="forward median time (s)",
        ylabel="backward median time (s)",
        title="Forward against backward, per cell",
    )
    draw.legend_beside(ax, title="impl")
    return fig


def memory(cells: pd.DataFrame, order: list):
    """Peak memory of one call against the fewest bytes the phase must touch: the process's
    high-water mark (native allocations included) where a row has it, else tracemalloc's
    peak (Python's allocations only), drawn hollow."""
    native = pd.to_numeric(
        cells.get("peak_rss_bytes", pd.Series(np.nan, cells.index)), errors="coerce"
    )
    rows = cells.assign(native=native > 0, peak=native.where(native > 0, cells["peak_mem_bytes"]))
    rows = rows[rows["peak"] > 0]
    if rows.empty:
        return None
    palette = colours(order)
    fig, ((ax,),) = draw.figure(8, 5)
    for impl in [i for i in order if i in set(rows["impl"])]:
        for kind, mine in rows[rows["impl"] == impl].groupby("native"):
            ax.scatter(
                mine["bytes"],
                mine["peak"],
                s=16,
                edgecolors=palette[impl],
                facecolors=palette[impl] if kind else "none",
            )
    span = np.array([rows["bytes"].min() / 2, rows["bytes"].max() * 2])  # bytes, both axes
    ax.loglog(span, span, color="grey", linewidth=0.7, linestyle=":")
    kinds = {
        "process high-water (native allocations included)": rows["native"].any(),
        "tracemalloc peak (Python allocations only), hollow": (~rows["native"]).any(),
    }
    ax.set(
        xlabel="bytes the phase must read and write",
        ylabel="peak memory of one call (bytes)",
        title="Peak memory: "
        + "; ".join(k for k, shown in kinds.items() if shown)
        + "\n(on the dotted line: nothing beyond inputs and outputs)",
    )
    draw.legend_beside(
        ax,
        title="impl",
        handles=[_dot(palette[i], label=i) for i in order if i in set(rows["impl"])],
    )
    return fig
