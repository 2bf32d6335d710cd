"""The training figures of each layer: the final weights of every impl, weight and activation
histograms at a few epochs, the gradient norm of every layer per epoch (gradient flow) and the
first conv layer's filters as images, from the fields `train` stores with each row.

The rungs train from the same weights on the same batches, so for the figures by epoch one row
stands for all: the first (in the order the impls trained) that has the field, named in the
title. store.load does not check these fields' types, so each is read here: a field that is
missing (rows of older runs, or of another model) or malformed draws nothing, and one entry
that is malformed (an epoch whose weights were NaN) is left out alone. Layers keep the order
the row lists them in, which is the model's, input first.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from harness.report.draw import figure, legend_beside, panels, plain
from harness.results.rows import is_number

COLS = 4  # panels to a row of the small multiples
RAMP = "viridis"  # input to output and first epoch to last: dark to light
FILTER_MAP = "RdBu_r"  # diverging: negative blue, zero white, positive red
MAX_FILTERS = 64


def ramp(count: int) -> list:
    """`count` colours along RAMP; its yellow top end is too pale on white, so stop short."""
    return [matplotlib.colormaps[RAMP](v) for v in np.linspace(0.0, 0.85, count)]


def series(value) -> np.ndarray | None:
    """A non-empty list of numbers (null as NaN) as floats, else None."""
    if not isinstance(value, list) or not value:
        return None
    if not all(v is None or is_number(v) for v in value):
        return None
    return np.array([np.nan if v is None else v for v in value], dtype=float)


def _binned(entry):
    """(epoch, edges, counts) of one {"epoch", "edges", "counts"}, else None."""
    if not isinstance(entry, dict) or not is_number(entry.get("epoch")):
        return None
    edges, counts = series(entry.get("edges")), series(entry.get("counts"))
    if edges is None or counts is None or len(edges) != len(counts) + 1:
        return None
    if not (np.isfinite(edges).all() and np.isfinite(counts).all()):
        return None
    return entry["epoch"], edges, counts


def histograms(value) -> dict:
    """{layer: [(epoch, edges, counts)]} of a *_hist_by_epoch field; {} when it has none."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for layer, entries in value.items():
        kept = [b for b in map(_binned, entries if isinstance(entries, list) else []) if b]
        if kept:
            out[str(layer)] = kept
    return out


def norms(value) -> dict:
    """{layer: gradient norms by epoch} of grad_norm_by_epoch, each with a positive one (the
    axis is log: zero, negative and non-finite norms draw as gaps)."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for layer, by_epoch in value.items():
        values = series(by_epoch)
        if values is not None:
            values[~(np.isfinite(values) & (values > 0))] = np.nan
            if not np.isnan(values).all():
                out[str(layer)] = values
    return out


def filters(value) -> np.ndarray | None:
    """filters_FQJL as a finite float array of four axes, else None."""
    try:
        w_FQJL = np.asarray(value, dtype=float)
    except (TypeError, ValueError):  # not numbers, or ragged
        return None
    return w_FQJL if w_FQJL.ndim == 4 and w_FQJL.size and np.isfinite(w_FQJL).all() else None


def first(rows: pd.DataFrame, field: str, read):
    """(impl, value) of the first row whose `field` reads as something, else (None, None)."""
    for impl, value in zip(rows.impl, rows.get(field, [None] * len(rows)), strict=True):
        read_value = read(value)
        if read_value is not None and len(read_value):
            return impl, read_value
    return None, None


def weight_histograms(title: str, rows: pd.DataFrame, palette: dict) -> Figure | None:
    """The final weights of each layer, binned, one outline per impl."""
    rows = rows[rows.get("weight_hist", pd.Series(None, index=rows.index)).notna()]
    if rows.empty:
        return None
    layers = list(rows.weight_hist.iloc[0])
    fig, axes = panels(len(layers), COLS, 3.4, 3)
    for ax, layer in zip(axes, layers, strict=True):
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
    legend_beside(axes[min(len(axes), COLS) - 1], title="impl")
    fig.suptitle(plain(f"final weights per layer: {title}"), fontsize="medium")
    return fig


def by_epoch(title: str, rows: pd.DataFrame, field: str, what: str) -> Figure | None:
    """A panel per layer, one outline per epoch, from `field`'s histograms of one row."""
    impl, by_layer = first(rows, field, histograms)
    if impl is None:
        return None
    epochs = sorted({epoch for entries in by_layer.values() for epoch, _, _ in entries})
    colour = dict(zip(epochs, ramp(len(epochs)), strict=True))
    fig, axes = panels(len(by_layer), COLS, 3.0, 2.4)
    for ax, (layer, entries) in zip(axes, by_layer.items(), strict=True):
        for epoch, edges, counts in entries:
            ax.stairs(counts, edges, color=colour[epoch])
        ax.set_title(plain(layer), fontsize="small")
        ax.set_xlabel(what, fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.xaxis.set_major_locator(MaxNLocator(5))  # the panels are narrow
    handles = [Line2D([], [], color=c, label=f"epoch {e:g}") for e, c in colour.items()]
    legend_beside(axes[min(len(axes), COLS) - 1], handles=handles)
    fig.suptitle(plain(f"{what}s per layer by epoch, {impl}: {title}"), fontsize="medium")
    return fig


def weights_by_epoch(title: str, rows: pd.DataFrame, palette: dict) -> Figure | None:
    return by_epoch(title, rows, "weight_hist_by_epoch", "weight")


def activations_by_epoch(title: str, rows: pd.DataFrame, palette: dict) -> Figure | None:
    return by_epoch(title, rows, "act_hist_by_epoch", "output")


def gradient_flow(title: str, rows: pd.DataFrame, palette: dict) -> Figure | None:
    """The gradient norm of every layer per epoch, log y, a line per layer along the ramp."""
    impl, by_layer = first(rows, "grad_norm_by_epoch", norms)
    if impl is None:
        return None
    fig, ((ax,),) = figure(9, 4)
    for (layer, values), colour in zip(by_layer.items(), ramp(len(by_layer)), strict=True):
        ax.plot(np.arange(1, len(values) + 1), values, marker=".", color=colour, label=plain(layer))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(
        yscale="log",
        xlabel="epoch",
        ylabel="gradient norm (L2)",
        title=plain(f"{impl}: dark at the input, light at the output"),
    )
    legend_beside(ax, title="layer", ncols=-(-len(by_layer) // 16))
    fig.suptitle(plain(f"gradient flow: {title}"), fontsize="medium")
    return fig


def filter_images(title: str, rows: pd.DataFrame, palette: dict) -> Figure | None:
    """The first conv layer's filters, each its channels side by side, each filter on its own
    scale symmetric about 0 (a shared one would leave the small filters all white)."""
    impl, w_FQJL = first(rows, "filters_FQJL", filters)
    if impl is None:
        return None
    F, Q, J, L = w_FQJL.shape
    shown = min(F, MAX_FILTERS)
    cmap = matplotlib.colormaps[FILTER_MAP].with_extremes(bad="white")  # NaN: channel gaps
    width = 0.35 + 0.22 * (Q * (L + 1) - 1)  # inches of one filter's panel
    fig, axes = panels(shown, max(1, min(8, int(12 / width))), width, 0.55 + 0.22 * J)
    for f, ax in enumerate(axes):
        tiles = np.full((J, Q * (L + 1) - 1), np.nan)  # channels side by side, a gap apart
        for q in range(Q):
            tiles[:, q * (L + 1) : q * (L + 1) + L] = w_FQJL[f, q]
        scale = np.abs(w_FQJL[f]).max() or 1.0
        ax.imshow(tiles, cmap=cmap, vmin=-scale, vmax=scale, interpolation="nearest")
        ax.set_title(f"{f}: ±{scale:.2g}", fontsize="x-small")
        ax.set(xticks=[], yticks=[])
    more = f", the first {shown} of {F}" if shown < F else ""
    fig.suptitle(
        plain(
            f"first conv layer's {F} filters ({Q} channel(s) of {J}x{L} side by side){more}, "
            f"{impl}: {title}\nred positive, blue negative, white 0; each filter on its own "
            "scale, ± its largest |weight| (above it)"
        ),
        fontsize="small",
    )
    return fig
