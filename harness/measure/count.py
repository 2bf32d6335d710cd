"""Instruction counts instead of times: each cell's call counted by valgrind's callgrind.

On a shared machine a cell's time moves by percents from one run to the next; the number of
instructions a CPU rung executes for one call does not: two runs of the same commit count
the same number, to the instruction (xor and the MNIST MLP on numpy, c and pure_python,
counted in different orders and runs). So a 1% change in the work shows where a 1% change in
time is lost in noise. `run --instructions` records them; `ab --instructions` compares two
commits by them.

How: each cell gets a fresh worker (harness/execute/child.py) under `valgrind --tool=callgrind`
with instrumentation off, so imports and the correctness gate run at valgrind's lightest
pace; the gate runs as in a timed run, the call is made WARMUP times uncounted (so that plans,
caches and the interpreter's specialized code settle), then harness.measure._callgrind switches
counting on for CALLS calls, with the garbage collector off, and dumps the count to a file of
its own, read here. A fresh worker per cell, because a process's history moves a count: after
other cells, its allocators' free lists and the interpreter's specializations changed a
27k-instruction xor cell by up to 1.4%. What this costs and leaves out:
- valgrind runs counted code ~50x slower, and a fresh worker costs ~3 s: use the --quick grid
  or a few cells (no budget: a cell past --timeout is recorded as an error);
- every rung runs on one thread (OMP, OpenBLAS and MKL set to 1), since a waiting thread's
  spinning would be counted as work; PYTHONHASHSEED is fixed so dicts and sets repeat;
- instructions are not time: a cache miss counts one, a vector FMA one; a change that moves
  memory traffic or vector width can move time without moving counts, and back;
- CPU work only: the CUDA rungs' kernels and the sharded rungs' MPI ranks are not counted.
"""

from __future__ import annotations

import gc
import itertools
import os
import re
import shutil
from pathlib import Path

from harness.execute.lifecycle import Measurement
from harness.results import machine_state

CALLS = 3  # counted calls of a cell (a count is exact: more only average first-call effects)
WARMUP = 10  # uncounted calls first
ONE_THREAD = dict.fromkeys(machine_state.THREAD_VARS, "1")
OUT_DIR_VAR = "NNLADDER_CALLGRIND_DIR"  # where the worker's callgrind files go
TOTALS = re.compile(r"^totals:\s+(\d+)", re.M)
_labels = itertools.count(1)  # each count's dump is found by its label


def unavailable_reason() -> str | None:
    """Why instructions cannot be counted here, or None."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed (apt install valgrind): instructions are counted by it"
    try:
        from harness.measure import _callgrind  # noqa: F401 - built by setup.py
    except ImportError as error:
        return (
            f"harness.measure._callgrind is not built ({error}): it needs valgrind's headers "
            "(valgrind/callgrind.h) when the project is installed; reinstall with them"
        )
    return None


def unsupported_reason(impl_class) -> str | None:
    """Why an impl's work cannot be counted, or None for a CPU rung in one process."""
    if impl_class.device != "cpu":
        return (
            f"{impl_class.name} runs on {impl_class.device}: instruction counts see CPU work only"
        )
    if impl_class.runs_on_ranks:
        return f"{impl_class.name} runs on MPI ranks: instruction counts cover one process"
    return None


def launch(out_dir: Path) -> tuple:
    """(command prefix, environment) that run a worker under callgrind, its files in out_dir."""
    prefix = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--collect-atstart=no",
        f"--callgrind-out-file={out_dir}/callgrind.%p",
        "--quiet",
    ]
    env = {**os.environ, **ONE_THREAD, "PYTHONHASHSEED": "0", OUT_DIR_VAR: str(out_dir)}
    return prefix, env


def _read_dump(label: str) -> int:
    """The total instructions of this process's dump described by label; the file is removed."""
    out_dir = Path(os.environ[OUT_DIR_VAR])
    for path in sorted(out_dir.glob(f"callgrind.{os.getpid()}.*")):
        text = path.read_text(errors="replace")
        if f"desc: Trigger: Client Request: {label}\n" in text:
            path.unlink()
            found = TOTALS.search(text)
            if found is None:
                raise RuntimeError(f"{path}: callgrind wrote no totals line")
            return int(found.group(1))
    raise RuntimeError(f"callgrind left no dump for {label!r} in {out_dir}")


class Counted(Measurement):
    """A cell's instructions per call in place of its times; the correctness gate and the
    statuses are those of a timed run. Run without a budget (lifecycle.run_impl): it would
    extrapolate from first calls that valgrind slows by its translation of new code (an xor
    cell predicted MNIST's at hours); the worker's timeout bounds a cell. For a CPU rung in
    one process (see unsupported_reason), in a worker that launch() started."""

    def measure(self, impl, fn, row):
        from harness.measure import _callgrind

        label = f"nnladder-cell-{next(_labels)}"
        for _ in range(WARMUP):
            fn()
        # No collection inside the count: its work is owed to whatever allocated before.
        gc.collect()
        gc.disable()
        try:
            _callgrind.count(fn, CALLS, label)
        finally:
            gc.enable()
        return {
            "measure": "instructions",
            "instructions": _read_dump(label) / CALLS,
            "rounds": CALLS,
        }
