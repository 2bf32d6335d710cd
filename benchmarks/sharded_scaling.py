"""Strong scaling of a sharded rung: one cell at P = 1, 2, 4 ranks, one BLAS thread per rank.

    python -m benchmarks.sharded_scaling [--impl sharded-col] [--ranks 1,2,4] [--time-per-cell S]

Default cell: the column-parallel linear forward at B = 256, I = O = 4096 (the issue's target:
P = 2 at least 1.8x faster than P = 1 on a 2-core machine). Each trial of each P is one MPI
job of this module (`--as-rank`): it runs the cell through harness.execute.lifecycle.run_cell (the
slowest rank's time, its compute / communication split, the bytes each rank sent) and prints
rank 0's row. The rows are stored as one run under results/<machine>/, like those of
`python -m harness run`, and printed as a table: per P the trial with the median time, the
range over trials, speedup and efficiency T1 / (P * TP) against P = 1, and the speedup of the
compute alone (what the cores gave, whatever else runs on the machine). A P above the core
count oversubscribes the cores: the table says so on that line.

Not collected by pytest (the name has no test_ / bench_ prefix): a figure, not an assertion.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from harness import registry
from harness.contract import COLLECTIVES
from harness.execute import grid, lifecycle
from harness.execute import mpi as distributed
from harness.measure.budget import Budget
from harness.results import machine, store
from harness.workloads import size_label

ROW = "@@row "


def run_as_rank(impl_name: str, size: tuple, phase: str, time_per_cell: float) -> None:
    impl = registry.create(impl_name)
    options = lifecycle.Options(time_per_cell_s=time_per_cell)
    row = lifecycle.run_cell(
        impl,
        grid.Cell(impl_name, "linear", size, phase),
        Budget(3600),
        lifecycle.measurement_for(impl, options),
    )
    if distributed.is_root():
        print(ROW + json.dumps(row), flush=True)


def _typical(rows: list) -> dict:
    """Of one P's trials, the one with the median time (the lower of two middles)."""
    done = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["t_median_s"])
    return done[(len(done) - 1) // 2] if done else rows[-1]


def table(rows: list, cores: int) -> str:
    """One line per P: its typical trial, with the range over trials; speedup against P = 1."""
    by_ranks: dict = {}
    for r in rows:
        by_ranks.setdefault(r["P"], []).append(r)
    base = _typical(by_ranks[1]) if 1 in by_ranks else None
    lines = [
        f"{'P':>2} {'BLAS thr':>8} {'median ms':>10} {'trials ms':>15} {'speedup':>8} "
        f"{'effic.':>7} {'compute ms':>11} {'(speedup)':>9} {'comm ms':>8} {'comm %':>7} "
        f"{'sent/rank MB':>13} {'weights/rank MB':>16}"
    ]
    for ranks, trials in by_ranks.items():
        r = _typical(trials)
        if r["status"] != "ok":
            lines.append(f"{ranks:>2} {r['status']}: {r.get('reason', '')}")
            continue
        times = [t["t_median_s"] * 1e3 for t in trials if t["status"] == "ok"]
        speedup = (
            base["t_median_s"] / r["t_median_s"]
            if base and base["status"] == "ok"
            else float("nan")
        )
        # The compute alone scales as far as the cores really are free: on a shared machine,
        # its speedup is the ceiling the total speedup is to be read against.
        compute_speedup = (
            base["t_compute_s"] / r["t_compute_s"]
            if base and base["status"] == "ok"
            else float("nan")
        )
        sent = sum(r.get(f"comm_{name}_bytes", 0) for name in COLLECTIVES)  # bytes sent per rank
        lines.append(
            f"{ranks:>2} {r['threads']:>8} {r['t_median_s'] * 1e3:>10.1f} "
            f"{f'{min(times):.1f}-{max(times):.1f}':>15} {speedup:>7.2f}x "
            f"{speedup / ranks:>7.0%} {r['t_compute_s'] * 1e3:>11.1f} "
            f"{compute_speedup:>8.2f}x "
            f"{r['t_comm_s'] * 1e3:>8.1f} {r['t_comm_s'] / r['t_median_s']:>7.0%} "
            f"{sent / 1e6:>13.2f} {r['weight_bytes'] / 1e6:>16.1f}"
            + (f"   (oversubscribed: {ranks} ranks on {cores} cores)" if ranks > cores else "")
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sharded_scaling", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--impl", default="sharded-col", help="sharded-col or sharded-row")
    parser.add_argument("--phase", default="fwd", choices=("fwd", "bwd"))
    parser.add_argument("--size", default="256,4096,4096", metavar="B,I,O")
    parser.add_argument("--ranks", default="1,2,4", metavar="P,P,...")
    parser.add_argument(
        "--time-per-cell",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds of timed rounds per P (default 2)",
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=3,
        metavar="N",
        help="jobs per P, interleaved (P = 1, 2, 4, 1, 2, 4, ...) so that a "
        "change in the machine's load hits every P alike (default 3)",
    )
    parser.add_argument("--results", default=None, metavar="DIR")
    parser.add_argument("--as-rank", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = tuple(zip("BIO", (int(n) for n in args.size.split(",")), strict=True))
    if args.as_rank:
        run_as_rank(args.impl, size, args.phase, args.time_per_cell)
        return 0
    cls = registry.get_class(args.impl)
    if reason := cls.unavailable_reason():
        print(f"{args.impl} is unavailable here: {reason}", file=sys.stderr)
        return 1
    writer = store.open_run(args.results)
    meta = writer.meta
    rows = []
    for trial, ranks in ((t, int(p)) for t in range(args.trials) for p in args.ranks.split(",")):
        done = subprocess.run(
            [
                *cls.launch_prefix(ranks),
                sys.executable,
                "-m",
                "benchmarks.sharded_scaling",
                "--as-rank",
                "--impl",
                args.impl,
                "--phase",
                args.phase,
                "--size",
                args.size,
                "--time-per-cell",
                str(args.time_per_cell),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=machine.ROOT,
        )
        found = [
            json.loads(line[len(ROW) :])
            for line in done.stdout.splitlines()
            if line.startswith(ROW)
        ]
        if done.returncode != 0 or not found:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            found = [
                {
                    **grid.describe(grid.Cell(args.impl, "linear", size, args.phase)),
                    "P": ranks,
                    "status": "error",
                    "reason": f"mpiexec exited with code {done.returncode} ({tail})",
                }
            ]
        rows.append({**found[0], "trial": trial})
        writer.append(rows[-1])
    print(
        f"{args.impl} linear {args.phase} {size_label(dict(size))} on {meta['cores']} cores, "
        f"load average {os.getloadavg()[0]:.1f} (other work on the machine skews the times)"
    )
    print(table(rows, meta["cores"]))
    print(f"\nstored {len(rows)} rows in {writer.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
