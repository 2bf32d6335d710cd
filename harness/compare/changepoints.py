"""Steps in one cell's history: where its time moved to a new level and stayed there, by how
much, and how sure that is.

Method. The input is a cell's commits in order, each with the log times of its runs. A run
counts by its fastest round, as in stats.py (other work only adds time: on this 2-core VM the
fastest round of repeated runs spread by ~1.5% where the median round spread by ~10%). A run
whose fastest round is stats.DISTURBED (25%) or more slower than the fastest run of its own
commit, or than the fastest runs of both the MIN_SEGMENT - 1 commits before it and the ones
after it, was slowed by other work from start to end (one run in eight here) and is left out:
a real step is never a peak over both of its sides, and a blip that short is too short to be
a segment anyway. A commit left with no run is left out of the search, so a step next to it
is placed between the measured commits either side.

A commit's level is the median of its runs. The levels are cut into segments by PELT
(ruptures) with the L1 cost, the sum of each segment's absolute deviations from its median: a
lone outlier costs as much inside a segment as in a short segment of its own, so it never pays
for a cut, where the squared (L2) cost would cut around it. A segment is at least MIN_SEGMENT
commits: a step is seen once that many commits after it agree.

The penalty of a cut is PENALTY x sigma x log(n): sigma the noise of this history's own levels,
estimated robustly as the MAD of successive differences over sqrt(2) (a step moves one
difference and an outlier two, so neither inflates it), log(n) as in BIC for n commits. L1
costs scale with sigma, so the false-step rate is about the same at any noise level. PENALTY
= 3 from benchmarks/history_calibration.py (200 steady histories of one run a commit for each
length and noise model: Gaussian 1-5%, and 1.5-3% with one run in eight slowed 1.1-2x): from
10 commits on, no model reports a step in more than 3.5% of them (the 5% asked, with more than
one standard error of the estimate to spare), nor a Gaussian one in more than 2.5%; 3.5 would
bring all to 2.5% but find a 15% step in 3% noise 7 points less often. Below 10 commits the
noise estimate from so few differences is too rough (up to 6% at 6, 5% at 8 commits):
history.MIN_COMMITS. The L2 cost (its penalty in sigma^2) found steps as often, and reported
one in 27-41% of the disturbed histories that had none.

Each cut becomes a step: the first commit after it, the ratio of the median run after it to
the median run before it (within the neighbouring segments), and the two-sided Mann-Whitney U
p-value of the runs of the two segments (runs are the unit, as in stats.py): a description
of how far apart they lie, not a test, since PELT put the cut where they differ most (it reads
small; the false-step rate per cell is what the penalty's calibration bounds). A step whose
ratio is within MIN_EFFECT of 1 is dropped, the weakest first, and its segments merge.
"""

from __future__ import annotations

import numpy as np
import ruptures
from scipy import stats

from harness.compare.stats import DISTURBED

PENALTY = 3.0
MIN_SEGMENT = 3
MIN_EFFECT = 0.05
# Timings of one cell never agree to better than ~0.1%: a history of identical levels (an
# imported run copied) would otherwise give a zero penalty and a cut everywhere.
NOISE_FLOOR = 1e-3


def noise(levels) -> float:
    """Robust standard deviation of the levels' noise: the MAD of successive differences,
    scaled to a normal's sigma, over sqrt(2) (a difference carries two levels' noise)."""
    diffs = np.diff(np.asarray(levels, dtype=float))
    return max(float(stats.median_abs_deviation(diffs, scale="normal")) / np.sqrt(2), NOISE_FLOOR)


def cuts(levels, penalty: float = PENALTY, min_segment: int = MIN_SEGMENT) -> list:
    """Indices i where a new segment starts at levels[i] (PELT, L1 cost, the penalty above)."""
    levels = np.asarray(levels, dtype=float)
    if len(levels) < 2 * min_segment:
        return []
    pen = penalty * noise(levels) * np.log(len(levels))
    found = ruptures.Pelt(model="l1", min_size=min_segment, jump=1).fit(levels[:, None])
    return found.predict(pen=pen)[:-1]  # ruptures ends the list with the signal's length


def undisturbed(runs: list, neighbours: int = MIN_SEGMENT - 1) -> list:
    """runs: per commit, the log fastest rounds of its runs -> the same without the runs that
    other work slowed from start to end (see above; a commit may be left with none)."""
    fastest = np.array([np.min(r) for r in runs])
    kept = []
    for i, r in enumerate(runs):
        before, after = fastest[max(i - neighbours, 0) : i], fastest[i + 1 : i + 1 + neighbours]
        # the first and last commits have one side: a peak over it (a step that close to an
        # end has too few commits on its far side to be found anyway)
        sides = max((side.min() for side in (before, after) if len(side)), default=np.inf)
        kept.append(r[r < np.log(DISTURBED) + min(fastest[i], sides)])
    return kept


def _step(runs: list, start: int, cut: int, end: int) -> dict:
    before, after = np.concatenate(runs[start:cut]), np.concatenate(runs[cut:end])
    return {
        "ratio": float(np.exp(np.median(after) - np.median(before))),
        "p": float(stats.mannwhitneyu(after, before).pvalue),
        "before_s": float(np.exp(np.median(before))),
        "after_s": float(np.exp(np.median(after))),
    }


class TooShort(ValueError):
    """Fewer commits kept a run than the penalty's calibration holds for."""

    def __init__(self, kept: int, needed: int):
        super().__init__(f"{kept} commits kept an undisturbed run, expected {needed} or more")
        self.kept = kept


def steps(
    runs: list,
    penalty: float = PENALTY,
    min_effect: float = MIN_EFFECT,
    min_segment: int = MIN_SEGMENT,
    min_commits: int = 0,
) -> list:
    """runs: per commit in order, the log fastest rounds of its runs -> the steps, in order,
    each {index, last_before, ratio, p, before_s, after_s}: the indices of the first commit
    after it and of the last before it that kept a run (commits between them, whose every
    run was disturbed, may be on either side). TooShort when fewer than min_commits commits
    keep a run: the noise estimate is of those (see above)."""
    runs = [np.asarray(r, dtype=float) for r in runs]
    if any(len(r) == 0 for r in runs):
        raise ValueError("steps: every commit needs at least one run's time, got one with none")
    kept = undisturbed(runs, min_segment - 1)
    present = [i for i, r in enumerate(kept) if len(r)]
    kept = [kept[i] for i in present]
    if len(kept) < min_commits:
        raise TooShort(len(kept), min_commits)
    found = cuts([np.median(r) for r in kept], penalty, min_segment)
    while True:
        bounds = [0, *found, len(kept)]
        result = [
            {
                "index": present[bounds[i + 1]],
                "last_before": present[bounds[i + 1] - 1],
                **_step(kept, *bounds[i : i + 3]),
            }
            for i in range(len(found))
        ]
        weak = [i for i, s in enumerate(result) if abs(np.log(s["ratio"])) < np.log1p(min_effect)]
        if not weak:
            return result
        found.pop(min(weak, key=lambda i: abs(np.log(result[i]["ratio"]))))
