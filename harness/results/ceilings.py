"""The machine's ceilings: peak GEMM throughput and memory bandwidth, measured once per machine.

The report's roofline and its "fraction of peak" need what this machine can do at best, not
a datasheet's figure: a float32 GEMM through NumPy's BLAS (cuBLAS through CuPy where a GPU
and CuPy exist) and a large copy (each byte read once and written once, so bytes moved =
2 x the array). Each is the best of a few repetitions: a ceiling is what the machine
reached, and a neighbour's job can only lower a sample. The figures are stored with the
machine's results as results/<machine>/ceilings.json (store.load reads only *.jsonl) and
reused until re-measured on request (`python -m harness report --remeasure-ceilings`).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from harness.results import atomic, machine
from harness.results.store import RESULTS, is_number

GEMM_N = 2048  # 17 GFLOP a product: long enough to reach BLAS's peak, short on 2 cores
COPY_BYTES = 1 << 28  # 256 MiB: far beyond any cache, so the copy runs at memory speed
REPEATS = 5
CUDA_GEMM_N = 8192
FIGURES = ("gemm_gflops_per_s", "copy_gb_per_s", "gemm_n", "copy_bytes")
CUDA_FIGURES = tuple(f"cuda_{name}" for name in FIGURES)  # where a GPU was measured


def _best_seconds(fn, sync=lambda: None, repeats: int = REPEATS) -> float:
    fn()  # warm-up: first-touch page faults, BLAS thread start, kernel load
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def _cpu() -> dict:
    rng = np.random.default_rng(0)
    a_MK, b_KN = (rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32) for _ in range(2))
    c_MN = np.empty((GEMM_N, GEMM_N), dtype=np.float32)
    gemm_s = _best_seconds(lambda: np.matmul(a_MK, b_KN, out=c_MN))
    src_N = np.ones(COPY_BYTES // 4, dtype=np.float32)
    dst_N = np.empty_like(src_N)
    copy_s = _best_seconds(lambda: np.copyto(dst_N, src_N))
    return {"gemm_gflops_per_s": 2 * GEMM_N**3 / gemm_s / 1e9,
            "copy_gb_per_s": 2 * COPY_BYTES / copy_s / 1e9, "gemm_n": GEMM_N,
            "copy_bytes": COPY_BYTES}


def _cuda() -> dict:
    """cuBLAS GEMM and device copy through CuPy, or {} where there is no CuPy or no GPU."""
    try:
        import cupy as cp

        if cp.cuda.runtime.getDeviceCount() < 1:
            return {}
    except Exception:  # noqa: BLE001 - no CuPy, no driver, no device: no GPU ceilings
        return {}
    sync = cp.cuda.Device().synchronize
    a_MK, b_KN = (cp.random.standard_normal((CUDA_GEMM_N, CUDA_GEMM_N), dtype=cp.float32)
                  for _ in range(2))
    gemm_s = _best_seconds(lambda: cp.matmul(a_MK, b_KN), sync)
    src_N = cp.ones(COPY_BYTES, dtype=cp.float32)  # 1 GiB: far beyond a GPU's L2
    dst_N = cp.empty_like(src_N)
    copy_s = _best_seconds(lambda: cp.copyto(dst_N, src_N), sync)
    return {"cuda_gemm_gflops_per_s": 2 * CUDA_GEMM_N**3 / gemm_s / 1e9,
            "cuda_copy_gb_per_s": 2 * src_N.nbytes / copy_s / 1e9,
            "cuda_gemm_n": CUDA_GEMM_N, "cuda_copy_bytes": int(src_N.nbytes)}


def measure() -> dict:
    meta = machine.info()
    return {"machine": meta["machine"], "cpu": meta["cpu"], "gpu": meta["gpu"],
            "blas": meta["blas"], "threads": meta["threads"],
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **_cpu(), **_cuda()}


def path_for(machine_name: str, root: Path | str | None = None) -> Path:
    return Path(root or RESULTS) / machine_name / "ceilings.json"


def read(machine_name: str, root: Path | str | None = None) -> dict | None:
    """The stored ceilings of a machine, or None when never measured, unreadable, or not
    figures (the report computes with every one of them)."""
    try:
        stored = json.loads(path_for(machine_name, root).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(stored, dict) or not all(is_number(stored.get(k)) for k in FIGURES) \
            or not all(is_number(stored[k]) for k in CUDA_FIGURES if k in stored):
        return None
    return stored


def write(ceilings: dict, root: Path | str | None = None) -> Path:
    """Store atomically: a reader never sees half a file, a crash never loses the old one."""
    return atomic.write_atomic(path_for(ceilings["machine"], root),
                               json.dumps(ceilings, indent=1))


def for_this_machine(root: Path | str | None = None, remeasure: bool = False) -> dict:
    """This machine's ceilings: stored ones, or measured now (a few seconds) and stored."""
    stored = None if remeasure else read(machine.machine_name(), root)
    if stored is not None:
        return stored
    ceilings = measure()
    write(ceilings, root)
    return ceilings
