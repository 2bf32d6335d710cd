"""The child process of harness/execute/child.py: runs one impl's cells and reports each row.

It times each cell, or with the option `instructions` (`run --instructions`, started under
valgrind) counts its instructions (harness/measure/count.py).

Protocol lines go to the original stdout; everything else (an impl's own prints, native
libraries writing to fd 1) is sent to stderr so it cannot be mistaken for a result.
"""

from __future__ import annotations

import json
import os
import sys

from harness import registry
from harness.execute import lifecycle as runner
from harness.execute import mpi as distributed
from harness.execute.child import PREFIX
from harness.measure import count
from harness.measure.budget import Budget


def main() -> int:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    spec = distributed.read_spec(sys.stdin)  # under mpiexec: rank 0 reads it, all get it
    options = spec["options"]
    budget = Budget(options["budget_s"])
    for workload, phase, flops, seconds in spec["history"]:
        budget.record(workload, phase, flops, seconds)
    impl = registry.create(spec["impl"])

    def emit(**message):
        if distributed.is_root():  # the ranks of an MPI job answer with one voice
            protocol.write(PREFIX + json.dumps(message) + "\n")

    for index, (impl_name, workload, size, phase) in enumerate(spec["cells"]):
        cell = runner.Cell(impl_name, workload, tuple(tuple(kv) for kv in size), phase)
        emit(kind="start", index=index)
        if options.get("instructions"):  # under callgrind (isolate.py): counts, not times
            row = count.count_cell(impl, cell)
        else:
            row = distributed.run_cell(impl, cell, budget, options["time_budget_s"])
        emit(kind="row", index=index, row=row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
