"""Runs cells: one (impl, workload, size, phase) each, checked first, then measured.

A cell's life: over budget? -> seeded inputs -> impl.put -> one call -> impl.get -> compare
with the float64 reference (wrong: recorded, not timed) -> peak memory of one call -> timing.
`prepare` does everything up to timing, so that both timers (harness/measure/timing.py for
`python -m harness run`, pytest-benchmark for benchmarks/) share one correctness gate.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness import registry
from harness.contract import OPS
from harness.measure import memory, timing
from harness.measure.gate import rel_err, to_host
from harness.reference import Reference
from harness.workloads import WORKLOADS, Placed, get_workload, size_label

SEED = 0
PHASES = ("fwd", "bwd", "step")


@dataclass(frozen=True)
class Cell:
    impl: str
    workload: str
    size: tuple  # (key, value) pairs, so a cell can be hashed and sent between processes
    phase: str

    @property
    def size_dict(self) -> dict:
        return dict(self.size)

    def key(self) -> tuple:
        return (self.impl, self.workload, size_label(self.size_dict), self.phase)


def plan(impls=None, workloads=None, phases=None, quick=False) -> list:
    """The grid impl x workload x size x phase, validated, smallest sizes first."""
    impls = list(impls or registry.names())
    for name in impls:
        registry.get_class(name)  # raises KeyError listing the valid names
    chosen = [get_workload(w) for w in (workloads or WORKLOADS)]
    for phase in phases or ():
        if phase not in PHASES:
            raise KeyError(f"unknown phase {phase!r}: expected one of {', '.join(PHASES)}")
    cells = []
    for impl in impls:
        for work in chosen:
            sizes = sorted(work.quick_sizes if quick else work.sizes,
                           key=lambda s: work.flops(s, work.phases[0]))
            for phase in work.phases:
                if phases and phase not in phases:
                    continue
                cells.extend(Cell(impl, work.name, tuple(s.items()), phase) for s in sizes)
    return cells


def describe(cell: Cell) -> dict:
    """The row fields every cell has, whatever its status: what it is and what it costs."""
    work, size = get_workload(cell.workload), cell.size_dict
    flops, nbytes = work.flops(size, cell.phase), work.bytes(size, cell.phase)
    cls = registry.get_class(cell.impl)
    return {"impl": cell.impl, "device": cls.device, "workload": cell.workload,
            "size": size_label(size), **size, "phase": cell.phase, "flops": flops,
            "bytes": nbytes, "intensity": flops / nbytes, "tol": work.tol}


@lru_cache(maxsize=8)
def _host_inputs(workload: str, size: tuple, seed: int) -> dict:
    return get_workload(workload).inputs(dict(size), np.random.default_rng(seed))


@lru_cache(maxsize=8)
def reference_outputs(workload: str, size: tuple, phase: str, seed: int = SEED) -> tuple:
    ref = Reference()
    work = get_workload(workload)
    fn = work.setup(ref, dict(size), phase, Placed(ref, _host_inputs(workload, size, seed)))
    return tuple(to_host(ref, fn()))


def _missing_op(error: NotImplementedError) -> str:
    """The contract op that raised, read off the traceback (the contract's stubs say nothing)."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.name in OPS or frame.name in ("put", "get"):
            return frame.name
    return str(error) or "an op"


def prepare(impl, cell: Cell, budget, seed: int = SEED):
    """Check one cell. -> (row, fn): fn is the callable to time, or None when not to time."""
    row = describe(cell)
    predicted = budget.over(cell.workload, cell.phase, row["flops"]) if budget else None
    if predicted is not None:
        return {**row, "status": "over_budget", "t_predicted_s": predicted,
                "reason": f"predicted {predicted:.3g} s > budget {budget.seconds:g} s"}, None
    row.update(impl.info())
    work = get_workload(cell.workload)
    try:
        placed = Placed(impl, _host_inputs(cell.workload, cell.size, seed))
        fn = work.setup(impl, cell.size_dict, cell.phase, placed)
        start = time.perf_counter()
        outputs = fn()
        impl.sync()
        first_call_s = time.perf_counter() - start
        err = rel_err(to_host(impl, outputs),
                      reference_outputs(cell.workload, cell.size, cell.phase, seed))
    except NotImplementedError as error:
        return {**row, "status": "unsupported",
                "reason": f"{cell.impl} does not implement {_missing_op(error)}"}, None
    except Exception as error:  # noqa: BLE001 - an impl's failure is a result, not a crash
        return {**row, "status": "error", "reason": f"{type(error).__name__}: {error}"}, None
    if budget:  # the first call is the budget's first estimate; finish() adds the median
        budget.record(cell.workload, cell.phase, row["flops"], first_call_s)
    row["rel_err"] = err
    if not err <= work.tol:  # NaN fails too
        return {**row, "status": "wrong",
                "reason": f"rel err {err:.3g} > tolerance {work.tol:g}"}, None
    device_peak = impl.device_peak_bytes(fn)
    row["peak_mem_bytes"] = device_peak if device_peak is not None \
        else memory.host_peak_bytes(fn)
    return {**row, "status": "ok", "reason": ""}, fn


def finish(row: dict, stats: timing.Stats, budget=None) -> dict:
    """Fold timing statistics into a checked row."""
    row = {**row, **stats.as_dict()}
    row["gflops_per_s"] = row["flops"] / stats.median / 1e9 if stats.median > 0 else None
    if budget:
        budget.record(row["workload"], row["phase"], row["flops"], stats.median)
    return row


def timer_for(device: str):
    """The timing protocol of a device: wall clock on the CPU, CUDA events on a GPU."""
    if device == "cuda":
        from harness.measure import timing_cuda

        return timing_cuda.measure
    return timing.measure


def run_cell(impl, cell: Cell, budget, time_budget_s: float = 0.5) -> dict:
    row, fn = prepare(impl, cell, budget)
    if fn is None:
        return row
    stats = timer_for(impl.device)(fn, impl.sync, budget_s=time_budget_s)
    return finish(row, stats, budget)


def unavailable_rows(cells, reason: str) -> list:
    return [{**describe(c), "status": "unavailable", "reason": reason} for c in cells]
