"""How often `history` finds a 15% step where it is, and nothing where there is none.

    python -m benchmarks.history_targets                    # 20 trials of each, ~1 minute
    python -m benchmarks.history_targets --results results  # this machine's noise from its runs

Each trial is a synthetic history of 30 commits, one run each (benchmarks/history_calibration.py
makes them), given to harness/compare/changepoints.py with its defaults:
1. a 15% step after a commit k drawn from the ones a segment allows: the trial passes when
   exactly one step is reported, at k;
2. no step: the trial passes when no step is reported.
Under several noise models: Gaussian noise on the log time at 2%, 3% and 5%, and this
machine's as measured from its stored runs (--results: of every commit with 5 or more runs
of a cell, the spread of their fastest rounds: sigma from the MAD, and the share of runs 10%
or more slower than their commit's median run, drawn slowed 1.1-2x). Without stored repeats,
the measured model is the one found on a 2-core VM: 1.5%, one run in eight slowed.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from benchmarks.history_calibration import DISTURBED, history
from harness.compare import changepoints
from harness.results import store

COMMITS, RATIO = 30, 1.15
VM = (0.015, DISTURBED)  # measured on a 2-core VM by repeated `run --quick` (see calibration)


def measured_noise(table) -> tuple | None:
    """(sigma, share slowed) of the fastest rounds of repeated runs of one commit's cells;
    None when no cell of a commit has 5 runs."""
    ok = table[(table["status"] == "ok") & (table["t_min_s"] > 0)]
    logs = np.log(ok["t_min_s"])
    groups = logs.groupby([ok[k] for k in ["commit", "impl", "workload", "size", "phase"]])
    deviations = np.concatenate(
        [(g - g.median()).to_numpy() for _, g in groups if len(g) >= 5] or [np.empty(0)]
    )
    if not len(deviations):
        return None
    sigma = float(stats.median_abs_deviation(deviations, scale="normal"))
    return sigma, float(np.mean(deviations >= np.log(1.1)))


def trial(rng, sigma: float, share: float, runs: int, step: bool) -> bool:
    """One history; passes when it reports no step, or with a step exactly one, at k."""
    k = int(rng.integers(changepoints.MIN_SEGMENT, COMMITS - changepoints.MIN_SEGMENT + 1))
    found = changepoints.steps(
        history(rng, COMMITS, sigma, k if step else None, RATIO, share, runs)
    )
    if not step:
        return not found
    # at k: the first commit after it, or past commits left with no undisturbed run
    return len(found) == 1 and found[0]["last_before"] < k <= found[0]["index"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--results", default=None, metavar="DIR", help="measure noise here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    measured = measured_noise(store.load(args.results)) if args.results else None
    models = {f"gaussian {s:.0%}": (s, 0.0, 1) for s in (0.02, 0.03, 0.05)}
    sigma, share = measured or VM
    where = "measured here" if measured else "a 2-core VM's"
    for runs in (1, 3):
        models[f"{where}: {sigma:.1%}, {share:.0%} slowed, {runs} a commit"] = (sigma, share, runs)
    rng = np.random.default_rng(args.seed)
    print(f"{args.trials} trials each, {COMMITS} commits (one run each but where said), a 15% step")
    print(f"{'noise':<44} {'step found at its commit':>24} {'no step where none':>19}")
    for name, model in models.items():
        found = sum(trial(rng, *model, True) for _ in range(args.trials))
        quiet = sum(trial(rng, *model, False) for _ in range(args.trials))
        print(f"{name:<44} {found:>21}/{args.trials} {quiet:>16}/{args.trials}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
