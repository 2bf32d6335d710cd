"""The report's CUDA GEMM ladder (harness/report/tables.py's cuda_ladder and its template),
from synthetic rows: rung 00 up to cuBLAS, each rung's speedup over the one below, and what it
adds as its kernel file's header says; no section where no CUDA rung has a row."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from jinja2 import Environment, PackageLoader

from harness.report import tables
from impls._cuda_base import KERNELS

RUNGS = ["00_uncoalesced", "01_naive", "02_tiled", "03_blocktile", "04_vectorized"]
RUNGS += ["05_warptile", "cublas"]
SIZE = "M=4096 K=4096 N=4096"


def row(rung, seconds, impl="cuda-tiled", size=SIZE, **extra):
    return {
        "impl": impl,
        "gemm_rung": rung,
        "workload": "matmul",
        "phase": "fwd",
        "size": size,
        "status": "ok",
        "t_median_s": seconds,
        "flops": 2 * 4096**3 if size == SIZE else 2 * 1024**3,
        "gflops_per_s": 2 * 4096**3 / seconds / 1e9,
        "timestamp": "2026-12-01T00:00:00+00:00",
        **extra,
    }


def ladder_rows():
    seconds = [0.4, 0.03, 0.017, 0.0055, 0.0042, 0.0036, 0.0027]
    return [row(r, s, warptile="128x128x16 w64x64/4 t8x4") for r, s in zip(RUNGS, seconds)]


def test_every_gemm_rung_says_in_one_line_what_it_adds_and_what_it_lacks():
    for path in sorted(KERNELS.glob("0[0-9]_*.cu")):
        header = path.read_text().split("\n\n")[0]  # the comment above the first blank line
        for word in ("Adds", "Lacks"):
            lines = re.findall(rf"^// {word}: (.+)$", header, re.M)
            assert len(lines) == 1 and len(lines[0]) > 20, f"{path.name}: one '// {word}:' line"


def test_the_ladder_runs_from_rung_00_to_cublas_with_speedups_and_notes():
    ladder = tables.cuda_ladder(pd.DataFrame(ladder_rows()))
    assert (ladder["size"], ladder["mode"]) == (SIZE, "events")
    rows = ladder["rows"]
    assert [r["rung"] for r in rows] == RUNGS[:-1] + ["cuBLAS"]
    assert [r["over_below"] for r in rows[:3]] == ["", "13x", "1.8x"]  # 0.4 / 0.03, 0.03 / 0.017
    assert rows[-1]["over_first"] == "150x"  # 0.4 / 0.0027
    assert rows[0]["adds"].startswith("a GPU thread per output of c")  # 00_uncoalesced.cu's line
    assert "cp.async" in rows[5]["adds"] and "TF32 off" in rows[6]["adds"]
    assert rows[0]["time"] == "400 ms" and rows[-1]["gflops"] == "50,903"
    assert (
        rows[5]["impl"] == "cuda-tiled 128x128x16 w64x64/4 t8x4" and rows[4]["impl"] == "cuda-tiled"
    )


def test_the_newest_row_of_a_rung_counts_at_the_size_and_mode_most_rungs_ran():
    rows = ladder_rows()
    rows += [{**row("01_naive", 0.02), "timestamp": "2026-12-02T00:00:00+00:00"}]  # newer
    rows += [row(r, 1e-3, size="M=1024 K=1024 N=1024") for r in RUNGS[:3]]  # fewer rungs
    rows += [row(r, 1e-3, gpu_timing="graph") for r in RUNGS[:2]]
    ladder = tables.cuda_ladder(pd.DataFrame(rows))
    assert (ladder["size"], ladder["mode"]) == (SIZE, "events")
    assert ladder["rows"][1]["time"] == "20 ms"
    assert len(ladder["rows"]) == len(RUNGS)


def test_no_cuda_ladder_without_rows_of_its_rungs():
    plain = pd.DataFrame([{**row(None, 1e-3), "impl": "numpy"}])
    assert tables.cuda_ladder(plain) is None
    assert tables.cuda_ladder(plain.drop(columns="gemm_rung")) is None
    failed = pd.DataFrame(
        [{**r, "status": "unavailable", "t_median_s": None} for r in ladder_rows()]
    )
    assert tables.cuda_ladder(failed) is None


@pytest.mark.parametrize("with_rows", [True, False])
def test_the_section_appears_only_with_the_ladder(with_rows):
    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=True)
    ladder = tables.cuda_ladder(pd.DataFrame(ladder_rows())) if with_rows else None
    html = env.get_template("cuda_ladder.html").render(cuda_ladder=ladder)
    assert ('<section id="cuda-ladder">' in html) == with_rows
    if with_rows:
        assert html.count("<tr><td") == len(RUNGS)
        assert "coalescing: threadIdx.x along n" in html  # 01's Adds line; no Lacks line
        assert "one transaction each" not in html
