"""Measures how often `ab` gets its verdicts right, over many trials (not a pytest module).

    python -m benchmarks.ab_trials --trials 30      # runs, scores, keeps every trial's runs
    python -m benchmarks.ab_trials --rescore        # scores the kept runs again, runs nothing

Two targets, in alternating trials of `ab` with `--repeats` interleaved runs a side:
1. a commit against itself: a trial passes when every cell says "same";
2. the commit against a throwaway commit that makes one impl's cells 15% slower: a trial
   passes when exactly that impl's cells say "slower" and every other cell "same".
Only cells timed on both sides count (a cell over budget on one side has no timing verdict).
Each trial is scored as `ab` reports it (harness/compare/); `--rescore` scores kept trials
again with the compare method of the checkout it runs in.

The default grid, xor (fwd, bwd, step) for numpy and pure_python, is six cells that are far
from the run's time budget, so every cell is timed in every run, and cheap enough to repeat
many times on two cores; its cells take 30-300 us, where a shared machine's jitter weighs
most. Larger grids: --impl, --workload, --phase.

Why the slowdown is a throwaway commit that pads cells, not an edit to an impl's ops: it
touches nothing in the repository (the commit lives only in a temporary worktree, and git
drops it), and padding each call of the impl's cells at the runner's `prepare` boundary makes
every cell exactly 15% slower, whereas slowing the ops would be diluted, by a different
amount per cell, by the harness's model code between them. The padding is a busy wait, so
it loads the core as real work does.

The figures go to reports/ab_trials.json and the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from harness import compare
from harness.commands.ab import QUICK_TIME_PER_CELL, REPEATS
from harness.compare import ab
from harness.results import git, store
from harness.results.machine import ROOT

PADDING = """

# ---- injected by benchmarks/ab_trials.py: {impl}'s cells {percent}% slower ----
_prepare_unpadded = prepare


def prepare(impl, cell, budget, seed=SEED):
    row, fn = _prepare_unpadded(impl, cell, budget, seed)
    if fn is None or cell.impl != {impl!r}:
        return row, fn

    def padded():
        start = time.{clock}()
        out = fn()
        end = start + (time.{clock}() - start) * (1 + {slowdown!r})
        while time.{clock}() < end:
            pass
        return out
    return row, padded
"""


def throwaway_commit(base_sha: str, path: str, edit, message: str) -> str:
    """A commit on top of base_sha with edit(text) applied to one file; only git's objects
    keep it (no branch points at it, and its worktree is removed)."""
    with (
        tempfile.TemporaryDirectory(prefix="nnladder-trials-") as tmp,
        git.worktree(base_sha, Path(tmp)) as tree,
    ):
        source = tree / path
        text = source.read_text()
        source.write_text(edit(text))
        if source.read_text() == text:
            raise RuntimeError(f"{message}: the edit changed nothing in {path}")
        git.run(
            "-c",
            "user.name=ab_trials",
            "-c",
            "user.email=ab_trials@localhost",
            "commit",
            "-q",
            "-am",
            f"throwaway: {message}",
            cwd=tree,
        )
        return git.run("rev-parse", "HEAD", cwd=tree)


def slowed_commit(base_sha: str, impl: str, slowdown: float, clock: str) -> str:
    """base_sha with the runner padding impl's cells by `slowdown`, measured on `clock`."""
    padding = PADDING.format(
        impl=impl, slowdown=slowdown, percent=round(slowdown * 100), clock=clock
    )
    return throwaway_commit(
        base_sha,
        "harness/execute/lifecycle.py",
        lambda text: text + padding,
        f"{impl} {slowdown:.0%} slower",
    )


def cpu_clock_commit(base_sha: str) -> str:
    """base_sha timing rounds in process CPU time: the time a neighbour's job takes the core
    away stops counting (an experiment for a CPU-time mode, not what the harness does)."""

    def edit(text):
        start, end = text.index("def _round("), text.index("def measure(")
        return (
            text[:start]
            + text[start:end].replace("time.perf_counter()", "time.process_time()")
            + text[end:]
        )

    return throwaway_commit(base_sha, "harness/measure/timing.py", edit, "rounds timed in CPU time")


def sides(results: Path) -> tuple:
    """A trial's stored runs -> (base rows, head rows): `ab` ran them A B A B, oldest first."""
    table = store.load(results)
    order = (
        table[["timestamp", "run_id"]]
        .drop_duplicates()
        .sort_values(["timestamp", "run_id"])["run_id"]
        .tolist()
    )
    return tuple(table[table["run_id"].isin(order[side::2])] for side in (0, 1))


def misses(result, target: str, inject: str) -> list:
    """The cells timed on both sides whose verdict is not the one expected."""
    result = result[result["ratio"].notna()]
    expected = (
        "same"
        if target == "self"
        else result["impl"].map(lambda impl: "slower" if impl == inject else "same")
    )
    return result.loc[
        result["verdict"] != expected,
        ["impl", "workload", "size", "phase", "ratio", "ci_low", "ci_high", "verdict"],
    ].to_dict("records")


def score(figures: dict, target: str, results: Path, inject: str) -> str:
    """Compare one trial's runs, fold the outcome into figures."""
    base_rows, head_rows = sides(results)
    f = figures.setdefault(
        target, {"trials": 0, "passed": 0, "cells": [], "misses": [], "injected_ratios": []}
    )
    f["trials"] += 1
    result = compare.compare(base_rows, head_rows)
    missed = misses(result, target, inject)
    f["passed"] += not missed
    f["misses"].append(missed)
    f["rate"] = f["passed"] / f["trials"]
    f["cells"].append(int(result["ratio"].notna().sum()))
    if target == "injected":
        f["injected_ratios"].append(float(result.loc[result["impl"] == inject, "ratio"].median()))
    text = "; ".join(
        f"{r['impl']} {r['workload']} {r['size']} {r['phase']} {r['ratio']:.3f} "
        f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] {r['verdict']}"
        for r in missed
    )
    return (
        f"{target} trial {f['trials']}: {'FAIL: ' + text if text else 'pass'} "
        f"({f['cells'][-1]} cells)"
    )


def summary(figures: dict) -> str:
    return "\n".join(
        f"{target}: {f['passed']}/{f['trials']} trials pass ({f['rate']:.0%}); "
        f"{min(f['cells'])}-{max(f['cells'])} cells a trial"
        for target in ("self", "injected")
        if (f := figures.get(target))
    )


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
