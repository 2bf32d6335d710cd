"""What every figure of the report shares: a figure on the Agg canvas, a grid of titled panels,
a legend beside its axes, text drawn as written, and the PNG data URI the page inlines.

Figures use matplotlib's object API (no pyplot, no global backend state) and constrained
layout, which makes room for a legend placed outside its axes; the legend never covers data.
"""

from __future__ import annotations

import base64
import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 90


def plain(text) -> str:
    """`text` for matplotlib to draw verbatim. Names come from stored files and out-of-tree
    impls (NNLADDER_IMPLS); two `$` in one would start mathtext, where `_`, `^` and `\\` are
    markup and one that does not parse stops the whole figure from drawing."""
    return str(text).replace("$", r"\$")


def figure(width: float, height: float, rows: int = 1, cols: int = 1):
    """A figure and its rows x cols axes (an array, even for one)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def panels(count: int, cols: int, width: float, height: float):
    """A figure of `count` panels, `cols` to a row (fewer when there are fewer): the figure
    and the panels in reading order; the grid's spare axes are hidden."""
    cols = min(count, cols)
    rows = -(-count // cols)
    fig, axes = figure(width * cols, height * rows, rows, cols)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def legend_beside(ax, corner: str = "upper", **options):
    """The axes' legend to their right, top- or bottom-aligned: outside the data."""
    anchor = (1.02, 1.0) if corner == "upper" else (1.02, 0.0)
    return ax.legend(
        loc=f"{corner} left",
        bbox_to_anchor=anchor,
        borderaxespad=0,
        frameon=False,
        **{"fontsize": 7, **options},
    )


def to_data_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
