"""`ab BASE HEAD`: run two commits interleaved in their own worktrees, then compare them."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from harness.commands.common import add_cell_filters, add_results, add_verdict_options, seconds
from harness.commands.compare import check_markdown, report
from harness.compare import ab
from harness.results import git
from harness.results.store import RESULTS

# Measured on a 2-core VM (benchmarks/ab_trials.py; its verdicts: README, "Measured figures"):
# a 30-300 us cell's fastest round moves by ~5% (standard deviation) from one run to the next,
# so the ratio of 12 runs a side against 12 is good to ~2%: a 15% change clears the 10%
# threshold in each of a trial's cells in ~98% of trials. A run costs ~2.5 s of start-up, so
# cells stay short.
REPEATS = 12
QUICK_TIME_PER_CELL = 0.1


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "ab",
        help="run two commits interleaved on this machine and compare them",
        description="Check out BASE and HEAD in their own git worktrees (building the C "
        "extension where the commit has a setup.py), run `python -m harness run` "
        "in each, alternating A B A B ... so drift hits both alike, and compare "
        "the runs as `compare` does. Exit code 1 on a significant regression.",
        epilog="Example: `python -m harness ab main HEAD --workload matmul --impl numpy`.",
    )
    parser.add_argument("base", metavar="BASE", help="base commit (sha, branch or tag)")
    parser.add_argument("head", metavar="HEAD", help="head commit (sha, branch or tag)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        metavar="N",
        help=f"runs of each side, interleaved (default {REPEATS}: a run's "
        "time moves ~5%% from run to run on a 2-core VM, so a 15%% "
        "change needs ~12 runs a side to clear the 10%% threshold in "
        "95%% of trials; 1 with --instructions)",
    )
    add_results(
        parser,
        "where the runs are stored",
        "results/ab/<time>-<base>-<head>/, outside the summary report's reach",
    )
    parser.add_argument(
        "--no-build",
        action="store_true",
        help="do not build the C extension (for grids without a C impl)",
    )
    add_verdict_options(parser)
    add_cell_filters(parser)
    parser.add_argument(
        "--full",
        action="store_true",
        help="the full sizes and timing of `run` (default: its --quick grid)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under valgrind instead of timing (`run "
        "--instructions`): near-exact, so one run a side is enough "
        "(--repeats defaults to 1) and --count-threshold applies",
    )
    parser.add_argument(
        "--time-per-cell",
        type=seconds,
        default=None,
        metavar="S",
        help="seconds of timed rounds per cell, as for `run` (default "
        f"{QUICK_TIME_PER_CELL} with the --quick grid: more rounds than its "
        "own 0.05 s, for a fastest round that other work missed)",
    )
    parser.set_defaults(func=run)


def run_arguments(args) -> list:
    """The options of `ab` that pass through to `python -m harness run`."""
    out = [] if args.full else ["--quick"]
    if args.instructions:
        return [
            *out,
            "--instructions",
            *(
                f"--{option}={value}"
                for option in ("impl", "workload", "phase")
                for value in getattr(args, option) or ()
            ),
        ]
    for option in ("impl", "workload", "phase"):
        out += [f"--{option}={value}" for value in getattr(args, option) or ()]
    time_per_cell = (
        QUICK_TIME_PER_CELL if args.time_per_cell is None and not args.full else args.time_per_cell
    )
    if time_per_cell is not None:
        out.append(f"--time-per-cell={time_per_cell}")
    return out


def run(args) -> int:
    # A CI job's cancel sends SIGTERM: cli.py raises it here as Stopped, which unwinds through
    # the finally blocks that remove the worktrees.
    check_markdown(args)
    base_sha, head_sha = git.resolve(args.base), git.resolve(args.head)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results = Path(args.results or RESULTS / "ab" / f"{stamp}-{base_sha[:7]}-{head_sha[:7]}")
    repeats = args.repeats if args.repeats is not None else 1 if args.instructions else REPEATS
    try:
        base, head = ab.ab(
            base_sha, head_sha, run_arguments(args), repeats, results, build_ext=not args.no_build
        )
    except RuntimeError as error:  # a worktree, build or run that failed: say which and why
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"ab: {repeats} runs a side stored under {results}")
    return report(
        base, head, f"{args.base} ({base_sha[:7]})", f"{args.head} ({head_sha[:7]})", args
    )
