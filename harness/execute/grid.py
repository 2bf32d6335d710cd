"""The grid: every cell is one (impl, workload, size, phase), planned smallest first.

A cell is data, small enough to hash and to send to a child process; `describe` gives the
row fields every cell has whatever happens to it (what it is and what it costs), so a cell
that never runs (unavailable, crashed, timed out) still leaves a complete row.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness import registry
from harness.workloads import WORKLOADS, get_workload, size_label

SEED = 0  # every cell's inputs, on every impl
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

    def to_json(self) -> list:
        return [self.impl, self.workload, [list(kv) for kv in self.size], self.phase]

    @classmethod
    def from_json(cls, value) -> Cell:
        impl, workload, size, phase = value
        return cls(impl, workload, tuple(tuple(kv) for kv in size), phase)


def plan(impls=None, workloads=None, phases=None, quick=False) -> list:
    """The grid impl x workload x size x phase, validated, smallest sizes first.

    None means every impl / workload / phase; an unknown name raises KeyError listing the
    valid ones, before anything runs."""
    impls = list(registry.names() if impls is None else impls)
    for name in impls:
        registry.get_class(name)
    chosen = [get_workload(w) for w in (WORKLOADS if workloads is None else workloads)]
    for phase in phases or ():
        if phase not in PHASES:
            raise KeyError(f"unknown phase {phase!r}: expected one of {', '.join(PHASES)}")
    cells = []
    for impl in impls:
        for work in chosen:
            sizes = sorted(
                work.quick_sizes if quick else work.sizes,
                key=lambda s: work.flops(s, work.phases[0]),
            )
            for phase in work.phases:
                if phases and phase not in phases:
                    continue
                cells.extend(Cell(impl, work.name, tuple(s.items()), phase) for s in sizes)
    return cells


def by_impl(cells: list) -> dict:
    """{impl: its cells, in plan order}, impls in the order they first appear."""
    grouped: dict = {}
    for cell in cells:
        grouped.setdefault(cell.impl, []).append(cell)
    return grouped


def describe(cell: Cell) -> dict:
    """The row fields every cell has, whatever its status: what it is and what it costs."""
    work, size = get_workload(cell.workload), cell.size_dict
    flops, nbytes = work.flops(size, cell.phase), work.bytes(size, cell.phase)
    cls = registry.get_class(cell.impl)
    return {
        "impl": cell.impl,
        "device": cls.device,
        "workload": cell.workload,
        "size": size_label(size),
        **size,
        "phase": cell.phase,
        "flops": flops,
        "bytes": nbytes,
        "intensity": flops / nbytes,
        "tol": work.tol,
    }


def failed(cell: Cell, status: str, reason: str) -> dict:
    """The row of a cell that was not measured, with its status and why."""
    return {**describe(cell), "status": status, "reason": reason}
