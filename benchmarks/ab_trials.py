"""Measures how often `ab` gets its verdicts right, over many trials (not a pytest module).

    python -m benchmarks.ab_trials --trials 40

Two targets, each over `--trials` trials of `ab` with `--repeats` interleaved runs a side:
1. a commit against itself: a trial passes when every cell says "same";
2. the commit against a throwaway commit that makes one impl's cells 15% slower: a trial
   passes when exactly that impl's cells say "slower" and every other cell "same".
Only cells timed on both sides count (a cell over budget on one side has no timing verdict).

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ab, compare
from harness.machine import ROOT

PADDING = '''

# ---- injected by benchmarks/ab_trials.py: {impl}'s cells {percent}% slower ----
_prepare_unpadded = prepare


def prepare(impl, cell, budget, seed=SEED):
    row, fn = _prepare_unpadded(impl, cell, budget, seed)
    if fn is None or cell.impl != {impl!r}:
        return row, fn

    def padded():
        start = time.perf_counter()
        out = fn()
        end = start + (time.perf_counter() - start) * (1 + {slowdown!r})
        while time.perf_counter() < end:
            pass
        return out
    return row, padded
'''


def slowed_commit(base_sha: str, impl: str, slowdown: float) -> str:
    """A commit on top of base_sha whose runner pads impl's cells; only git's objects keep it."""
    with tempfile.TemporaryDirectory(prefix="nnladder-trials-") as tmp, \
            ab.worktree(base_sha, Path(tmp)) as tree:
        runner = tree / "harness" / "runner.py"
        runner.write_text(runner.read_text() + PADDING.format(
            impl=impl, slowdown=slowdown, percent=round(slowdown * 100)))
        git = ["git", "-c", "user.name=ab_trials", "-c", "user.email=ab_trials@localhost"]
        subprocess.run([*git, "commit", "-q", "-am", f"throwaway: {impl} {slowdown:.0%} slower"],
                       cwd=tree, check=True, capture_output=True)
        return ab._git("rev-parse", "HEAD", cwd=tree)


def trial(base: str, head: str, run_args: list, repeats: int, results: Path) -> tuple:
    """One `ab` -> (paired comparison, unpaired comparison) of the same runs."""
    base_rows, head_rows = ab.ab(base, head, run_args, repeats, results, log=lambda _: None,
                                 build_ext=False)
    return (compare.compare(base_rows, head_rows, paired=True),
            compare.compare(base_rows, head_rows, paired=False))


def misses(result, target: str, inject: str) -> list:
    """The cells timed on both sides whose verdict is not the one expected."""
    result = result[result["ratio"].notna()]
    expected = "same" if target == "self" else \
        result["impl"].map(lambda impl: "slower" if impl == inject else "same")
    return result.loc[result["verdict"] != expected,
                      ["impl", "workload", "size", "phase", "ratio", "ci_low",
                       "verdict"]].to_dict("records")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3, help="runs a side in each trial")
    parser.add_argument("--impl", default="numpy,pure_python", help="the impls of the grid")
    parser.add_argument("--workload", default="xor,matmul", help="the workloads of the grid")
    parser.add_argument("--phase", default="fwd", help="the phases of the grid")
    parser.add_argument("--inject", default="numpy", help="the impl made slower")
    parser.add_argument("--slowdown", type=float, default=0.15)
    parser.add_argument("--ref", default="HEAD", help="the commit tested")
    parser.add_argument("--out", default=str(ROOT / "reports" / "ab_trials.json"))
    parser.add_argument("--keep", default=str(ROOT / "results" / "ab_trials"),
                        help="where each trial's runs are stored (outside the report's reach)")
    parser.add_argument("--blas-threads", default="1",
                        help="BLAS threads of the runs (default 1: on a shared 2-core machine "
                             "a 2-thread BLAS spinning against other jobs turns a 50 us "
                             "product into 50 ms, a pathology of the machine, not the code)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up worktrees on the way out
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = args.blas_threads  # the runs inherit the environment
    base = ab.resolve(args.ref)
    run_args = ["--quick", f"--impl={args.impl}", f"--workload={args.workload}",
                f"--phase={args.phase}"]
    slowed = slowed_commit(base, args.inject, args.slowdown)
    figures = {"ref": base, "grid": " ".join(run_args), "repeats": args.repeats,
               "blas_threads": args.blas_threads,
               "trials": args.trials, "inject": args.inject, "slowdown": args.slowdown}
    targets = {"self": base, "injected": slowed}
    for target in targets:
        figures[target] = {"trials": 0, "passed": 0, "passed_unpaired": 0, "cells": [],
                           "minutes": 0.0, "misses": [], "misses_unpaired": []}
    # the two targets take turns, so the load of the machine over the hour hits both alike
    for number in range(args.trials):
        for target, head in targets.items():
            started = time.time()
            runs = Path(args.keep) / f"{target}-{number:03d}"  # kept: re-analysable later
            paired, unpaired = trial(base, head, run_args, args.repeats, runs)
            f = figures[target]
            f["trials"] += 1
            f["cells"].append(int(paired["ratio"].notna().sum()))
            f["minutes"] += (time.time() - started) / 60
            for method, result in (("", paired), ("_unpaired", unpaired)):
                missed = misses(result, target, args.inject)
                f[f"passed{method}"] += not missed
                f[f"misses{method}"].append(missed)
                f[f"rate{method}"] = f[f"passed{method}"] / f["trials"]
            if target == "injected":
                f.setdefault("injected_ratios", []).append(float(
                    paired.loc[paired["impl"] == args.inject, "ratio"].median()))
            text = "; ".join(f"{r['impl']} {r['workload']} {r['size']} {r['phase']} "
                             f"{r['ratio']:.3f} {r['verdict']}" for r in f["misses"][-1])
            print(f"{target} trial {number + 1}/{args.trials}: "
                  f"{'FAIL: ' + text if text else 'pass'} (unpaired: "
                  f"{'FAIL' if f['misses_unpaired'][-1] else 'pass'}; {f['cells'][-1]} cells)",
                  flush=True)
            # written after every trial: a run cut short still leaves its figures
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(figures, indent=1, default=str))
    for target in targets:
        f = figures[target]
        print(f"{target}: paired {f['passed']}/{f['trials']} trials pass ({f['rate']:.0%}), "
              f"unpaired {f['passed_unpaired']}/{f['trials']} ({f['rate_unpaired']:.0%}); "
              f"{min(f['cells'])}-{max(f['cells'])} cells a trial, {f['minutes']:.1f} min")
    print(f"figures: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
