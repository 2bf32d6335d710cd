"""`run`: the grid impl x workload x size x phase -> one stored run -> reports/summary.html."""

from __future__ import annotations

import sys

import pandas as pd
from tqdm import tqdm

from harness import registry
from harness.execute import child as isolate
from harness.execute import lifecycle as runner
from harness.execute import mpi as distributed
from harness.measure import count
from harness.measure.budget import Budget
from harness.results import machine, store
from harness.workloads import WORKLOADS


def _names(values):
    """--impl a --impl b,c -> [a, b, c]"""
    return [n for v in values or () for n in v.split(",") if n] or None


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "run", help="check and time the grid, store the run, render the report",
        description="Check every cell (impl x workload x size x phase) against the float64 "
                    "reference, time the ones that are right, store the run under "
                    "results/<machine>/ and render reports/summary.html. Each impl runs in a "
                    "child process, so a crash or a hang is recorded and the run goes on.")
    parser.add_argument("--impl", action="append", metavar="NAME",
                        help="impl(s) to run, repeatable or comma-separated (default: all; "
                             "see `list`)")
    parser.add_argument("--workload", action="append", metavar="NAME",
                        help=f"workload(s) (default: all of {', '.join(WORKLOADS)})")
    parser.add_argument("--phase", action="append", metavar="PHASE",
                        help=f"phase(s): {', '.join(runner.PHASES)} (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and short timing: a one-minute smoke of the grid")
    parser.add_argument("--budget", type=float, default=None, metavar="S",
                        help="skip a cell whose predicted time exceeds S seconds, recording "
                             "it as over_budget (default 10, quick 1; not when counting "
                             "instructions)")
    parser.add_argument("--time-per-cell", type=float, default=None, metavar="S",
                        help="seconds of timed rounds per cell (default 0.5, quick 0.05)")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S",
                        help="a cell with no result after S seconds is recorded as error "
                             "(default 300)")
    parser.add_argument("--ranks", type=int, default=2, metavar="P",
                        help="MPI ranks for the sharded impls (default 2)")
    parser.add_argument("--in-process", action="store_true",
                        help="run cells in this process (no crash isolation; for debugging)")
    parser.add_argument("--instructions", action="store_true",
                        help="count each cell's instructions under valgrind (callgrind) "
                             "instead of timing it: the same count every run, so a 1%% change "
                             "shows on a noisy machine. CPU rungs on one thread, ~50x slower, "
                             "and no budget (a cell over --timeout is an error): use --quick or "
                             "a few cells. The report leaves these rows out; "
                             "`compare` and `ab --instructions` compare them")
    parser.add_argument("--results", default=None, metavar="DIR",
                        help="results folder (default: results/ in the project)")
    parser.add_argument("--no-report", action="store_true",
                        help="do not render reports/summary.html at the end")
    parser.set_defaults(func=run)


def summary(rows: list) -> str:
    """A short table: per impl, workload and phase, the largest size that ran and its speed."""
    table = pd.DataFrame(rows)
    lines = []
    for (impl, workload, phase), group in table.groupby(["impl", "workload", "phase"],
                                                        sort=False):
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
        lines.append(f"{impl:<14} {workload:<10} {phase:<4} {last['size']:<28.28} {figure}"
                     f"   {statuses}")
    header = f"{'impl':<14} {'workload':<10} {'phase':<4} {'largest size done':<28} " \
             f"{'median':>13} {'throughput':>16}   cells"
    return "\n".join([header, *lines])


def run(args) -> int:
    cells = runner.plan(_names(args.impl), _names(args.workload), _names(args.phase),
                        quick=args.quick)  # unknown names raise here, before anything is written
    if not cells:
        raise ValueError("no cells match these filters (the phase may not exist for the "
                         "chosen workloads): see `python -m harness list`")
    options = {
        "budget_s": (1.0 if args.quick else 10.0) if args.budget is None else args.budget,
        "time_budget_s": (0.05 if args.quick else 0.5) if args.time_per_cell is None
        else args.time_per_cell,
        "timeout_s": args.timeout,
        "ranks": args.ranks,
        "instructions": args.instructions,
    }
    if args.instructions:
        reason = count.unavailable_reason()
        if reason:
            raise ValueError(f"--instructions: {reason}")
        if args.in_process or distributed.under_mpiexec():
            raise ValueError("--instructions starts each impl's worker under valgrind: drop "
                             "--in-process (and mpiexec)")
    Budget(options["budget_s"])  # refuses a non-positive budget before anything is written
    for flag, value in (("--time-per-cell", options["time_budget_s"]),
                        ("--timeout", options["timeout_s"]), ("--ranks", options["ranks"])):
        if not value > 0:
            raise ValueError(f"{flag} must be positive, got {value}")
    if distributed.under_mpiexec():  # `mpiexec -n P python -m harness run`: ranks in step
        args.in_process = True
        if not distributed.is_root():  # rank 0 alone stores, prints and renders
            return distributed.follow(cells, options)
        distributed.abort_on_uncaught()
    warning = None if args.instructions else machine.busy_warning()  # counts ignore load
    if warning:
        print(warning, file=sys.stderr)
    writer = store.open_run(args.results)
    bar = tqdm(total=len(cells), unit="cell", file=sys.stderr, mininterval=0.5,
               dynamic_ncols=True)

    def on_row(row):
        if args.instructions:  # every row of a counting run, its statuses too
            row = {**row, "measure": "instructions"}
        writer.append(row)
        bar.set_postfix_str(f"{row['impl']} {row['workload']} {row['phase']} {row['status']}")
        bar.update()

    if args.in_process:
        for impl_name in dict.fromkeys(c.impl for c in cells):
            impl_cells = [c for c in cells if c.impl == impl_name]
            reason = registry.unavailable_reason(impl_name)
            if reason:
                for row in runner.unavailable_rows(impl_cells, reason):
                    on_row(row)
                continue
            impl, budget = distributed.create(impl_name), Budget(options["budget_s"])
            for cell in impl_cells:
                on_row(distributed.run_cell(impl, cell, budget, options["time_budget_s"]))
    else:
        isolate.run_all(cells, options, on_row)
    bar.close()
    print(summary(writer.rows))
    print(f"\nstored {len(writer.rows)} rows in {writer.path}")
    if not args.no_report:
        from harness.report import summary as report

        path = report.render(store.load(args.results))
        print(f"report: {path}")
    return 0
