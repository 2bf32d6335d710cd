"""A cell's life, written once: plan -> check -> measure -> row.

    check     seeded inputs -> impl.put -> one call -> impl.get -> the float64 reference and
              the float32 error bound (wrong: recorded, not measured) -> peak memory
    measure   a Measurement: timed on the CPU or a GPU (Timed), counted under valgrind
              (measure/count.py's Counted), timed on every MPI rank (execute/mpi.py's OnRanks),
              or timed by pytest-benchmark (benchmarks/bench_grid.py)
    finish    the cell's fields, its status and what was measured, how far to trust its rounds
              (measure/stability.py) and its roof; the budget learns from it

`run_impl` is the one loop over an impl's cells (run's worker, `run --in-process`, the other
ranks of `mpiexec ... harness run`); a Measurement's hooks (`before`, `after_check`,
`after_measure`, `after_cell`) let the MPI one line up its ranks around this same life.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from functools import lru_cache

import numpy as np

from harness import registry
from harness.contract import OPS
from harness.execute.grid import SEED, Cell, describe, failed
from harness.measure import memory, roofs, stability, timing
from harness.measure.budget import Budget
from harness.measure.gate import rel_err, to_host
from harness.reference import Reference
from harness.results import machine
from harness.workloads import Placed, get_workload


@dataclasses.dataclass(frozen=True)
class Options:
    """How a run measures its cells (the CLI's --budget, --time-per-cell, --timeout ...)."""

    budget_s: float = 10.0  # a cell predicted to take longer is recorded over_budget
    time_per_cell_s: float = 0.5  # seconds of timed rounds that fill a cell
    timeout_s: float = 300.0  # a cell with no result after this long is an error
    ranks: int = 2  # processes of an impl that runs on MPI ranks
    instructions: bool = False  # count instructions under valgrind instead of timing
    ceilings: dict | None = None  # the machine's (results/ceilings.py): each row's roof

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


# ---- check: the correctness gate, before anything is measured ----------------------------


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
        if frame.name in OPS or frame.name in ("put", "get", "mlp_forward", "mlp_backward"):
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


# ---- measure: one strategy per kind of measurement ---------------------------------------


class Measurement:
    """How a checked cell is measured. The hooks around it do nothing in one process."""

    # An exception while measuring becomes the cell's error row; OnRanks lets it end the job.
    records_failures = True
    pids: tuple = ()  # the processes that measure together (MPI ranks); () is this one

    def measure(self, impl, fn, row: dict) -> dict:
        """-> the row's measured columns (t_*_s and samples, or instructions)."""
        raise NotImplementedError

    def before(self, impl) -> None:
        """Before the cell's check."""

    def after_check(self, impl, row: dict) -> dict:
        return row

    def after_measure(self, impl, row: dict) -> dict:
        return row

    def after_cell(self, budget: Budget | None) -> None:
        """After the cell, whatever its status."""


class Timed(Measurement):
    """Wall clock on the CPU (measure/timing.py), CUDA events on a GPU (timing_cuda.py)."""

    def __init__(self, time_per_cell_s: float = 0.5):
        self.time_per_cell_s = time_per_cell_s

    def measure(self, impl, fn, row):
        if impl.device == "cuda":
            from harness.measure import timing_cuda  # imports CuPy: only where a GPU rung runs

            return timing_cuda.measure(fn, impl.sync, self.time_per_cell_s).as_dict()
        return timing.measure(fn, impl.sync, self.time_per_cell_s).as_dict()


def finish(row: dict, columns: dict, budget: Budget | None = None, ceilings=None) -> dict:
    """Fold measured columns into a checked row, with what they imply: the throughput, how
    far to trust timed rounds, and, given the machine's ceilings, the roof it runs under."""
    row = {**row, **columns}
    if row.get("samples_s"):  # timed rounds (counts have none)
        row.update(stability.judge(row))
    if row.get("t_median_s"):
        row["gflops_per_s"] = row["flops"] / row["t_median_s"] / 1e9
        if budget:
            budget.record(row["workload"], row["phase"], row["flops"], row["t_median_s"])
        if ceilings:  # roof_level, roof_bound, roof_gflops_per_s, roof_pct ({} if unmeasured)
            row.update(roofs.judge(row, ceilings))
    if row.get("instructions"):
        row["flops_per_instruction"] = row["flops"] / row["instructions"]
    return row


def run_cell(
    impl, cell: Cell, budget: Budget | None, measurement: Measurement, ceilings: dict | None = None
) -> dict:
    """One cell's whole life -> its row."""
    measurement.before(impl)
    row, fn = check(impl, cell, budget)
    row = measurement.after_check(impl, row)
    if fn is not None:
        window = stability.Window(measurement.pids)
        try:
            columns = measurement.measure(impl, fn, row)
        except Exception as error:  # noqa: BLE001 - as in check: a result, not a crash
            if not measurement.records_failures:
                raise
            row = {**row, "status": "error", "reason": f"{type(error).__name__}: {error}"}
        else:
            if columns.get("samples_s"):  # timed rounds: steal and load around them
                columns.update(window.close())
            row = finish(row, columns, budget, ceilings)
        row = measurement.after_measure(impl, row)
    measurement.after_cell(budget)
    return row


# ---- the one loop over an impl's cells -----------------------------------------------------


def refusal(name: str, options: Options) -> tuple | None:
    """(status, reason) when none of the impl's cells can run with these options, else None."""
    reason = registry.unavailable_reason(name)
    if reason:
        return "unavailable", reason
    if options.instructions:
        from harness.measure import count

        reason = count.unsupported_reason(registry.get_class(name))
        if reason:
            return "unsupported", reason
    return None


def measurement_for(impl, options: Options) -> Measurement:
    if options.instructions:
        from harness.measure.count import Counted

        return Counted()
    if impl.runs_on_ranks:
        from harness.execute.mpi import OnRanks

        return OnRanks(options.time_per_cell_s)
    return Timed(options.time_per_cell_s)


def run_impl(name: str, cells: list, options: Options, on_row, on_start=None, history=()) -> None:
    """Every cell of one impl, in order: on_start(index) before each, on_row(row) after.

    `history` is [(workload, phase, flops, seconds)] the budget learned before (a child that
    continues another's cells). Counting has no budget: its first calls are valgrind's."""
    refused = refusal(name, options)
    if refused:
        for cell in cells:
            on_row(failed(cell, *refused))
        return
    try:
        if registry.get_class(name).runs_on_ranks:  # created in step with the other ranks
            from harness.execute import mpi

            mpi.line_up()
        impl = registry.create(name)
    except Exception as error:  # noqa: BLE001 - a constructor that fails costs its cells only
        for cell in cells:
            on_row(
                failed(cell, "error", f"creating {name} failed: {type(error).__name__}: {error}")
            )
        return
    budget = None if options.instructions else Budget(options.budget_s)
    for workload, phase, flops, seconds in history if budget else ():
        budget.record(workload, phase, flops, seconds)
    measurement = measurement_for(impl, options)
    for index, cell in enumerate(cells):
        if on_start:
            on_start(index)
        on_row(run_cell(impl, cell, budget, measurement, options.ceilings))
