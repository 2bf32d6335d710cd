"""The report's figures: one colour per impl in every one of them (hues by family), legends
beside the data and never on it, a titled panel per workload, every roof drawn and named,
the process's native peak memory where rows have it; the training figures of every model
(tests/test_training_figures.py's rows) among them."""

from __future__ import annotations

import colorsys

import pandas as pd
import pytest
from matplotlib.colors import to_hex, to_rgb
from matplotlib.legend import Legend

from harness import registry
from harness.measure import roofs
from harness.report import plots, training, trends
from harness.report import summary as report
from harness.report.palette import colours
from tests.report_tables import CEILINGS, synthetic
from tests.test_training_figures import model_rows

UNKNOWN = ["mine", "theirs-2", "x$y$"]  # out-of-tree impls (NNLADDER_IMPLS) the registry lacks


@pytest.fixture(scope="module")
def drawn():
    """(palette, [(title, Figure)]) of every figure the synthetic report draws, the training
    figures of an MLP, a CNN and a GPT among them, drawn once."""
    table = pd.concat([synthetic(), model_rows()], ignore_index=True)
    cells = report.bounds.judged(report.latest(table[table.workload != "train"]), CEILINGS)
    order = report.ladder_order(table["impl"])
    figures = report.figures(
        table[table.workload != "train"], cells, order, CEILINGS
    ) + report.training_figures(table, order)
    for _, fig in figures:
        fig.canvas.draw()
    return colours(order), figures


def hue(colour) -> float:
    return colorsys.rgb_to_hsv(*to_rgb(colour))[0]


def test_no_two_impls_share_a_colour_and_each_family_keeps_its_hue():
    palette = colours(registry.names() + UNKNOWN)
    assert len(set(palette.values())) == len(palette)
    assert list(palette) == registry.names() + UNKNOWN
    families = {
        "c": ["c", "c-blocked", "c-loops", "c-naive"],
        "cuda": ["cuda-naive", "cuda-tiled", "cuda-cublas"],
        "sharded": ["sharded-col", "sharded-row", "sharded-mlp"],
    }
    for members in families.values():
        hues = [hue(palette[m]) for m in members]
        assert max(hues) - min(hues) < 0.1, members  # shades of one hue
    singles = [hue(palette[impl]) for impl in ("pure_python", "numpy")] + [
        hue(palette[members[0]]) for members in families.values()
    ]
    assert min(abs(a - b) for i, a in enumerate(singles) for b in singles[i + 1 :]) > 0.04
    assert colours(["c", "numpy"]) == {k: palette[k] for k in ("c", "numpy")}  # a known
    # impl's colour does not depend on which others are drawn with it


def test_every_legend_lies_outside_every_axes(drawn):
    _, figures = drawn
    with_legends = set()
    for title, fig in figures:
        renderer = fig.canvas.get_renderer()
        boxes = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()]
        for ax in fig.axes:
            for legend in [c for c in ax.get_children() if isinstance(c, Legend)]:
                with_legends.add(title)
                box = legend.get_window_extent(renderer)
                assert not any(box.overlaps(other) for other in boxes), (title, legend)
        assert not fig.legends, title  # figure legends: none (constrained layout skips them)
    assert {
        "Time against work",
        "Roofline",
        "Forward against backward",
        "Peak memory",
        "History across commits",
    } <= with_legends
    training = {title.split(":")[0] for title in with_legends if ": " in title}
    assert training == {
        "Learning curves",
        "Loss curves",
        "Weight histograms",
        "Weights by epoch",
        "Activations by epoch",
        "Gradient flow",
    }


def impl_of(label: str, palette: dict):
    """The impl a legend label names: the longest impl name it starts with as a word."""
    named = [i for i in palette if label == i or label.startswith((f"{i} ", f"{i}:"))]
    return max(named, key=len, default=None)


def handle_colour(handle) -> str:
    if hasattr(handle, "get_color"):
        return to_hex(handle.get_color())
    return to_hex(handle.get_edgecolor())  # a histogram's outline


def test_every_figure_gives_an_impl_the_colour_of_the_palette(drawn):
    palette, figures = drawn
    checked = 0
    for title, fig in figures:
        for ax in fig.axes:
            for legend in [c for c in ax.get_children() if isinstance(c, Legend)]:
                for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True):
                    impl = impl_of(text.get_text(), palette)
                    if impl:
                        assert handle_colour(handle) == palette[impl], (title, impl)
                        checked += 1
    assert checked > 40
    speedups = next(fig for title, fig in figures if title == "Speedup across the ladder")
    bars = speedups.axes[0].patches
    names = [t.get_text() for t in speedups.axes[0].get_xticklabels()]
    assert [to_hex(b.get_facecolor()) for b in bars] == [palette[n] for n in names]
    times = next(fig for title, fig in figures if title.startswith("Time to accuracy"))
    assert [to_hex(b.get_facecolor()) for b in times.axes[0].patches] == [
        palette[t.get_text()] for t in times.axes[0].get_yticklabels()
    ]


def test_one_titled_panel_per_workload(drawn):
    _, figures = drawn
    expect = ["matmul", "linear", "mnist_mlp", "attention"]
    for title in ("Speedup across the ladder", "Time against work"):
        fig = dict(figures)[title]
        shown = [ax.get_title() for ax in fig.axes if ax.get_visible()]
        assert shown == (
            expect if title.startswith("Speedup") else ["matmul", "linear", "attention"]
        ), title  # mnist_mlp: one size
    assert [
        ax.get_title() for ax in dict(figures)["History across commits"].axes if ax.get_visible()
    ] == ["matmul"]


def test_the_roofline_draws_every_roof_named_with_each_row_under_its_own(drawn):
    _, figures = drawn
    fig = dict(figures)["Roofline"]
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [
        f"Roofline, {plots.PANELS[p]}" for p in (("cpu", "one_core"), ("cpu", "all_cores"))
    ]
    for ax, scope in zip(panels, roofs.SCOPES, strict=True):
        names = [t.get_text().split(":")[0] for t in ax.texts]
        assert names[:4] == ["L1", "L2", "L3", "DRAM"]
        assert sorted(names[4:]) == sorted(
            c["name"] for c in roofs.compute_roofs(CEILINGS, "cpu") if c["scope"] == scope
        )
    impls = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in panels]
    assert impls == [["pure_python", "numpy", "c-blocked", "c-naive"], ["c", "sharded-col"]]


def test_the_memory_figure_shows_the_native_high_water_where_rows_have_it(drawn):
    _, figures = drawn
    mixed = dict(figures)["Peak memory"].axes[0].get_title()
    assert "process high-water (native allocations included)" in mixed and "hollow" in mixed
    cells = report.latest(synthetic().query("workload == 'matmul' and status == 'ok'"))
    native = plots.memory(cells[cells.impl.str.startswith("c")], ["c", "c-blocked", "c-naive"])
    assert "tracemalloc" not in native.axes[0].get_title()
    peaks = sorted(y for ax in native.axes for c in ax.collections for _, y in c.get_offsets())
    assert peaks == sorted(cells[cells.impl.str.startswith("c")]["peak_rss_bytes"])
    python = plots.memory(cells.drop(columns="peak_rss_bytes"), ["numpy", "c"])
    assert "high-water" not in python.axes[0].get_title()


def test_training_figures_take_the_reports_colours():
    table = synthetic()
    order = ["pure_python", "numpy", "c", "zz-other"]
    curves = training.figures(table, order)[0][1]
    lines = {line.get_label(): to_hex(line.get_color()) for line in curves.axes[0].get_lines()}
    assert lines == {impl: colours(order)[impl] for impl in ("numpy", "c", "pure_python")}


def test_phases_keep_the_ladder_order_in_the_legends(drawn):
    _, figures = drawn
    matmul = dict(figures)["Time against work"].axes[0]
    labels = [t.get_text().split(":")[0] for t in matmul.get_legend().get_texts()]
    assert labels[:4] == ["numpy fwd", "numpy bwd", "c fwd", "c bwd"]
    assert trends.PHASE_STYLE == {"fwd": "-", "bwd": "--", "step": ":"}
