"""A cell's life, written once: plan -> check -> measure -> row.

    check     the correctness gate (execute/check.py): seeded inputs -> one call -> the
              float64 reference (wrong: recorded, not measured) -> peak memory
    measure   a Measurement: timed on the CPU or a GPU (Timed), counted under valgrind
              (measure/count.py's Counted), timed on every MPI rank (execute/ranks.py's
              OnRanks), or timed by pytest-benchmark (benchmarks/bench_grid.py)
    finish    the cell's fields, its status and what was measured, how far to trust its rounds
              (measure/stability.py) and its roof; the budget learns from it

`run_impl` is the one loop over an impl's cells (run's worker, `run --in-process`, the other
ranks of `mpiexec ... harness run`); a Measurement's hooks (`before`, `after_check`,
`after_measure`, `after_cell`) let the MPI one line up its ranks around this same life.
"""

from __future__ import annotations

import dataclasses

from harness import registry
from harness.execute.check import check
from harness.execute.grid import Cell, failed
from harness.measure import roofs, stability, timing
from harness.measure.budget import Budget


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
        from harness.execute.ranks import OnRanks

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
