"""harness/measure/roofs.py: cells of known intensity and working set judged against
synthetic ceilings, each at the level it fits in, under the right roof and under every line
of the roofline; ceilings from before the hierarchy read as not measured."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.measure import roofs
from harness.results import ceilings as machine_ceilings
from harness.results import machine

MiB = 1 << 20
OLD = {
    "machine": machine.machine_name(),
    "measured_at": "2026-01-01T00:00:00+00:00",
    "gemm_gflops_per_s": 180.0,
    "copy_gb_per_s": 20.0,
    "gemm_n": 2048,
    "copy_bytes": 1 << 28,
    "cpu": "test",
    "gpu": "",
    "blas": "test",
    "threads": 2,
}


def level(name, nbytes, shared_by, read, update):
    """read, update: (one core, all cores) GB/s."""
    return {
        "name": name,
        "bytes": nbytes,
        "shared_by": shared_by,
        "read_gb_per_s": dict(zip(roofs.SCOPES, read)),
        "update_gb_per_s": dict(zip(roofs.SCOPES, update)),
    }


# One core: L1 300, L2 150, L3 80, DRAM 30 GB/s (the faster of read and update); all cores:
# 600, 300, 160 and 30 (DRAM's update on both is 28, under one core's 30).
SYNTHETIC = {
    **OLD,
    "cores": 2,
    "isas": ["avx2"],
    "fma_gflops_per_s": {"one_core": 100.0, "all_cores": 200.0},
    "blas_gflops_per_s": {"one_core": 90.0, "all_cores": 210.0},
    "levels": [
        level("L1", 32 << 10, 1, (200, 400), (300, 600)),
        level("L2", 1 * MiB, 1, (100, 200), (150, 250)),  # the team lost a thread
        level("L3", 32 * MiB, 2, (60, 120), (80, 160)),
        level("DRAM", None, 2, (20, 25), (30, 28)),
    ],
    "cuda_gemm_gflops_per_s": 50000.0,
    "cuda_copy_gb_per_s": 3000.0,
    "cuda_gemm_n": 8192,
    "cuda_copy_bytes": 1 << 30,
    "cuda_fma_gflops_per_s": 60000.0,
    "cuda_sms": 132,
    "cuda_sm_clock_mhz": 1980.0,
    "cuda_levels": [
        {"name": "L2", "bytes": 50 * MiB, "read_gb_per_s": 9000.0},
        {"name": "HBM", "bytes": 80 << 30, "read_gb_per_s": 2500.0},
    ],
}


def cell(nbytes, intensity, threads=1, gflops=None, **extra):
    out = {
        "impl": "x",
        "device": "cpu",
        "threads": threads,
        "bytes": nbytes,
        "flops": intensity * nbytes,
        "intensity": intensity,
        **extra,
    }
    return out if gflops is None else {**out, "gflops_per_s": gflops}


def test_levels_smallest_first_with_capacities_and_bandwidths():
    one = roofs.levels(SYNTHETIC, "cpu", "one_core")
    assert [(lv["name"], lv["bytes"], lv["gb_per_s"]) for lv in one] == [
        ("L1", 32 << 10, 300),
        ("L2", MiB, 150),
        ("L3", 32 * MiB, 80),
        ("DRAM", math.inf, 30),
    ]
    team = roofs.levels(SYNTHETIC, "cpu", "all_cores")
    # two L1s and L2s, one shared L3; L2's 250 from the team is under 2 x one core's 150
    assert [(lv["name"], lv["bytes"], lv["gb_per_s"]) for lv in team] == [
        ("L1", 64 << 10, 600),
        ("L2", 2 * MiB, 300),
        ("L3", 32 * MiB, 160),
        ("DRAM", math.inf, 30),
    ]
    assert [lv["name"] for lv in roofs.levels(SYNTHETIC, "cuda")] == ["L2", "HBM"]
    assert roofs.levels(SYNTHETIC, "cuda")[-1]["gb_per_s"] == 3000  # the copy is faster


def test_a_level_is_never_slower_than_the_one_beyond_it():
    slow_l2 = {**SYNTHETIC, "levels": [*SYNTHETIC["levels"]]}
    slow_l2["levels"][1] = level("L2", MiB, 1, (10, 20), (10, 20))  # noise: under L3's 80
    assert [lv["gb_per_s"] for lv in roofs.levels(slow_l2)] == [300, 80, 80, 30]


def test_compute_roofs_name_both_scopes():
    assert [(r["name"], r["gflops_per_s"]) for r in roofs.compute_roofs(SYNTHETIC)] == [
        ("FMA peak (avx2), 1 core", 100),
        ("FMA peak (avx2), 2 cores", 200),
        ("BLAS GEMM 2048^3, 1 core", 90),
        ("BLAS GEMM 2048^3, 2 cores", 210),
    ]
    assert [r["name"] for r in roofs.compute_roofs(SYNTHETIC, "cuda")] == [
        "FP32 FMA peak",
        "cuBLAS GEMM 8192^3",
    ]


@pytest.mark.parametrize(
    "row, bound, roof",
    [
        (cell(24 << 10, 0.25), "L1", 75.0),  # 300 GB/s x 0.25
        (cell(48 << 10, 0.25, threads=2), "L1", 150.0),  # two L1s on two threads
        (cell(48 << 10, 0.25), "L2", 37.5),  # one core's L1 is too small
        (cell(1.5 * MiB, 0.1, threads=2), "L2", 30.0),
        (cell(20 * MiB, 1 / 6), "L3", 80 / 6),
        (cell(20 * MiB, 1 / 6, threads=1, P=2), "L3", 160 / 6),  # a sharded row: all cores
        # optim: 5 steps over one 12 MiB set of arrays move 60 MiB: judged in L3, not DRAM
        (cell(60 * MiB, 1 / 6, steps=5), "L3", 80 / 6),
        (cell(60 * MiB, 1 / 6, steps=5, working_set_bytes=8 * MiB), "L3", 80 / 6),
        (cell(1.35 * MiB, 0.3, steps=1, working_set_bytes=0.75 * MiB), "L2", 45.0),  # as given
        (cell(100 * MiB, 0.1), "DRAM", 3.0),
        (cell(12 * MiB, 170.0), "compute", 100.0),  # matmul 1024^3: the FMA peak, one core
        (cell(12 * MiB, 170.0, threads=2), "compute", 210.0),  # BLAS beat the FMA loop: its peak
        (cell(30 * MiB, 0.5, device="cuda"), "L2", 4500.0),
        (cell(1 << 30, 100.0, device="cuda"), "compute", 60000.0),
    ],
)
def test_each_cell_is_judged_at_its_level_under_its_roof(row, bound, roof):
    verdict = roofs.judge(row, SYNTHETIC)
    assert verdict["roof_bound"] == bound
    assert verdict["roof_gflops_per_s"] == pytest.approx(roof)
    assert "roof_pct" not in verdict  # no time, no fraction
    timed = roofs.judge({**row, "gflops_per_s": roof * 0.4}, SYNTHETIC)
    assert timed["roof_pct"] == pytest.approx(40.0)


def test_no_cell_at_its_roof_crosses_a_line_of_the_roofline():
    """Cells from L1-sized to far beyond L3, at intensities from streaming to GEMM: one at
    its roof is under every compute roof of its scope and under the line of its own level and
    of every smaller (faster) one; the roof never rises as the working set grows."""
    for threads in (1, 2):
        scope = "all_cores" if threads > 1 else "one_core"
        lines = roofs.levels(SYNTHETIC, "cpu", scope)
        peak = max(
            r["gflops_per_s"]
            for r in roofs.compute_roofs(SYNTHETIC)
            if r["scope"] in ("one_core", scope)
        )
        for intensity in (0.05, 0.25, 1.0, 4.0, 64.0):
            previous = math.inf
            for nbytes in np.geomspace(4 << 10, 1 << 30, 40):
                verdict = roofs.judge(cell(nbytes, intensity, threads), SYNTHETIC)
                at_roof = verdict["roof_gflops_per_s"]
                fits = next(i for i, lv in enumerate(lines) if nbytes <= lv["bytes"])
                assert verdict["roof_level"] == lines[fits]["name"]
                assert at_roof <= peak
                assert all(
                    at_roof <= lv["gb_per_s"] * intensity * (1 + 1e-12) for lv in lines[: fits + 1]
                )
                assert at_roof <= previous * (1 + 1e-12)
                previous = at_roof


def test_a_pandas_row_with_missing_columns_is_judged_as_a_dict_would_be():
    row = pd.Series({**cell(20 * MiB, 1 / 6, gflops=5.0), "P": math.nan, "steps": math.nan})
    assert roofs.judge(row, SYNTHETIC) == roofs.judge(cell(20 * MiB, 1 / 6, gflops=5.0), SYNTHETIC)
    assert roofs.judge(cell(0, 1.0), SYNTHETIC) == {}  # no bytes: no roof
    assert roofs.judge(cell(MiB, 0.0, gflops=0.0), SYNTHETIC) == {}  # no work: no roof


@pytest.mark.parametrize("ceilings", [None, {}, OLD])
def test_missing_or_old_ceilings_give_no_roofs(ceilings):
    assert roofs.levels(ceilings) == [] and roofs.compute_roofs(ceilings) == []
    assert roofs.levels(ceilings, "cuda") == [] and roofs.compute_roofs(ceilings, "cuda") == []
    assert roofs.judge(cell(20 * MiB, 1 / 6, gflops=5.0), ceilings) == {}


def test_an_old_ceilings_file_is_read_and_its_hierarchy_reads_as_not_measured(
    tmp_path, monkeypatch
):
    machine_ceilings.write(OLD, tmp_path)
    assert roofs.whole(OLD)
    monkeypatch.setattr(machine_ceilings, "measure", lambda: pytest.fail("measured again"))
    stored = machine_ceilings.for_this_machine(tmp_path)
    assert stored == OLD and roofs.judge(cell(MiB, 1.0, gflops=1.0), stored) == {}


@pytest.mark.parametrize(
    "broken",
    [
        {"levels": []},
        {"levels": [{"name": "L1"}]},
        {"fma_gflops_per_s": {"one_core": 1.0}},
        {
            "levels": [
                {**SYNTHETIC["levels"][0], "update_gb_per_s": {"one_core": -1, "all_cores": 1}}
            ]
        },
        {"cuda_levels": "HBM"},
        {"cuda_fma_gflops_per_s": True},
    ],
)
def test_a_hierarchy_that_is_not_whole_is_measured_again(tmp_path, monkeypatch, broken):
    machine_ceilings.write({**SYNTHETIC, **broken}, tmp_path)
    assert machine_ceilings.read(machine.machine_name(), tmp_path) is None
    monkeypatch.setattr(machine_ceilings, "measure", lambda: dict(SYNTHETIC))
    assert machine_ceilings.for_this_machine(tmp_path) == SYNTHETIC
    assert machine_ceilings.read(machine.machine_name(), tmp_path) == SYNTHETIC


def test_levels_name_a_scope_they_do_not_know():
    with pytest.raises(ValueError, match="scope must be one of one_core, all_cores, got 'x'"):
        roofs.levels(SYNTHETIC, "cpu", "x")
