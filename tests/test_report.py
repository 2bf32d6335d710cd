"""The report: one self-contained, escaped HTML file that opens with what the ladder buys,
lists what could not run in a few lines, and shows every status, flag, figure and table."""

from __future__ import annotations

import json
import re
import types

import numpy as np
import pandas as pd
import pytest

from harness.measure import roofs
from harness.report import bounds, draw, headline, tables, trends
from harness.report import summary as report
from harness.report.palette import colours
from harness.results import ceilings, ceilings_cpu, machine, store
from tests.report_tables import CEILINGS, NO_CUPY, REASON, cell, row, synthetic

__all__ = ["CEILINGS", "row"]  # what other tests build their rows from


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The synthetic table stored through RunWriter, loaded back and rendered once (figures
    are slow on two shared cores): -> (results folder, run file, its bytes before, html)."""
    results = tmp_path_factory.mktemp("results")
    ceilings.write(CEILINGS, results)
    writer = store.RunWriter("r2", machine.machine_name(), results)
    for r in synthetic().to_dict("records"):
        writer.append({k: v for k, v in r.items() if not (isinstance(v, float) and np.isnan(v))})
    before = writer.path.read_bytes()
    out = report.render(store.load(results), results.parent / "out" / "summary.html", results)
    return results, writer.path, before, out


@pytest.fixture(scope="module")
def html(stored):
    return stored[3].read_text()


def section(html, name):
    start = html.index(f'<section id="{name}">')
    return html[start : html.index("</section>", start)]


def test_the_page_opens_with_a_line_and_bars_per_workload(html):
    glance = section(html, "glance")
    assert html.index('<section id="glance">') < html.index('<section id="statuses">')
    assert glance.count('<div class="card">') == 4  # matmul, linear, mnist_mlp, attention
    # pure_python ran matmul at 64 only: 2*64^3 in 26.2 ms against c's 10.7 us; c, on both
    # cores, reached 48.8 GFLOP/s of min(240, 400 GB/s in L1 x 10.7 FLOP/B): the FMA peak
    assert (
        "<b>matmul 64³ fwd</b>: c is 2,400x faster than pure_python; at 20% of its compute "
        "roof (FMA peak (avx2), 2 cores)"
    ) in glance
    assert "<b>mnist_mlp B=64 layers=784-128-64-10 opt=sgd step</b>" in glance  # step, not fwd
    bars = re.findall(r'<span class="name">([^<]+)</span>', glance.split('<div class="card">')[1])
    assert bars == ["pure_python", "c-naive", "sharded-col", "numpy", "c-blocked", "c"]


def test_the_headline_size_is_the_largest_every_impl_ran_ok():
    def at(impl, n, status="ok", **extra):
        return row(impl, n, status=status, seconds=1e-3 * n, **extra)

    rows = [
        at("numpy", 64),
        at("numpy", 128),
        at("numpy", 256),
        at("c", 64),
        at("c", 128),
        at("c", 256, "over_budget"),
        at("cuda-naive", 64, "unavailable"),
        at("cuda-naive", 128, "unavailable"),
        {**at("sharded-col", 128), "size": "M=128 K=128 N=128 P=2"},
        {**at("sharded-col", 256), "size": "M=256 K=256 N=256 P=2"},
    ]
    assert headline.sizes(pd.DataFrame(rows)) == {("matmul", "fwd"): "M=128 K=128 N=128"}
    apart = [at("numpy", 64), at("numpy", 128, "wrong"), at("c", 64, "error"), at("c", 128)]
    assert headline.sizes(pd.DataFrame(apart)) == {("matmul", "fwd"): "M=128 K=128 N=128"}


def test_impls_that_cannot_run_here_are_one_line_each(html):
    statuses = section(html, "statuses")
    for impl in ("cuda-naive", "cuda-tiled", "cuda-cublas"):
        assert re.search(
            rf'<td class="l">{impl}</td><td class="l unavailable">unavailable</td>'
            r"<td>17</td>",
            statuses,
        )
    assert html.count(NO_CUPY.replace("'", "&#39;")) == 3  # not one per cell
    assert "cuda-naive" not in section(html, "headline")


def test_every_other_status_is_counted_in_colour_with_its_reason(html):
    statuses = section(html, "statuses")
    over = re.search(
        r'<td class="l">pure_python</td><td class="l over_budget">over_budget</td>'
        r"<td>8</td><td class=\"reason\">predicted over the time budget</td>"
        r'<td class="where">([^<]+)</td>',
        statuses,
    )
    assert over and over.group(1).count("~40 s") == 8
    for status, reason in (
        ("wrong", "rel err 0.5 &gt; tolerance 1e-05"),
        ("error", "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; killed"),
        ("unsupported", "sharded-col does not implement bmm backward"),
    ):
        assert re.search(
            rf'class="l {status}">{status}</td><td>1</td>'
            rf'<td class="reason">{re.escape(reason)}',
            statuses,
        ), status
    assert "<script" not in html  # no script at all: the file reads without one


def test_the_ladder_table_shows_each_impl_at_the_headline_size(html):
    ladder = section(html, "headline")
    heads = re.findall(
        r'<th><span class="swatch" style="background: (#\w+)"></span>([^<]+)</th>', ladder
    )
    assert [name for _, name in heads] == [
        "pure_python",
        "numpy",
        "c",
        "c-blocked",
        "c-naive",
        "sharded-col",
    ]
    assert dict((n, c) for c, n in heads) == colours([n for _, n in heads])
    matmul = re.search(r"<tr><td class=\"l size\"><b>matmul fwd</b>.*?</tr>", ladder, re.S).group(0)
    assert 'class="ok best"' in matmul and ">10.7 us<br><small>2,400x · 20%</small>" in matmul
    assert "26.2 ms<br><small>slowest · 0.017%</small>" in matmul
    assert "<small>M=64 K=64 N=64; vs pure_python</small>" in matmul


def test_unstable_rows_carry_a_flag_with_the_rules_they_broke(html):
    ladder = section(html, "headline")
    reason = REASON.replace(">", "&gt;")
    assert f'<span class="flag" title="{reason}">!</span>' in ladder
    note = ladder[ladder.index('<div class="note">') :]
    assert "6 of\n91 timed cells" in note  # numpy's matmul: 3 sizes x 2 phases
    assert "<li><b>numpy</b>: 6 of 17 (spread 6, max 6)</li>" in note
    assert note.count("<li>numpy matmul") == 6  # each, with its rules
    assert "c-blocked" not in note  # checked and stable; other rows were never checked
    correctness = html[html.index('<h2 id="correctness">') :]
    assert correctness.count(f'title="{reason}"') == 6  # every unstable cell
    assert section(html, "glance").count(f'title="{reason}"') == 1  # numpy's matmul bar
    assert tables.rule("5 rounds < 6 (mean to +-5% at 95%)") == "rounds"
    assert tables.rule("run queue: 1 runnable threads of other work on 2 cores") == "run queue"


def test_the_roofs_come_from_the_rows_or_are_judged_for_older_rows(monkeypatch):
    old, new = row("numpy", 256, seconds=2e-3), row("numpy", 128, seconds=1e-3)
    new.update(roof_bound="L2", roof_gflops_per_s=50.0, roof_pct=8.4)
    cells = bounds.judged(pd.DataFrame([old, new]), CEILINGS)
    judged = roofs.judge(old, CEILINGS)
    assert cells.iloc[0][bounds.VERDICT].to_dict() == {k: judged[k] for k in bounds.VERDICT}
    assert cells.iloc[1][bounds.VERDICT].tolist() == ["L2", 50.0, 8.4]  # measured: kept
    before = {k: v for k, v in CEILINGS.items() if k not in ("levels", "fma_gflops_per_s")}
    assert bounds.judged(pd.DataFrame([old]), before)["roof_pct"].isna().all()  # no hierarchy
    monkeypatch.setattr(
        roofs, "levels", lambda c, d, s: [{"name": "L2", "bytes": 1 << 20, "gb_per_s": 400.0}]
    )
    monkeypatch.setattr(
        roofs,
        "compute_roofs",
        lambda c, d: [
            {"name": "FMA peak, 2 cores", "gflops_per_s": 150.0, "scope": "all_cores"},
            {"name": "FMA peak, 1 core", "gflops_per_s": 75.0, "scope": "one_core"},
        ],
    )
    said = {
        bound: bounds.words(
            {"device": "cpu", "roof_bound": bound, "roof_pct": 71.2, "roof_gflops_per_s": 75.0},
            CEILINGS,
        )
        for bound in ("L2", "compute")
    }
    assert said == {
        "L2": "at 71% of its L2 roof (400 GB/s)",
        "compute": "at 71% of its compute roof (FMA peak, 1 core)",
    }
    assert (
        bounds.words({"device": "cpu", "roof_bound": np.nan, "roof_pct": np.nan}, None)
        == "no roof measured for it"
    )


def test_report_is_one_file_with_inline_images(stored, html):
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 6 + 4  # six figures of the cells, four of training
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert list(stored[3].parent.iterdir()) == [stored[3]]
    assert "100.0 GFLOP/s" in html and "10.0 GB/s" in html  # the stored ceilings


def test_training_rows_stay_out_of_the_timing_tables(html):
    assert ">train<" not in html


def test_rendering_leaves_stored_results_alone(stored):
    results, path, before, _ = stored
    assert path.read_bytes() == before
    assert json.loads((results / machine.machine_name() / "ceilings.json").read_text()) == CEILINGS


def test_training_figures_come_from_train_report(monkeypatch):
    seen = []

    def figures(table, order):
        seen.append((set(table["workload"]), order))
        fig, ((ax,),) = draw.figure(3, 2)
        ax.plot([1, 2], [2, 1])
        return [("Training loss", fig)]

    monkeypatch.setattr(report, "training", types.SimpleNamespace(figures=figures))
    drawn = report.training_figures(synthetic(), ["numpy", "c"])
    assert seen == [({"train"}, ["numpy", "c"])]
    assert [title for title, _ in drawn] == ["Training loss"]


def test_empty_results_render_a_hint(tmp_path):
    out = report.render(store.load(tmp_path / "none"), tmp_path / "summary.html", tmp_path)
    assert "No results yet" in out.read_text()


def test_ceilings_are_measured_once_and_again_on_request(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ceilings, "measure", lambda: calls.append(1) or dict(CEILINGS))
    assert ceilings.for_this_machine(tmp_path) == CEILINGS
    assert ceilings.for_this_machine(tmp_path) == CEILINGS
    assert len(calls) == 1
    ceilings.for_this_machine(tmp_path, remeasure=True)
    assert len(calls) == 2


def test_ceilings_measure_real_figures(monkeypatch):
    monkeypatch.setattr(ceilings_cpu, "GEMM_N", 256)
    monkeypatch.setattr(ceilings_cpu, "COPY_BYTES", 1 << 24)
    measured = ceilings.measure()
    assert 0.1 < measured["gemm_gflops_per_s"] < 1e5
    assert 0.1 < measured["copy_gb_per_s"] < 1e4
    assert measured["machine"] == machine.machine_name()


def test_fitted_exponent():
    work = np.array([1e3, 1e4, 1e5, 1e6])
    assert trends.fit_exponent(work, 3e-9 * work**0.5) == pytest.approx(0.5)
    assert trends.fit_exponent(work, 1e-9 * work) == pytest.approx(1.0)


def test_machine_block_comes_from_the_newest_timed_run(html):
    block = html[html.index('<h2 id="machine">') :]
    assert "<dd>test cpu</dd>" in block and "<dd>nan</dd>" not in block
    assert "a" * 40 in block  # the commit of the newest run


def test_instruction_counts_stay_out_of_the_timing_report(tmp_path):
    ceilings.write(CEILINGS, tmp_path)
    timed = synthetic()
    counted = timed[timed.workload == "matmul"].assign(
        measure="instructions", instructions=1e6, timestamp="r9", run_id="r9"
    )
    both = report.context(pd.concat([timed, counted], ignore_index=True), tmp_path)
    alone = report.context(timed, tmp_path)
    for key in ("cells", "glance", "ladder", "others_status", "unavailable"):
        assert both[key] == alone[key], key


def test_a_row_that_never_ran_ok_anywhere_leaves_the_glance_to_the_others(tmp_path):
    ceilings.write(CEILINGS, tmp_path)
    rows = [
        cell("numpy", "xor", {"B": 4, "layers": "2-4-2", "opt": "sgd"}, "step"),
        cell(
            "c",
            "xor",
            {"B": 4, "layers": "2-4-2", "opt": "sgd"},
            "step",
            "error",
            reason="killed by signal SIGSEGV",
        ),
    ]
    glance = report.context(pd.DataFrame(rows), tmp_path)["glance"]
    assert [g["line"].split(";")[0] for g in glance] == ["only numpy ran it"]
