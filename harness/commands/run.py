"""`run`: the grid impl x workload x size x phase -> one stored run -> reports/summary.html."""

from __future__ import annotations

import dataclasses
import os
import sys

import pandas as pd
from tqdm import tqdm

from harness.commands.common import add_cell_filters, add_results, names, seconds
from harness.execute import isolate, lifecycle, mpi, ranks
from harness.execute.grid import by_impl, plan
from harness.measure import count, gpu_options
from harness.measure.budget import Budget
from harness.results import ceilings, machine_state, store

RANKS_PER_CORE = 2  # more ranks than this per core measure the scheduler, not the impl


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "run",
        help="check and time the grid, store the run, render the report",
        description="Check every cell (impl x workload x size x phase) against the float64 "
        "reference, time the ones that are right, store the run under "
        "results/<machine>/ and render reports/summary.html. Each impl runs in a "
        "child process, so a crash or a hang is recorded and the run goes on. "
        "Ctrl-C stops it, keeping the cells already done.",
    )
    add_cell_filters(parser)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and short timing: a smoke of the whole grid in minutes, not an hour",
    )
    parser.add_argument(
        "--budget",
        type=seconds,
        default=None,
        metavar="S",
        help="skip a cell whose predicted time exceeds S seconds, recording "
        "it as over_budget (default 10, quick 1; not when counting "
        "instructions)",
    )
    parser.add_argument(
        "--time-per-cell",
        type=seconds,
        default=None,
        metavar="S",
        help="seconds of timed rounds per cell (default 0.5, quick 0.05)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=300.0,
        metavar="S",
        help="a cell with no result after S seconds is recorded as error (default 300)",
    )
    parser.add_argument(
        "--ranks",
        type=int,
        default=2,
        metavar="P",
        help="MPI ranks for the impls that run on ranks (default 2; at most "
        f"{RANKS_PER_CORE} per core unless --oversubscribe)",
    )
    parser.add_argument(
        "--hosts",
        default=None,
        metavar="FILE",
        help="a Hydra hostfile (`host` or `host:slots` a line) the MPI ranks are started on, "
        "as mpiexec -f FILE: the same Python and checkout on every host (README)",
    )
    parser.add_argument(
        "--oversubscribe",
        action="store_true",
        help=f"allow more than {RANKS_PER_CORE} ranks per core",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run cells in this process (no crash isolation; for debugging)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count each cell's instructions under valgrind (callgrind) "
        "instead of timing it: the same count every run, so a 1%% change "
        "shows on a noisy machine. CPU rungs on one thread, ~50x slower, "
        "and no budget (a cell over --timeout is an error): use --quick or "
        "a few cells. The report leaves these rows out; "
        "`compare` and `ab --instructions` compare them",
    )
    gpu_options.add_options(parser)  # --gpu-timing, --profile
    add_results(parser)
    parser.add_argument(
        "--no-report", action="store_true", help="do not render reports/summary.html at the end"
    )
    parser.set_defaults(func=run)


def summary(rows: list) -> str:
    """A short table: per impl, workload and phase, the largest size that ran and its speed."""
    table = pd.DataFrame(rows)
    lines = []
    for (impl, workload, phase), group in table.groupby(["impl", "workload", "phase"], sort=False):
        done = group[group.status == "ok"]
        statuses = ", ".join(f"{n} {s}" for s, n in group.status.value_counts().items())
        if done.empty:
            lines.append(f"{impl:<14} {workload:<10} {phase:<4} {'':<28} {statuses}")
            continue
        last = done.iloc[-1]
        if last.get("measure") == "instructions":
            figure = f"{last.instructions:>13,.0f} {last.flops_per_instruction:>7.3g} FLOP/instr"
        else:
            figure = f"{last.t_median_s * 1e3:>10.3f} ms {last.gflops_per_s:>8.2f} GFLOP/s"
        lines.append(
            f"{impl:<14} {workload:<10} {phase:<4} {last['size']:<28.28} {figure}   {statuses}"
        )
    header = (
        f"{'impl':<14} {'workload':<10} {'phase':<4} {'largest size done':<28} "
        f"{'median':>13} {'throughput':>16}   cells"
    )
    return "\n".join([header, *lines])


def options_of(args) -> lifecycle.Options:
    """The run's options from the command line, each checked before anything is written."""
    cores = os.cpu_count() or 1
    if args.ranks < 1:
        raise ValueError(f"--ranks must be 1 or more, got {args.ranks}")
    if args.ranks > RANKS_PER_CORE * cores and not args.oversubscribe:
        raise ValueError(
            f"--ranks {args.ranks}: this machine has {cores} cores, and more than "
            f"{RANKS_PER_CORE} ranks a core would time the scheduler; use "
            f"--ranks {RANKS_PER_CORE * cores} or less, or --oversubscribe"
        )
    if args.instructions:
        reason = count.unavailable_reason()
        if reason:
            raise ValueError(f"--instructions: {reason}")
        if args.in_process or mpi.under_mpiexec():
            raise ValueError(
                "--instructions starts each impl's worker under valgrind: drop "
                "--in-process (and mpiexec)"
            )
    gpu_options.check(args)  # the GPU timing mode reaches the workers through the environment
    options = lifecycle.Options(
        budget_s=(1.0 if args.quick else 10.0) if args.budget is None else args.budget,
        time_per_cell_s=(0.05 if args.quick else 0.5)
        if args.time_per_cell is None
        else args.time_per_cell,
        timeout_s=args.timeout,
        ranks=args.ranks,
        instructions=args.instructions,
    )
    Budget(options.budget_s)  # refuses a budget that is not a positive number of seconds
    return options


def run(args) -> int:
    cells = plan(
        names(args.impl, "--impl"),
        names(args.workload, "--workload"),
        names(args.phase, "--phase"),
        quick=args.quick,
    )  # unknown names raise here
    if not cells:
        raise ValueError(
            "no cells match these filters (the phase may not exist for the "
            "chosen workloads): see `python -m harness list`"
        )
    options = options_of(args)
    if args.hosts:
        if args.in_process or mpi.under_mpiexec():
            raise ValueError(
                "--hosts is for the mpiexec that run starts: drop --in-process, or pass the "
                "hostfile to your own mpiexec (-f FILE)"
            )
        # a hostfile that is not one fails here, before any cell; the workers' mpiexec read it
        # from the environment they inherit (this process ends with the run)
        os.environ[mpi.HOSTFILE_VAR] = mpi.check_hostfile(args.hosts)
    if mpi.under_mpiexec():  # `mpiexec -n P python -m harness run`: ranks in step
        args.in_process = True
        if not mpi.is_root():  # rank 0 alone stores, prints and renders
            return ranks.follow(cells, options)
        mpi.abort_on_uncaught()
    writer = store.open_run(args.results)  # an unwritable --results fails here, first
    links = gpu_options.profile(args, cells, writer)  # --profile: ncu reports, before timing
    if not args.instructions:  # every ok timed row's roof, judged in the workers
        options = dataclasses.replace(options, ceilings=ceilings.for_this_machine(args.results))
    warning = None if args.instructions else machine_state.busy_warning()  # counts ignore load
    if warning:
        print(warning, file=sys.stderr)
    bar = tqdm(total=len(cells), unit="cell", file=sys.stderr, mininterval=0.5, dynamic_ncols=True)

    def on_row(row):
        row = gpu_options.linked(row, links)
        if args.instructions:  # every row of a counting run, its statuses too
            row = {**row, "measure": "instructions"}
        writer.append(row)
        bar.set_postfix_str(f"{row['impl']} {row['workload']} {row['phase']} {row['status']}")
        bar.update()

    try:
        if args.in_process:
            for name, impl_cells in by_impl(cells).items():
                lifecycle.run_impl(name, impl_cells, options, on_row)
        else:
            isolate.run_all(cells, options, on_row)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM (cli.py): the workers are ended by now
        bar.close()
        print(
            f"{len(writer.rows)} of {len(cells)} cells done, kept in {writer.path}", file=sys.stderr
        )
        raise
    finally:  # the machine as the run left it, beside its state before (every row has both)
        writer.stamp(machine_state.after(gpu=bool(writer.meta.get("gpu"))))
    bar.close()
    print(summary(writer.rows))
    print(f"\nstored {len(writer.rows)} rows in {writer.path}")
    if not args.no_report:
        from harness.report import summary as report

        path = report.render(store.load(args.results), results=args.results)
        print(f"report: {path}")
    return 0
