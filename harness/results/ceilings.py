"""The machine's ceilings, measured once per machine: its compute limit and the bandwidth of
each level of its memory hierarchy, on one core and on all of them (read by roofs.py).

No real cell may beat a roof (one under a measured point teaches the wrong thing), so each
figure is the best of its repeats (other work only lowers a sample), the fastest way this
machine does that kind of work: on the CPU (ceilings_cpu.py) an FMA loop in C, NumPy's BLAS
GEMM and every cache level's bandwidth; on a GPU (ceilings_cuda.py) cuBLAS GEMM, a copy, an
FMA loop and reads of its L2 and HBM.

It takes ~9 s on a quiet 2-core VM, is stored as results/<machine>/ceilings.json (store.load
reads only *.jsonl) and is reused until re-measured on request (`python -m harness report
--remeasure-ceilings`). A file from before the hierarchy (no "levels") is read as it is; roofs
reads its hierarchy as not measured.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from harness.measure import roofs
from harness.results import atomic, ceilings_cpu, ceilings_cuda, machine, machine_state
from harness.results.rows import is_number
from harness.results.store import RESULTS

FIGURES = ("gemm_gflops_per_s", "copy_gb_per_s", "gemm_n", "copy_bytes")
CUDA_FIGURES = tuple(f"cuda_{name}" for name in FIGURES)  # where a GPU was measured


def measure() -> dict:
    meta, start = machine.info(), time.perf_counter()
    # other work lowers every figure: the file says how much
    busy = machine_state.others_running()
    figures = {**ceilings_cpu.measure(), **ceilings_cuda.measure()}
    return {
        "machine": meta["machine"],
        "cpu": meta["cpu"],
        "gpu": meta["gpu"],
        "blas": meta["blas"],
        "threads": meta["threads"],
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "others_running": busy,
        "measure_s": time.perf_counter() - start,
        **figures,
    }


def read(machine_name: str, root: Path | str | None = None) -> dict | None:
    """The stored ceilings of a machine, or None when never measured, unreadable, or not
    figures (the report computes with every one of them): also when a hierarchy is there but
    not whole. A file from before the hierarchy is returned as it is (roofs.py reads its
    hierarchy as not measured)."""
    try:
        stored = json.loads(path_for(machine_name, root).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if (
        not isinstance(stored, dict)
        or not all(is_number(stored.get(k)) for k in FIGURES)
        or not all(is_number(stored[k]) for k in CUDA_FIGURES if k in stored)
        or not roofs.whole(stored)
    ):
        return None
    return stored


def path_for(machine_name: str, root: Path | str | None = None) -> Path:
    return Path(root or RESULTS) / machine_name / "ceilings.json"


def write(ceilings: dict, root: Path | str | None = None) -> Path:
    """Store atomically: a reader never sees half a file, a crash never loses the old one."""
    return atomic.write_atomic(path_for(ceilings["machine"], root), json.dumps(ceilings, indent=1))


def for_this_machine(root: Path | str | None = None, remeasure: bool = False) -> dict:
    """This machine's ceilings: stored ones, or measured now (~10 s) and stored."""
    stored = None if remeasure else read(machine.machine_name(), root)
    if stored is not None:
        return stored
    ceilings = measure()
    write(ceilings, root)
    return ceilings
