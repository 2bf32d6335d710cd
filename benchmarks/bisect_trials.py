"""Measures how often `bisect` names the commit that made a grid slower (not a pytest module).

    python -m benchmarks.bisect_trials --trials 10
    python -m benchmarks.bisect_trials --trials 10 --first 4 --ref SHA   # a stopped series

Each trial makes --commits throwaway commits on top of --ref (benchmarks/ab_commits.py: only
git's objects keep them, no branch): each adds a comment line to README.md, and one of them,
at a position drawn at random (seeded), also pads --inject's cells by --slowdown, as the
slowed commit of benchmarks/ab_trials.py does. Then `python -m harness bisect REF LAST`, with
the command's own defaults (12 runs a side a step, pooled up to 48 when inconclusive) and
this grid, runs in this process, its output in the trial's bisect.log.

A trial passes when the bisect names the padded commit in at most ceil(log2 n) + 2 steps (a
step is a commit judged, its repeats with more runs included in it); it names a false
culprit when it names any other commit; otherwise it gave up (GOOD not found faster, or a
step inconclusive at the limit). The default grid is ab_trials' (xor fwd/bwd/step of numpy
and pure_python): the three pure_python cells must not be taken for the regression.

The figures go to reports/bisect_trials.json after every trial and to the terminal; each
trial's runs and state (bisect.json: every step's ratios, intervals and q-values) are kept
under --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import signal
import sys
import time
from pathlib import Path

from benchmarks.ab_commits import slowed_commit, throwaway_commit
from harness import cli
from harness.commands.ab import QUICK_TIME_PER_CELL
from harness.compare import bisect
from harness.results import git
from harness.results.machine import ROOT


def chain(base: str, commits: int, culprit: int, impl: str, slowdown: float) -> list:
    """`commits` throwaway commits on base, oldest first; number `culprit` (from 1) pads
    impl's cells, and every one after it keeps the padding."""
    shas, sha = [], base
    for number in range(1, commits + 1):
        if number == culprit:
            sha = slowed_commit(sha, impl, slowdown, "perf_counter")
        else:
            line = f"\n<!-- bisect trial: commit {number} -->\n"
            sha = throwaway_commit(
                sha, "README.md", lambda text, add=line: text + add, f"trial commit {number}"
            )
        shas.append(sha)
    return shas


def score(state: dict, culprit_sha: str, limit: int) -> dict:
    outcome = state["outcome"] or {"status": "stopped"}
    named = outcome.get("first_bad")
    steps = len({(s["kind"], s["index"]) for s in state["steps"]})
    return {
        "status": outcome["status"],
        "named": named,
        "passed": named == culprit_sha and steps <= limit,
        "false_culprit": named is not None and named != culprit_sha,
        "steps": steps,
        "attempts": len(state["steps"]),
        "runs_a_side": [s["repeats"] for s in state["steps"]],
        "calls": [
            f"{'check' if s['index'] is None else s['index'] + 1}:{s['call']}"
            for s in state["steps"]
        ],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--commits", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1, help="draws the culprits' positions")
    parser.add_argument("--impl", default="numpy,pure_python", help="the impls of the grid")
    parser.add_argument("--workload", default="xor", help="the workloads of the grid")
    parser.add_argument("--phase", default="fwd,bwd,step", help="the phases of the grid")
    parser.add_argument("--time-per-cell", type=float, default=QUICK_TIME_PER_CELL)
    parser.add_argument("--inject", default="numpy", help="the impl made slower")
    parser.add_argument("--slowdown", type=float, default=0.15)
    parser.add_argument("--ref", default="HEAD", help="GOOD: the commit the trials build on")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bisect_trials.json"))
    parser.add_argument("--keep", default=str(ROOT / "results" / "bisect_trials"))
    parser.add_argument(
        "--first",
        type=int,
        default=0,
        metavar="K",
        help="begin at trial K (from 0), the figures of those before it kept from --out: a "
        "stopped series goes on with the same culprits",
    )
    parser.add_argument("--nice", type=int, default=-10, help="as for ab_trials")
    parser.add_argument("--blas-threads", default="1", help="as for ab_trials")
    args, bisect_options = parser.parse_known_args(argv)  # the rest go to `bisect` as given
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up worktrees on the way out
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = args.blas_threads  # the runs inherit the environment
    with contextlib.suppress(PermissionError):  # root only; the runs inherit the priority
        os.nice(args.nice - os.nice(0))
    good, out, keep = git.resolve(args.ref), Path(args.out), Path(args.keep)
    limit = math.ceil(math.log2(args.commits)) + 2
    grid = [f"--impl={args.impl}", f"--workload={args.workload}", f"--phase={args.phase}"]
    grid += [f"--time-per-cell={args.time_per_cell}", "--no-build", *bisect_options]
    figures = {"ref": good, "grid": grid, "nice": os.nice(0), "limit_steps": limit}
    figures.update(commits=args.commits, inject=args.inject, slowdown=args.slowdown, trials=[])
    if args.first:
        figures["trials"] = json.loads(out.read_text())["trials"][: args.first]
    draw = random.Random(args.seed)
    culprits = [draw.randint(1, args.commits) for _ in range(args.trials)]
    for number in range(args.first, args.trials):
        started, culprit = time.time(), culprits[number]
        shas = chain(good, args.commits, culprit, args.inject, args.slowdown)
        results = keep / f"trial-{number:02d}-{shas[-1][:7]}"  # a series run again: new shas
        results.mkdir(parents=True, exist_ok=True)
        with open(results / "bisect.log", "w", buffering=1) as log, contextlib.redirect_stdout(log):
            code = cli.main(["bisect", good, shas[-1], "--results", str(results), *grid])
        if code in (130, 143):  # stopped (Ctrl-C, SIGTERM): so are the trials
            return code
        stored = results / bisect.STATE
        state = bisect.load(stored) if stored.is_file() else {"outcome": None, "steps": []}
        trial = {"culprit": culprit, "culprit_sha": shas[culprit - 1], "last": shas[-1]}
        trial.update(score(state, shas[culprit - 1], limit))
        trial.update(minutes=round((time.time() - started) / 60, 1), load=os.getloadavg()[0])
        figures["trials"].append(trial)
        trials = figures["trials"]
        figures["passed"] = sum(t["passed"] for t in trials)
        figures["false_culprits"] = sum(t["false_culprit"] for t in trials)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=1))  # after every trial
        print(
            f"trial {number + 1}: culprit {culprit}/{args.commits}, {trial['status']}, "
            f"{'pass' if trial['passed'] else 'FAIL'} in {trial['steps']} steps "
            f"({trial['attempts']} A/Bs: {' '.join(trial['calls'])}), {trial['minutes']} min",
            flush=True,
        )
    print(
        f"{figures['passed']}/{len(figures['trials'])} trials named the culprit in at most "
        f"{limit} steps; {figures['false_culprits']} false culprits\nfigures: {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
