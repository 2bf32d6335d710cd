"""The report: one self-contained, escaped HTML file with every status, figure and table."""

from __future__ import annotations

import json
import re
import types

import numpy as np
import pandas as pd
import pytest

from harness.report import plots
from harness.report import summary as report
from harness.results import ceilings, machine, store

CEILINGS = {"machine": machine.machine_name(), "measured_at": "2026-01-01T00:00:00+00:00",
            "gemm_gflops_per_s": 100.0, "copy_gb_per_s": 10.0, "gemm_n": 2048,
            "copy_bytes": 1 << 28, "cpu": "test", "gpu": "", "blas": "test", "threads": 1}


def row(impl, n, phase="fwd", status="ok", seconds=None, commit="a" * 40, run="r1", **extra):
    flops = (2 if phase == "fwd" else 4) * n**3
    nbytes = 4 * 3 * n * n
    out = {"run_id": run, "timestamp": run, "commit": commit, "dirty": False,
           "machine": machine.machine_name(), "cpu": "test cpu", "python": "3.11",
           "numpy": np.__version__, "blas": "test", "threads": 1, "impl": impl,
           "device": "cpu", "workload": "matmul", "size": f"M={n} K={n} N={n}", "M": n,
           "K": n, "N": n, "phase": phase, "status": status, "reason": "", "flops": flops,
           "bytes": nbytes, "intensity": flops / nbytes, "tol": 1e-5}
    if status == "ok":
        out.update(t_median_s=seconds, samples_s=[seconds] * 5, gflops_per_s=flops / seconds / 1e9,
                   peak_mem_bytes=nbytes * 2, rel_err=1e-7)
    return {**out, **extra}


def table_of_every_status():
    rows = []
    for n, t_numpy in ((64, 1e-4), (128, 5e-4), (256, 2e-3)):
        for phase, factor in (("fwd", 1), ("bwd", 2)):
            rows.append(row("numpy", n, phase, seconds=t_numpy * factor))
            rows.append(row("numpy", n, phase, seconds=t_numpy * factor * 1.2, commit="b" * 40,
                            run="r0"))  # an older commit: the history figure
    rows += [
        row("pure_python", 64, seconds=0.1), row("pure_python", 64, "bwd", seconds=0.2),
        row("pure_python", 128, seconds=0.8), row("pure_python", 128, "bwd", seconds=1.6),
        row("pure_python", 256, status="over_budget", t_predicted_s=6.4,
            reason="predicted 6.4 s > budget 3 s"),
        row("pure_python", 256, "bwd", status="over_budget", t_predicted_s=12.8,
            reason="predicted 12.8 s > budget 3 s"),
        row("c", 256, status="wrong", rel_err=0.5, reason="rel err 0.5 > tolerance 1e-05"),
        row("c", 256, "bwd", status="error", reason="<script>alert('x')</script> crashed"),
        row("cuda-naive", 256, status="unavailable", reason="no GPU"),
        row("sharded", 256, status="unsupported", reason="sharded does not implement matmul"),
        {"run_id": "r1", "timestamp": "r1", "commit": "a" * 40, "machine":
         machine.machine_name(), "impl": "numpy", "workload": "train", "size": "", "phase":
         "step", "status": "ok", "reason": "", "epoch": 1, "loss": 0.5},
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Every status stored through RunWriter, loaded back and rendered once (figures are slow
    on two shared cores): -> (results folder, the run file's bytes before rendering, html)."""
    results = tmp_path_factory.mktemp("results")
    ceilings.write(CEILINGS, results)
    writer = store.RunWriter("r1", machine.machine_name(), results)
    for r in table_of_every_status().to_dict("records"):
        writer.append({k: v for k, v in r.items() if not (isinstance(v, float) and np.isnan(v))})
    before = writer.path.read_bytes()
    out = report.render(store.load(results), results.parent / "out" / "summary.html", results)
    return results, writer.path, before, out


@pytest.fixture(scope="module")
def html(stored):
    return stored[3].read_text()


def headline_rows(html):
    section = html[html.index("<h2>Headline"):html.index("<h2>Figures")]
    return re.findall(r"<tr[^>]*>\s*<td.*?</tr>", section, re.S)


def test_every_status_shows_in_colour_and_nothing_escapes(html):
    rows = headline_rows(html)
    for status in ("ok", "wrong", "error", "over_budget", "unavailable", "unsupported"):
        assert any(f'class="l {status}">{status}<' in r for r in rows), status
    assert "predicted 6.4 s" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(" in html
    assert "<script" not in html  # no script at all: the file reads without one


def test_headline_speedups_and_roof_fraction(html):
    numpy_fwd = next(r for r in headline_rows(html) if ">numpy<" in r and ">fwd<" in r)
    assert "M=256 K=256 N=256" in numpy_fwd  # the size most impls were tried at
    assert "~3.2e+03x" in numpy_fwd  # 6.4 s predicted for pure_python / 2 ms
    # 2*256^3 flops in 2 ms = 16.8 GFLOP/s; the roof at 42.7 FLOP/B is min(100, 427) = 100
    assert "<td>16.8</td>" in numpy_fwd
    smaller = report.latest(table_of_every_status().query("workload != 'train' and M <= 128"))
    rows = report.headline(smaller, ["pure_python", "numpy"], CEILINGS)
    fwd = next(r for r in rows if r["impl"] == "numpy" and r["phase"] == "fwd")
    assert fwd["x_pure_python"] == "1.6e+03x" and fwd["x_numpy"] == "1x"  # 0.8 s / 0.5 ms
    assert fwd["roof"] == "8.4"  # 8.39 GFLOP/s of min(100, 10 * 21.3) = 100


def test_report_is_one_file_with_inline_images(stored, html):
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 6  # speedup, scaling, roofline, fwd/bwd, memory, history
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert list(stored[3].parent.iterdir()) == [stored[3]]
    assert "100.0 GFLOP/s" in html and "10.0 GB/s" in html  # the stored ceilings


def test_training_rows_stay_out_of_the_timing_tables(html):
    assert ">train<" not in html


def test_rendering_leaves_stored_results_alone(stored):
    results, path, before, _ = stored
    assert path.read_bytes() == before
    assert json.loads((results / machine.machine_name() / "ceilings.json").read_text()) \
        == CEILINGS


def test_training_figures_come_from_train_report(monkeypatch):
    seen = []

    def figures(table):
        seen.append(set(table["workload"]))
        fig, ((ax,),) = plots.figure(3, 2)
        ax.plot([1, 2], [2, 1])
        return [("Training loss", fig)]

    fake = types.SimpleNamespace(figures=figures)
    monkeypatch.setattr(report, "training", fake)
    drawn = report.training_figures(table_of_every_status())
    assert seen == [{"train"}]
    assert [title for title, _ in drawn] == ["Training loss"]
    assert drawn[0][1].startswith("data:image/png;base64,")


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
    monkeypatch.setattr(ceilings, "GEMM_N", 256)
    monkeypatch.setattr(ceilings, "COPY_BYTES", 1 << 24)
    measured = ceilings.measure()
    assert 0.1 < measured["gemm_gflops_per_s"] < 1e5
    assert 0.1 < measured["copy_gb_per_s"] < 1e4
    assert measured["machine"] == machine.machine_name()


def test_fitted_exponent():
    work = np.array([1e3, 1e4, 1e5, 1e6])
    assert plots.fit_exponent(work, 3e-9 * work**0.5) == pytest.approx(0.5)
    assert plots.fit_exponent(work, 1e-9 * work) == pytest.approx(1.0)


def test_machine_block_comes_from_the_newest_timed_run(html):
    block = html[html.index("<h2>Machine"):]
    assert "<dd>test cpu</dd>" in block and "<dd>nan</dd>" not in block
    assert "a" * 40 in block  # the commit of the newest run


def test_instruction_counts_stay_out_of_the_timing_report(tmp_path):
    ceilings.write(CEILINGS, tmp_path)
    timed = table_of_every_status()
    counted = timed[timed.workload == "matmul"].assign(
        measure="instructions", instructions=1e6, timestamp="r9", run_id="r9")
    both = report.context(pd.concat([timed, counted], ignore_index=True), tmp_path)
    alone = report.context(timed, tmp_path)
    assert both["cells"] == alone["cells"] and both["headline"] == alone["headline"]
