"""`run`'s cells in child processes, so a crash or a hang costs one cell, not the run.

Each impl's cells go to a worker (harness/execute/worker.py) through the one child protocol
(harness/execute/child.py): it answers "start" before a cell and "row" after it. When the
worker dies in a cell (a segfault in native code) or a cell outlives its timeout, that cell is
recorded as `error` with the cause and a new worker goes on with the next cell, carrying the
budget's history so far. A worker that dies before its first cell (a launcher that fails at
once, an import that crashes) would die for every cell: all of them are recorded with why.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness import registry
from harness.execute import lifecycle
from harness.execute.child import Child, ChildTimeout
from harness.execute.grid import by_impl, failed
from harness.measure import count

WORKER = "harness.execute.worker"


def _launch(name: str, options: lifecycle.Options, scratch: str) -> tuple:
    """(command prefix, environment) of the worker: an impl on MPI ranks says how to start
    them; counting instructions runs the worker under callgrind, its files in scratch."""
    if options.instructions:
        return count.launch(Path(scratch))
    return registry.get_class(name).launch_prefix(options.ranks), None


def _run_child(name, cells, options, history, on_row) -> int:
    """Run cells in one worker until it finishes or fails. -> how many cells were settled."""
    spec = {
        "impl": name,
        "cells": [c.to_json() for c in cells],
        "options": options.to_json(),
        "history": history,
    }
    with tempfile.TemporaryDirectory() as scratch:
        prefix, env = _launch(name, options, scratch)
        with Child(WORKER, spec, prefix, env) as child:
            settled, current = 0, None
            while settled < len(cells):
                try:
                    message = child.next(options.timeout_s)
                except ChildTimeout:
                    child.kill()
                    stuck = settled if current is None else current  # hung before it said
                    on_row(
                        failed(
                            cells[stuck],
                            "error",
                            f"timeout: no result after {options.timeout_s:g} s",
                        )
                    )
                    return stuck + 1
                if message is None:  # the worker ended before its last row
                    cause = child.cause()
                    if settled == 0 and current is None:
                        for cell in cells:
                            on_row(failed(cell, "error", f"{cause}, before its first cell"))
                        return len(cells)
                    stuck = settled if current is None else current
                    on_row(failed(cells[stuck], "error", cause))
                    return stuck + 1
                if message["kind"] == "start":
                    current = message["index"]
                elif message["kind"] == "row":
                    row = message["row"]
                    on_row(row)
                    if row.get("status") == "ok" and row.get("t_median_s"):
                        history.append(
                            [row["workload"], row["phase"], row["flops"], row["t_median_s"]]
                        )
                    settled, current = message["index"] + 1, None
            child.finish()  # a worker that stays alive after its last cell is ended
            return settled


def run_impl(name: str, cells: list, options: lifecycle.Options, on_row) -> None:
    """All cells of one impl, each crash or hang recorded against the cell that caused it."""
    refused = lifecycle.refusal(name, options)
    if refused:  # no worker needed to say so
        for cell in cells:
            on_row(failed(cell, *refused))
        return
    history: list = []
    # Counting gives each cell a fresh worker: what a process did before (its allocators'
    # free lists, the interpreter's specialized code) moved a 27k-instruction cell's count by
    # up to 1.4% when it followed other cells.
    batch = 1 if options.instructions else len(cells)
    start = 0
    while start < len(cells):
        start += _run_child(name, cells[start : start + batch], options, history, on_row)


def run_all(cells: list, options: lifecycle.Options, on_row) -> None:
    for name, impl_cells in by_impl(cells).items():
        run_impl(name, impl_cells, options, on_row)
