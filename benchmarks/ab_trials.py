"""Measures how often `ab` gets its verdicts right, over many trials (not a pytest module).

    python -m benchmarks.ab_trials --trials 30      # runs, scores, keeps every trial's runs
    python -m benchmarks.ab_trials --rescore        # scores the kept runs again, runs nothing

Two targets, in alternating trials of `ab` with `--repeats` interleaved runs a side:
1. a commit against itself: a trial passes when every cell says "same";
2. the commit against a throwaway commit that makes one impl's cells 15% slower: a trial
   passes when exactly that impl's cells say "slower" and every other cell "same".
Only cells timed on both sides count (a cell over budget on one side has no timing verdict).
Each trial is scored as `ab` reports it (harness/compare/, by benchmarks/ab_scoring.py);
`--rescore` scores kept trials again with the compare method of the checkout it runs in.

The default grid, xor (fwd, bwd, step) for numpy and pure_python, is six cells that are far
from the run's time budget, so every cell is timed in every run, and cheap enough to repeat
many times on two cores; its cells take 30-300 us, where a shared machine's jitter weighs
most. Larger grids: --impl, --workload, --phase.

The slowed commit, and why the slowdown is a throwaway commit: benchmarks/ab_commits.py.

The figures go to reports/ab_trials.json and the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from benchmarks.ab_commits import cpu_clock_commit, slowed_commit
from benchmarks.ab_scoring import score, summary
from harness.commands.ab import QUICK_TIME_PER_CELL, REPEATS
from harness.compare import ab
from harness.results import git
from harness.results.machine import ROOT


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help=f"runs a side in each trial (default {REPEATS}, as `ab`)",
    )
    parser.add_argument(
        "--time-per-cell",
        type=float,
        default=QUICK_TIME_PER_CELL,
        metavar="S",
        help=f"as `ab` (default {QUICK_TIME_PER_CELL})",
    )
    parser.add_argument("--impl", default="numpy,pure_python", help="the impls of the grid")
    parser.add_argument("--workload", default="xor", help="the workloads of the grid")
    parser.add_argument("--phase", default="fwd,bwd,step", help="the phases of the grid")
    parser.add_argument("--inject", default="numpy", help="the impl made slower")
    parser.add_argument("--slowdown", type=float, default=0.15)
    parser.add_argument("--ref", default="HEAD", help="the commit tested")
    parser.add_argument("--out", default=str(ROOT / "reports" / "ab_trials.json"))
    parser.add_argument(
        "--keep",
        default=str(ROOT / "results" / "ab_trials"),
        help="where each trial's runs are stored (outside the report's reach)",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="run nothing: score the trials kept under --keep again",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: the harness as it is; cpu: both sides time rounds in "
        "process CPU time (a throwaway commit on --ref)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="scheduling priority of the runs (default -10, root only: on a "
        "shared machine, neighbours' jobs otherwise decide the timings)",
    )
    parser.add_argument(
        "--blas-threads",
        default="1",
        help="BLAS threads of the runs (default 1: on a shared 2-core machine "
        "a 2-thread BLAS spinning against other jobs turns a 50 us "
        "product into 50 ms, a pathology of the machine, not the code)",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up worktrees on the way out
    keep, out = Path(args.keep), Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.rescore:
        figures = {"rescored": str(keep), "inject": args.inject}
        for results in sorted(keep.iterdir(), key=lambda p: (p.name.split("-")[1], p.name)):
            if len(list(results.glob("*/*.jsonl"))) < 2 * args.repeats:
                print(f"{results.name}: cut short, not scored")
                continue
            print(score(figures, results.name.split("-")[0], results, args.inject))
        out.write_text(json.dumps(figures, indent=1, default=str))
        print(summary(figures), f"\nfigures: {out}", sep="\n")
        return 0
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = args.blas_threads  # the runs inherit the environment
    try:
        niceness = os.nice(args.nice - os.nice(0))  # the runs inherit the priority too
    except PermissionError:
        niceness = os.nice(0)
        print(f"note: no permission for nice {args.nice}; runs at nice {niceness}")
    base = git.resolve(args.ref)
    if args.clock == "cpu":
        base = cpu_clock_commit(base)
    run_args = [
        "--quick",
        f"--impl={args.impl}",
        f"--workload={args.workload}",
        f"--phase={args.phase}",
        f"--time-per-cell={args.time_per_cell}",
    ]
    figures = {
        "ref": base,
        "grid": " ".join(run_args),
        "repeats": args.repeats,
        "blas_threads": args.blas_threads,
        "nice": niceness,
        "inject": args.inject,
        "slowdown": args.slowdown,
        "clock": args.clock,
        "slowed_commit": slowed_commit(
            base,
            args.inject,
            args.slowdown,
            "process_time" if args.clock == "cpu" else "perf_counter",
        ),
    }
    started = time.time()
    # the two targets take turns, so the load of the machine over the hour hits both alike
    for number in range(args.trials):
        for target, head in (("self", base), ("injected", figures["slowed_commit"])):
            results = keep / f"{target}-{number:03d}"  # kept: --rescore reads them again
            ab.ab(base, head, run_args, args.repeats, results, log=lambda _: None, build_ext=False)
            print(score(figures, target, results, args.inject), flush=True)
            figures[target].setdefault("load_1min", []).append(os.getloadavg()[0])
            figures["minutes"] = (time.time() - started) / 60
            out.write_text(json.dumps(figures, indent=1, default=str))  # after every trial
    print(summary(figures), f"figures: {out}", sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
