"""The correctness gate of one cell, before anything is measured: -> its row and what to time.

    seeded inputs -> impl.put -> one call -> impl.get -> the float64 reference and the float32
    error bound (wrong: recorded, not measured) -> peak memory

A cell the budget predicts too long is refused before its call; an op the impl leaves out
makes it unsupported, an exception an error. Only a right cell comes back with the callable
that the lifecycle (execute/lifecycle.py) measures, and its first call is the budget's first
estimate of its time.
"""

from __future__ import annotations

import time
import traceback
from functools import lru_cache

import numpy as np

from harness.contract import OPS
from harness.execute.grid import SEED, Cell, describe
from harness.measure import memory
from harness.measure.budget import Budget
from harness.measure.gate import rel_err, to_host
from harness.reference import Reference
from harness.results import machine
from harness.workloads import Placed, get_workload

# What else an impl is called through: placement and the fused models.
HOOKS = ("put", "get", "mlp_forward", "mlp_backward", "block_forward", "block_backward")


@lru_cache(maxsize=8)
def host_inputs(workload: str, size: tuple, seed: int = SEED) -> dict:
    return get_workload(workload).inputs(dict(size), np.random.default_rng(seed))


@lru_cache(maxsize=8)
def reference_outputs(workload: str, size: tuple, phase: str, seed: int = SEED) -> tuple:
    ref = Reference()
    work = get_workload(workload)
    fn = work.setup(ref, dict(size), phase, Placed(ref, host_inputs(workload, size, seed)))
    return tuple(to_host(ref, fn()))


def missing_op(error: NotImplementedError) -> str:
    """The contract op that raised, read off the traceback (the contract's stubs say nothing)."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.name in OPS or frame.name in HOOKS:
            return frame.name
    return str(error) or "an op"


def check(impl, cell: Cell, budget: Budget | None, seed: int = SEED):
    """Check one cell. -> (row, fn): fn is the callable to measure, or None when not to."""
    row = describe(cell)
    predicted = budget.over(cell.workload, cell.phase, row["flops"]) if budget else None
    if predicted is not None:
        return {
            **row,
            "status": "over_budget",
            "t_predicted_s": predicted,
            "reason": f"predicted {predicted:.3g} s > budget {budget.seconds:g} s",
        }, None
    row.update({"threads": machine.blas()["threads"], **impl.info()})  # as the run stores it
    work = get_workload(cell.workload)
    try:
        host = host_inputs(cell.workload, cell.size, seed)
        fn, placed_bytes = memory.growth(  # the resident pages of the inputs, the setup's too
            lambda: work.setup(impl, cell.size_dict, cell.phase, Placed(impl, host))
        )
        start = time.perf_counter()
        outputs = fn()
        impl.sync()
        first_call_s = time.perf_counter() - start
        err = rel_err(
            to_host(impl, outputs), reference_outputs(cell.workload, cell.size, cell.phase, seed)
        )
    except NotImplementedError as error:
        return {
            **row,
            "status": "unsupported",
            "reason": f"{cell.impl} does not implement {missing_op(error)}",
        }, None
    except Exception as error:  # noqa: BLE001 - an impl's failure is a result, not a crash
        return {**row, "status": "error", "reason": f"{type(error).__name__}: {error}"}, None
    bound = work.error_bound(cell.size_dict, cell.phase)
    row.update(rel_err=err, err_bound=bound, err_ratio=err / bound)
    if not err <= work.tol:  # NaN fails too; a wrong cell teaches the budget nothing
        return {
            **row,
            "status": "wrong",
            "reason": f"rel err {err:.3g} > tolerance {work.tol:g}",
        }, None
    if budget:  # the first call is the budget's first estimate; finish() adds the median
        budget.record(cell.workload, cell.phase, row["flops"], first_call_s)
    row.update(memory.peaks(impl, fn, placed_bytes))
    return {**row, "status": "ok", "reason": ""}, fn
