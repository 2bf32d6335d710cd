"""Figures of the training runs for the report: learning curves, time to accuracy, weight
histograms per layer and the confusion matrix, built from the rows `train` stores.

The report (harness/report/summary.py) calls `figures(table, order)` and inlines what it
returns; each impl has its palette colour, as in every other figure, and legends sit beside
their axes. Names from the table (impls, sizes, machines, layers) are drawn through draw.plain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.report.draw import figure, legend_beside, plain
from harness.report.palette import colours

# A training configuration (dataset, layers, batch, optimizer, epochs) per machine gets one
# set of figures; only the newest few configurations are drawn, so the report stays short.
MAX_CONFIGS = 3
# What the figures draw from: a row without one of them (store.load drops a value of the
# wrong type) is left out of the figures.
DRAWN = [
    "loss_by_epoch",
    "train_acc_by_epoch",
    "test_acc_by_epoch",
    "target_acc",
    "test_acc",
    "weight_hist",
    "confusion_CC",
]


def latest_training(table: pd.DataFrame) -> list:
    """[(title, rows)] per (machine, config), newest first: each impl's newest ok row."""
    if table.empty or "workload" not in table or "loss_by_epoch" not in table:
        return []
    rows = table[
        (table.workload == "train")
        & (table.phase == "train")
        & (table.status == "ok")
        & (table.rounds > 0)
    ]  # rounds 0: evaluation only
    rows = rows[rows.reindex(columns=DRAWN).notna().all(axis=1)]
    if rows.empty:
        return []
    # Stable sorts keep each run's impls in the order they were trained (the user's order).
    rows = rows.sort_values("timestamp", kind="stable").drop_duplicates(
        ["machine", "size", "impl"], keep="last"
    )
    groups = sorted(
        rows.groupby(["machine", "size"]), key=lambda g: g[1].timestamp.max(), reverse=True
    )
    return [(f"{size} on {machine}", group) for (machine, size), group in groups[:MAX_CONFIGS]]


def learning_curves(title: str, rows: pd.DataFrame, palette: dict) -> Figure:
    """Training loss, train and test accuracy per epoch, one line per impl."""

    def by_epoch(values, scale=1.0):  # null (a diverged loss is stored so) draws as a gap
        return np.arange(1, len(values) + 1), np.array(values, dtype=float) * scale

    fig, ((loss_ax, acc_ax),) = figure(11, 3.8, cols=2)
    for row in rows.itertuples():
        colour = palette[row.impl]
        loss_ax.plot(*by_epoch(row.loss_by_epoch), marker=".", color=colour, label=plain(row.impl))
        acc_ax.plot(*by_epoch(row.test_acc_by_epoch, 100), marker=".", color=colour)
        acc_ax.plot(*by_epoch(row.train_acc_by_epoch, 100), linestyle=":", color=colour)
    target = rows.target_acc.iloc[0] * 100
    acc_ax.axhline(target, color="grey", linewidth=0.8, linestyle="--")
    loss_ax.set(xlabel="epoch", ylabel="mean training loss", yscale="log", title="loss")
    acc_ax.set(
        xlabel="epoch",
        ylabel="accuracy (%)",
        title=f"test (solid), train (dotted), target {target:g}% (dashed)",
    )
    legend_beside(loss_ax, title="impl")
    fig.suptitle(plain(f"learning curves: {title}"), fontsize="medium")
    return fig


def time_to_accuracy(title: str, rows: pd.DataFrame, palette: dict) -> Figure:
    """Training seconds to the target test accuracy per impl; impls that missed it say so."""
    fig, ((target_ax, epoch_ax),) = figure(10, 0.5 + 0.45 * len(rows) + 1.5, cols=2)
    impls, bar_colours = [plain(impl) for impl in rows.impl], [palette[i] for i in rows.impl]
    to_target_s = [
        v if v is not None and np.isfinite(v) else 0.0 for v in rows.time_to_target_s.astype(float)
    ]
    bars = target_ax.barh(impls, to_target_s, color=bar_colours)
    for bar, row in zip(bars, rows.itertuples(), strict=True):
        hit = row.epochs_to_target is not None and np.isfinite(float(row.epochs_to_target))
        label = (
            f" {bar.get_width():.3g} s, epoch {int(row.epochs_to_target)}"
            if hit
            else " target not reached"
        )
        target_ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            label,
            va="center",
            fontsize="small",
        )
    epoch_ax.barh(impls, rows.t_median_s.astype(float), color=bar_colours)
    hit_s = [v for v in to_target_s if v > 0]
    if hit_s:  # log scale (the rungs span decades), room on the right for the labels
        target_ax.set_xscale("log")
        target_ax.set_xlim(min(hit_s) / 2, max(hit_s) * 30)
    target_ax.set(
        xlabel="training seconds (evaluation excluded)",
        title=f"time to {rows.target_acc.iloc[0]:.0%} test accuracy",
    )
    epoch_ax.set(xscale="log", xlabel="seconds", title="median epoch time")
    target_ax.invert_yaxis()
    epoch_ax.invert_yaxis()
    fig.suptitle(plain(title), fontsize="medium")
    return fig


def weight_histograms(title: str, rows: pd.DataFrame, palette: dict) -> Figure:
    """The final weights of each layer, binned, one outline per impl."""
    layers = sorted(rows.weight_hist.iloc[0])
    fig, axes = figure(3.4 * len(layers) + 1.5, 3, cols=len(layers))
    for ax, layer in zip(axes[0], layers, strict=True):
        for row in rows.itertuples():
            binned = row.weight_hist.get(layer)
            if binned:
                ax.stairs(
                    binned["counts"],
                    binned["edges"],
                    color=palette[row.impl],
                    label=plain(row.impl),
                )
        ax.set(title=plain(layer), xlabel="weight", ylabel="count")
    legend_beside(axes[0][-1], title="impl")
    fig.suptitle(plain(f"final weights per layer: {title}"), fontsize="medium")
    return fig


def confusion(title: str, rows: pd.DataFrame) -> Figure:
    """The test-set confusion matrix of the best impl (rows: true class, columns: predicted)."""
    best = rows.loc[rows.test_acc.astype(float).idxmax()]
    confusion_CC = np.array(best.confusion_CC)
    classes = len(confusion_CC)
    fig, ((ax,),) = figure(4.6, 4.2)
    image = ax.imshow(confusion_CC, cmap="Blues")
    for true in range(classes):
        for pred in range(classes):
            count = confusion_CC[true, pred]
            if count:
                ax.text(
                    pred,
                    true,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize="x-small",
                    color="white" if count > confusion_CC.max() / 2 else "black",
                )
    ax.set(
        xticks=range(classes),
        yticks=range(classes),
        xlabel="predicted class",
        ylabel="true class",
        title=plain(f"{best.impl}: test accuracy {float(best.test_acc):.2%}"),
    )
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(plain(title), fontsize="small")
    return fig


def figures(table: pd.DataFrame, order: list | None = None) -> list:
    """[(title, Figure)] for the report; [] when the table has no training rows. `order`:
    the impls of the whole report, so that each keeps the colour it has in the others."""
    out = []
    for title, rows in latest_training(table):
        palette = colours(list(dict.fromkeys([*(order or []), *rows.impl])))
        out += [
            (f"Learning curves: {title}", learning_curves(title, rows, palette)),
            (f"Time to accuracy: {title}", time_to_accuracy(title, rows, palette)),
            (f"Weight histograms: {title}", weight_histograms(title, rows, palette)),
            (f"Confusion matrix: {title}", confusion(title, rows)),
        ]
    return out
