"""The collectives issue's targets, measured side by side in one run on this machine.

    python -m benchmarks.collectives_targets [--trials N] [--time-per-cell S] [--no-sweep]
    python -m benchmarks.collectives_targets --rows results/<machine>/<run>.jsonl  # report it

- MPI's all-reduce against the hand-written ring at 32 KiB, P = 2: both latencies;
- the column-parallel linear forward, B = 256, I = O = 4096: P = 2 against P = 1 (target
  >= 1.8x), with the speedup of the compute alone (what the cores gave);
- its backward at P = 2 with and without overlap (sharded-col-overlap, sharded-col): the
  communication hidden, 1 - exposed comm with overlap / comm without, and the overlapped
  row's own figure (the share of its all-reduced bytes done while it still computed);
- MPI's all-reduce busbw at 64 MiB, P = 2, against the host copy bandwidth of the ceilings;
- unless --no-sweep, the collectives workload (4 B ... 64 MiB) at P = 2 and 4, MPI's and the
  ring's, and its alpha-beta fits, stored as results/<machine>/alpha_beta.json.

Each P of each trial is one MPI job of this module (--as-rank) that runs its cells through
harness.execute.lifecycle.run_cell, as `harness run` does, rank 0 printing the rows; trials
interleave P = 1 and 2 so that a change in the machine's load hits both; a target takes the
trial with the median time. Every row is stored as one run under results/<machine>/.
Not collected by pytest (no test_ / bench_ prefix): figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from harness import registry
from harness.execute import grid, lifecycle
from harness.execute import mpi as distributed
from harness.measure.budget import Budget
from harness.results import atomic, ceilings, machine, store
from harness.workloads import collectives

ROW = "@@row "
LINEAR = (("B", 256), ("I", 4096), ("O", 4096))
KIB32, MIB64 = 32 * 1024 // 4, 64 * 1024 * 1024 // 4  # entries of the float32 vector


JOB_TIMEOUT_S = 3600  # one job of the targets takes about a minute here, the sweep a few


def _collective(impl: str, name: str, n: int) -> list:
    return [impl, "collectives", [["collective", name], ["N", n]], "fwd"]


TARGETS = {  # P -> the cells of one trial's job
    1: [["sharded-col", "linear", LINEAR, "fwd"]],
    2: [
        ["sharded-col", "linear", LINEAR, "fwd"],
        ["sharded-col", "linear", LINEAR, "bwd"],
        ["sharded-col-overlap", "linear", LINEAR, "bwd"],
        *(
            _collective(i, "allreduce", n)
            for n in (KIB32, MIB64)
            for i in ("sharded-col", "sharded-col-ring")
        ),
    ],
}


def sweep() -> list:
    """Every size of the collectives workload, MPI's and the ring's."""
    return [
        [impl, "collectives", [list(kv) for kv in size.items()], "fwd"]
        for impl in ("sharded-col", "sharded-col-ring")
        for size in collectives.COLLECTIVES_WORKLOAD.sizes
    ]


def run_as_rank(cells: list, time_per_cell: float) -> None:
    """On every rank of the job: each cell through the runner; rank 0 prints the rows."""
    impls, options = {}, lifecycle.Options(time_per_cell_s=time_per_cell)
    for cell in (grid.Cell.from_json(c) for c in cells):
        if cell.impl not in impls:
            impls[cell.impl] = registry.create(cell.impl)
        impl = impls[cell.impl]
        row = lifecycle.run_cell(impl, cell, Budget(3600), lifecycle.measurement_for(impl, options))
        if distributed.is_root():
            print(ROW + json.dumps(row), flush=True)


def job(ranks: int, cells: list, time_per_cell: float) -> list:
    """One MPI job of P ranks running cells -> their rows (an error row each if it failed or
    outlived JOB_TIMEOUT_S: subprocess kills mpiexec, and Hydra its ranks)."""
    command = [
        *registry.get_class("sharded-col").launch_prefix(ranks),
        *(sys.executable, "-m", "benchmarks.collectives_targets", "--as-rank"),
        *("--cells", json.dumps(cells), "--time-per-cell", str(time_per_cell)),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=JOB_TIMEOUT_S, cwd=machine.ROOT
        )
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as late:  # its output is bytes, or None
        stdout, stderr = ((o or b"").decode(errors="replace") for o in (late.stdout, late.stderr))
        code = f"none: stopped after {JOB_TIMEOUT_S} s"
    rows = [json.loads(line[len(ROW) :]) for line in stdout.splitlines() if line.startswith(ROW)]
    if code != 0 or len(rows) != len(cells):
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        reason = f"mpiexec -n {ranks} exited with code {code} ({tail})"
        rows += [
            {**grid.failed(grid.Cell.from_json(c), "error", reason), "P": ranks}
            for c in cells[len(rows) :]
        ]
    return rows


def _median_trial(rows: list, impl: str, workload: str, phase: str, ranks: int, **size) -> dict:
    """Of one cell's trials, the ok one with the median time (else the last, failed)."""
    same = [
        r
        for r in rows
        if (r["impl"], r["workload"], r["phase"], r.get("P")) == (impl, workload, phase, ranks)
        and all(r.get(k) == v for k, v in size.items())
    ]
    done = sorted((r for r in same if r["status"] == "ok"), key=lambda r: r["t_median_s"])
    if not done:
        reason = same[-1].get("reason", "not run") if same else "not run"
        raise RuntimeError(f"{impl} {workload} {phase} P={ranks} {size}: {reason}")
    return done[(len(done) - 1) // 2]


def report(rows: list, copy_gb_per_s: float) -> str:
    """The targets, one line each, from the stored rows."""
    lin = {"B": 256, "I": 4096, "O": 4096}
    native, ring = (
        _median_trial(rows, i, "collectives", "fwd", 2, collective="allreduce", N=KIB32)
        for i in ("sharded-col", "sharded-col-ring")
    )
    one, two = (_median_trial(rows, "sharded-col", "linear", "fwd", p, **lin) for p in (1, 2))
    plain, overlapped = (
        _median_trial(rows, i, "linear", "bwd", 2, **lin)
        for i in ("sharded-col", "sharded-col-overlap")
    )
    big = _median_trial(
        rows, "sharded-col", "collectives", "fwd", 2, collective="allreduce", N=MIB64
    )
    big_ring = _median_trial(
        rows, "sharded-col-ring", "collectives", "fwd", 2, collective="allreduce", N=MIB64
    )
    hidden = 1 - overlapped["t_comm_s"] / plain["t_comm_s"]
    busbw = big["comm_allreduce_busbw_gb_per_s"]
    return "\n".join(
        [
            f"all-reduce 32 KiB, P=2: MPI {native['t_median_s'] * 1e6:.1f} us, ring "
            f"{ring['t_median_s'] * 1e6:.1f} us ({ring['t_median_s'] / native['t_median_s']:.2f}x)",
            f"column-parallel linear fwd B=256 4096^2: P=1 {one['t_median_s'] * 1e3:.1f} ms, "
            f"P=2 {two['t_median_s'] * 1e3:.1f} ms: {one['t_median_s'] / two['t_median_s']:.2f}x "
            f"(target >= 1.8x; compute alone {one['t_compute_s'] / two['t_compute_s']:.2f}x, "
            f"comm {two['t_comm_s'] / two['t_median_s']:.0%} of P=2)",
            f"linear bwd P=2: without overlap {plain['t_median_s'] * 1e3:.1f} ms (comm "
            f"{plain['t_comm_s'] * 1e3:.2f} ms), with {overlapped['t_median_s'] * 1e3:.1f} ms "
            f"(comm exposed {overlapped['t_comm_s'] * 1e3:.2f} ms): {hidden:.0%} of the comm "
            f"hidden; {overlapped['comm_overlap_early_fraction']:.0%} of the all-reduced bytes "
            "done before the final wait (at polls between slabs, on the rank's own time)",
            f"all-reduce 64 MiB, P=2: MPI busbw {busbw:.2f} GB/s "
            f"({big['t_median_s'] * 1e3:.1f} ms), ring "
            f"{big_ring['comm_allreduce_busbw_gb_per_s']:.2f} GB/s: MPI's "
            f"{busbw / copy_gb_per_s:.0%} of the host copy bandwidth ({copy_gb_per_s:.1f} "
            "GB/s, ceilings)",
        ]
    )


def fits_table(rows: list) -> str:
    """One line per impl, P and collective: its alpha-beta fit."""
    return "\n".join(
        f"alpha-beta {impl:<16} {ranks} {name:<13} alpha {fit['alpha_s'] * 1e6:7.1f} us, "
        f"1/beta {fit['gb_per_s']:6.2f} GB/s, rms residual {fit['rms_rel_residual']:.0%}"
        for impl, by_ranks in collectives.alpha_beta(rows).items()
        for ranks, by_name in by_ranks.items()
        for name, fit in by_name.items()
    )


def store_fits(rows: list, results) -> Path:
    """The alpha-beta fits of the sweep's rows, beside the machine's ceilings."""
    meta = machine.info()
    fits = {
        "machine": meta["machine"],
        "cpu": meta["cpu"],
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": "t = alpha_s + beta_s_per_byte * S, S the message size per rank",
        "fits": collectives.alpha_beta(rows),
    }
    path = ceilings.path_for(meta["machine"], results).with_name("alpha_beta.json")
    return atomic.write_atomic(path, json.dumps(fits, indent=1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.collectives_targets", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--trials", type=int, default=3, metavar="N", help="default 3")
    parser.add_argument("--time-per-cell", type=float, default=1.0, metavar="S")
    parser.add_argument("--sweep-time-per-cell", type=float, default=0.2, metavar="S")
    parser.add_argument("--no-sweep", action="store_true", help="the targets alone")
    parser.add_argument("--results", default=None, metavar="DIR")
    parser.add_argument(
        "--rows", default=None, metavar="RUN.jsonl", help="report a stored run, run nothing"
    )
    parser.add_argument("--as-rank", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cells", default="[]", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.as_rank:
        run_as_rank(json.loads(args.cells), args.time_per_cell)
        return 0
    if reason := registry.unavailable_reason("sharded-col"):
        print(f"the sharded rungs are unavailable here: {reason}", file=sys.stderr)
        return 1
    roofs = ceilings.for_this_machine(args.results)
    if args.rows:  # the figures of a run this script stored
        rows = store.read_run(Path(args.rows)).to_dict("records")
        print(report(rows, roofs["copy_gb_per_s"]))
        print(fits_table(rows))
        return 0
    writer, rows = store.open_run(args.results), []
    jobs = [(p, TARGETS[p], args.time_per_cell) for _ in range(args.trials) for p in TARGETS]
    if not args.no_sweep:
        jobs += [(p, sweep(), args.sweep_time_per_cell) for p in (2, 4)]
    for ranks, cells, seconds in jobs:
        for row in job(ranks, cells, seconds):
            writer.append(row)
            rows.append(row)
    print(
        f"on {writer.meta['cores']} cores, load average {os.getloadavg()[0]:.1f} (other work "
        f"on the machine skews the times); {args.trials} trials, the median one"
    )
    print(report(rows, roofs["copy_gb_per_s"]))
    if not args.no_sweep:
        print(fits_table(rows))
        print(f"alpha-beta fits stored in {store_fits(rows, args.results)}")
    print(f"stored {len(rows)} rows in {writer.path}")
    for r in (r for r in rows if r["status"] != "ok"):
        print(f"not ok: {r['impl']} {r['workload']} {r['size']}: {r.get('reason')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
