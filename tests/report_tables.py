"""Synthetic results tables for the report's tests: rows as a run stores them, with analytic
FLOPs and bytes from the workloads and times from a made-up speed per impl.

`synthetic()` is the report's hard case: every family of the ladder (pure Python, NumPy, the
C ladder, a sharded rung at P=2, the CUDA family unavailable), four workloads at several
sizes, every status, a history of three commits, unstable rows, native peak memory on some
rows, and training rows of three impls.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.results import machine
from harness.train import loop as train
from harness.train import scores
from harness.workloads import get_workload, size_label


def _scopes(one_core: float, all_cores: float) -> dict:
    return {"one_core": one_core, "all_cores": all_cores}


def _level(name, nbytes, shared_by, read, update) -> dict:
    return {
        "name": name,
        "bytes": nbytes,
        "shared_by": shared_by,
        "read_gb_per_s": _scopes(*read),
        "update_gb_per_s": _scopes(*update),
    }


# A 2-core machine's ceilings as harness/results/ceilings.py stores them: the hierarchy (GB/s
# on one core and on both) and, from before it, one GEMM and one copy.
CEILINGS = {
    "machine": machine.machine_name(),
    "measured_at": "2026-01-01T00:00:00+00:00",
    "gemm_gflops_per_s": 190.0,
    "copy_gb_per_s": 10.0,
    "gemm_n": 2048,
    "copy_bytes": 1 << 28,
    "cpu": "test",
    "gpu": "",
    "blas": "test",
    "threads": 2,
    "cores": 2,
    "isas": ["avx2"],
    "fma_gflops_per_s": _scopes(120.0, 240.0),
    "blas_gflops_per_s": _scopes(100.0, 190.0),
    "levels": [
        _level("L1", 48 << 10, 1, (200, 400), (150, 300)),
        _level("L2", 1 << 20, 1, (80, 160), (60, 120)),
        _level("L3", 32 << 20, 2, (40, 60), (30, 50)),
        _level("DRAM", None, 2, (10, 14), (8, 12)),
    ],
}
COMMITS = ("c" * 40, "b" * 40, "a" * 40)  # oldest first; the newest is the one shown
# impl: (GFLOP/s it reaches, seconds a call costs whatever its work)
SPEED = {
    "pure_python": (0.02, 2e-6),
    "numpy": (20.0, 5e-6),
    "c-naive": (1.5, 1e-6),
    "c-blocked": (35.0, 1e-6),
    "c": (60.0, 2e-6),
    "sharded-col": (12.0, 3e-5),
}
CUDA = ("cuda-naive", "cuda-tiled", "cuda-cublas")
# what harness/measure/stability.py says of a cell whose rounds spread
REASON = "spread 31.0% >= 10% (stddev / mean); max 2.4 ms is 140% off the median 1 ms"
NO_CUPY = "CuPy is not installed (No module named 'cupy'); pip install cupy-cuda12x"


def cell(
    impl,
    workload,
    size,
    phase="fwd",
    status="ok",
    seconds=None,
    commit=COMMITS[-1],
    run="r2",
    **extra,
):
    """One stored row; an ok row is timed (`seconds`, else from SPEED) and gated."""
    spec = get_workload(workload)
    flops, nbytes = spec.flops(size, phase), spec.bytes(size, phase)
    label = size_label(size) + (" P=2" if impl.startswith("sharded") else "")
    out = {
        "run_id": run,
        "timestamp": run,
        "commit": commit,
        "dirty": False,
        "machine": machine.machine_name(),
        "cpu": "test cpu",
        "python": "3.11",
        "numpy": np.__version__,
        "blas": "test",
        "threads": 2 if impl == "c" else 1,
        "impl": impl,
        **({"P": 2} if impl.startswith("sharded") else {}),
        "device": "cuda" if impl in CUDA else "cpu",
        "workload": workload,
        "size": label,
        **size,
        "phase": phase,
        "status": status,
        "reason": "",
        "flops": flops,
        "bytes": nbytes,
        "intensity": flops / nbytes,
        "tol": spec.tol,
    }
    if status == "ok":
        if seconds is None:
            rate, overhead = SPEED[impl]
            seconds = flops / rate / 1e9 + overhead
        out.update(
            t_median_s=seconds,
            samples_s=[seconds] * 5,
            rounds=5,
            gflops_per_s=flops / seconds / 1e9,
            peak_mem_bytes=nbytes * 2,
            rel_err=1e-7,
        )
    return {**out, **extra}


def row(impl, n, phase="fwd", status="ok", seconds=None, commit=COMMITS[-1], run="r1", **extra):
    """A matmul n x n x n row."""
    return cell(
        impl, "matmul", {"M": n, "K": n, "N": n}, phase, status, seconds, commit, run, **extra
    )


def training_row(impl, accuracy: float, run="r2") -> dict:
    weights = train.init_weights((64, 16, 10), 0)
    result = train.Result(
        loss_by_epoch=[1.2, 0.6, 0.4],
        train_acc_by_epoch=[0.7, 0.85, 0.9],
        test_acc_by_epoch=[0.68, 0.82, accuracy],
        seconds_by_epoch=[SPEED[impl][1] * 1e4] * 3,
        epochs_to_target=2,
        time_to_target_s=SPEED[impl][1] * 2e4,
        test=scores.metrics([0, 1, 2, 2], [0, 1, 2, 1], 10),
        weights=weights,
    )
    return {
        "run_id": run,
        "timestamp": run,
        "commit": COMMITS[-1],
        "machine": machine.machine_name(),
        "impl": impl,
        "workload": "train",
        "phase": "train",
        "size": "digits layers=64-16-10 batch=32 sgd",
        "status": "ok",
        "reason": "",
        "target_acc": 0.8,
        **scores.result_fields(result),
    }


def synthetic() -> pd.DataFrame:
    rows = []
    sizes = {
        "matmul": [{"M": n, "K": n, "N": n} for n in (64, 128, 256)],
        "linear": list(get_workload("linear").sizes[:2]),
        "mnist_mlp": list(get_workload("mnist_mlp").sizes),
        "attention": list(get_workload("attention").sizes[:2]),
    }
    for workload, grid in sizes.items():
        for size in grid:
            for phase in get_workload(workload).phases:
                rows += [
                    cell(impl, workload, size, phase)
                    for impl in SPEED
                    if impl != "pure_python" or size is grid[0]
                ]
                rows += [
                    cell(impl, workload, size, phase, "unavailable", reason=NO_CUPY)
                    for impl in CUDA
                ]
                if size is not grid[0]:
                    rows.append(
                        cell(
                            "pure_python",
                            workload,
                            size,
                            phase,
                            "over_budget",
                            t_predicted_s=40.0,
                            reason="predicted 40 s > budget 1 s",
                        )
                    )
    rows = [
        r
        for r in rows
        if not (r["impl"] == "c" and r["size"] == "M=256 K=256 N=256" and r["phase"] == "bwd")
    ]
    rows += [
        row(
            "c", 256, "bwd", "wrong", rel_err=0.5, reason="rel err 0.5 > tolerance 1e-05", run="r2"
        ),
        cell(
            "c-naive",
            "linear",
            sizes["linear"][1],
            "bwd",
            "error",
            run="r2",
            reason="<script>alert('x')</script> killed by signal SIGSEGV",
        ),
        cell(
            "sharded-col",
            "attention",
            sizes["attention"][1],
            "bwd",
            "unsupported",
            run="r2",
            reason="sharded-col does not implement bmm backward",
        ),
    ]
    rows = [
        r
        for r in rows
        if not (
            r["impl"] == "c-naive"
            and r["workload"] == "linear"
            and r["phase"] == "bwd"
            and r["status"] == "ok"
            and r["size"] == size_label(sizes["linear"][1])
        )
    ]
    for old, run, factor in ((COMMITS[0], "r0", 1.5), (COMMITS[1], "r1", 1.2)):
        rows += [
            cell(
                impl,
                "matmul",
                size,
                phase,
                commit=old,
                run=run,
                seconds=cell(impl, "matmul", size, phase)["t_median_s"] * factor,
            )
            for impl in ("numpy", "c")
            for size in sizes["matmul"]
            for phase in ("fwd",)
        ]
    for r in rows:  # the stability verdict, where the new code measured it
        if r["status"] == "ok" and r["run_id"] == "r2" and r["impl"] in ("numpy", "c-blocked"):
            r["unstable"] = r["impl"] == "numpy" and r["workload"] == "matmul"
            r["unstable_reason"] = REASON if r["unstable"] else ""
        if r["status"] == "ok" and r["impl"].startswith("c"):
            r["peak_rss_bytes"] = r["bytes"] * 3  # the native high-water, inputs included
    rows += [
        training_row(impl, acc) for impl, acc in (("numpy", 0.9), ("c", 0.9), ("pure_python", 0.89))
    ]
    return pd.DataFrame(rows)
