"""`list`: the impls with their availability, and the workloads with their sizes."""

from __future__ import annotations

from harness import registry
from harness.workloads import WORKLOADS, size_label


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "list",
        help="list impls (available or why not) and workloads",
        description="List every impl with whether it can run here (and why not), and every "
        "workload with its phases and sizes.",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    print("impls:")
    for name in registry.names():
        cls = registry.get_class(name)
        reason = cls.unavailable_reason()
        state = "available" if not reason else f"unavailable: {reason}"
        print(f"  {name:<16} {cls.device:<5} {state}")
    print("\nworkloads:")
    for work in WORKLOADS.values():
        print(f"  {work.name:<12} phases {'/'.join(work.phases):<13} {work.description}")
        print(f"  {'':<12} sizes: {'; '.join(size_label(s) for s in work.sizes)}")
    return 0
