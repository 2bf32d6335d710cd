"""The training figures of a run as a whole: learning curves (loss and accuracy per epoch),
the GPT's loss curves (training per step, validation per epoch), time to the target accuracy
and the confusion matrix. Each draws from the rows that have the fields it needs and returns
None where none has them; each impl has its palette colour, as in every other figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.report.draw import figure, legend_beside, plain
from harness.report.training_layers import series
from harness.results.rows import is_number


def having(rows: pd.DataFrame, fields: list) -> pd.DataFrame:
    """The rows with every one of `fields` (store.load dropped a value of the wrong type)."""
    return rows[rows.reindex(columns=fields).notna().all(axis=1)]


def learning_curves(title: str, rows: pd.DataFrame, palette: dict) -> Figure | None:
    """Training loss, train and test accuracy per epoch, one line per impl."""
    rows = having(rows, ["loss_by_epoch", "train_acc_by_epoch", "test_acc_by_epoch", "target_acc"])
    if rows.empty:
        return None

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


def loss_curves(title: str, rows: pd.DataFrame, palette: dict) -> Figure | None:
    """Training loss per step and validation loss per epoch, a colour per impl, against epochs;
    the legend gives each impl's training speed in tokens per second."""
    fig, ((ax,),) = figure(10, 4)
    drawn = 0
    for _, row in rows.iterrows():
        steps, val = (series(row.get(f)) for f in ("loss_by_step", "val_loss_by_epoch"))
        epochs = next(s for s in (val, series(row.get("loss_by_epoch")), [1]) if s is not None)
        speed = row.get("tokens_per_s")
        label = plain(row.impl)
        if is_number(speed) and np.isfinite(speed):
            label += f" ({speed:,.0f} tokens/s)"
        if steps is not None:  # step s of S ends at epoch s * epochs / S
            at = np.arange(1, len(steps) + 1) * len(epochs) / len(steps)
            ax.plot(at, steps, color=palette[row.impl], linewidth=0.8, label=label)
            label = "_nolegend_"  # one legend entry per impl
        if val is not None:
            ax.plot(np.arange(1, len(val) + 1), val, "o--", color=palette[row.impl], label=label)
        drawn += steps is not None or val is not None
    if not drawn:
        return None
    ax.set(
        xlabel="epoch",
        ylabel="cross-entropy loss",
        title="training loss per step (solid), validation loss per epoch (dashed, dots)",
    )
    legend_beside(ax, title="impl")
    fig.suptitle(plain(f"loss curves: {title}"), fontsize="medium")
    return fig


def time_to_accuracy(title: str, rows: pd.DataFrame, palette: dict) -> Figure | None:
    """Training seconds to the target test accuracy per impl; impls that missed it say so."""
    rows = having(rows, ["target_acc", "t_median_s"])
    if rows.empty:
        return None

    def numbers(name):  # a target not reached is stored as null: NaN here, as non-finite ones
        values = pd.to_numeric(rows.get(name, pd.Series(None, index=rows.index)), errors="coerce")
        return values.where(np.isfinite(values.astype(float)))

    fig, ((target_ax, epoch_ax),) = figure(10, 0.5 + 0.45 * len(rows) + 1.5, cols=2)
    impls, bar_colours = [plain(impl) for impl in rows.impl], [palette[i] for i in rows.impl]
    to_target_s = numbers("time_to_target_s").fillna(0.0).tolist()
    bars = target_ax.barh(impls, to_target_s, color=bar_colours)
    for bar, epoch in zip(bars, numbers("epochs_to_target"), strict=True):
        label = (
            f" {bar.get_width():.3g} s, epoch {int(epoch)}" if epoch >= 0 else " target not reached"
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


def confusion(title: str, rows: pd.DataFrame, palette: dict) -> Figure | None:
    """The test-set confusion matrix of the best impl (rows: true class, columns: predicted)."""
    rows = having(rows, ["test_acc", "confusion_CC"])
    if rows.empty:
        return None
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
