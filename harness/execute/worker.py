"""The child process of harness/execute/isolate.py: runs one impl's cells and reports each row.

It reads its spec (impl, cells, options, the budget's history) through the child protocol
(harness/execute/child.py) and runs the cells through the one lifecycle: timed, or with the
option `instructions` (started under valgrind) counted. Under mpiexec every rank runs them in
step and rank 0 alone answers.
"""

from __future__ import annotations

import sys

from harness.execute import child, lifecycle, mpi
from harness.execute.grid import Cell


def main() -> int:
    send = child.channel()
    spec = mpi.read_spec(sys.stdin)  # under mpiexec: rank 0 reads it, all get it
    root = mpi.is_root()  # the ranks of an MPI job answer with one voice
    done = []

    def on_start(index):
        if root:
            send(kind="start", index=index)

    def on_row(row):
        if root:
            send(kind="row", index=len(done), row=row)
        done.append(row["status"])

    lifecycle.run_impl(
        spec["impl"],
        [Cell.from_json(c) for c in spec["cells"]],
        lifecycle.Options(**spec["options"]),
        on_row,
        on_start,
        spec["history"],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
