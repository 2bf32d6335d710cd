"""The statistics of one cell: HEAD / BASE, its confidence interval, and a side's time.

Method. A cell is (impl, workload, size, phase); each side (BASE, HEAD) has one or more runs
of it, and each run stored its raw per-round times (`samples_s`). The ratio is HEAD / BASE
(above 1: HEAD is slower).

Several runs a side: the run is the unit, because rounds of one run share that run's luck
(its moment's load, clock and cache state) and are not independent of one another. A run is
summed up by its fastest round (each round already averages many calls): other work on the
machine only ever adds time, so the fastest round is the least disturbed reading, where the
median still moves with a burst that lasts a third of the cell. A run whose fastest round is
still 25% slower than its side's fastest run was disturbed from start to end (on a shared
2-core VM one run in eight by 2x, five in eight in a busy minute) and is left out. Between
the remaining runs the comparison is by ranks: the ratio is the Hodges-Lehmann estimate (the
median of all HEAD/BASE ratios of run minima) and its interval the Mann-Whitney one around
it (exact distribution for small samples), so a run that is off by a little less still
counts as one slow run, not by how slow. Ranks need 4 runs a side for a 95% interval; with 2
or 3 a side it is Welch's t-interval on the logs of the run minima (Student's, with the
spread of the other side, when a side has a single run). Each cell's p-value (that HEAD and
BASE time alike) comes from the same test as its interval: the Mann-Whitney U test, or the
t-test. `ab` makes 12 runs a side, alternating A B A B ..., so drift over the minutes lands on
both sides alike.

One run a side (or one left on each): the noise within the run is all there is to see; the
interval is a percentile bootstrap of the ratio of the two median rounds, with a seeded
generator, so the same results always give the same verdict. It cannot see run-to-run drift:
the threshold guards against it, and `ab` makes several runs for this reason. Its p-value is a
z-test of the log ratio against the bootstrap's standard error of it: a count of resamples
past 1 cannot go below 1 / RESAMPLES, which a grid of a hundred cells needs to (overall.py).

Instruction counts (`run --instructions`, harness/measure/count.py) are compared as what they
are: near-exact. A cell's count on a side is the median over its runs, the ratio HEAD / BASE,
and the interval the range of ratios between any run of one side and any of the other (runs
of one commit agree to the instruction). What a count must move by to count is the verdict's
business (harness/compare/verdicts.py).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000
# A run whose fastest round is 25% or more slower than its side's fastest run was slowed down
# by other work for its whole length (on a shared 2-core VM one run in eight by 2x, and in a
# busy minute five in eight): it is left out, since one such run among eight moves a rank
# interval past 1. Measured from the fastest, not the median: the median is a disturbed run
# when most are.
DISTURBED = 1.25


def _undisturbed(runs: list) -> list:
    """The runs other work did not slow down from start to end: those whose fastest round is
    within DISTURBED of the side's fastest run (normal runs lie within ~5% of one another)."""
    fastest = min(np.min(samples) for samples in runs)
    return [samples for samples in runs if np.min(samples) <= fastest * DISTURBED]


def side_time(runs: list) -> float:
    """A side's time for one cell: the median over its undisturbed runs of each run's fastest
    round (one run: its median round, as the one-run interval uses)."""
    runs = _undisturbed(runs)
    if len(runs) == 1:
        return float(np.median(runs[0]))
    return float(np.median([np.min(samples) for samples in runs]))


def _t_interval(mean: float, se: float, df: float, confidence: float) -> tuple:
    """exp of mean -/+ t quantile x standard error, and the t-test's two-sided p-value of a
    mean of 0: (ratio, low, high, p)."""
    if se == 0:
        return float(np.exp(mean)), float(np.exp(mean)), float(np.exp(mean)), float(mean == 0)
    half = stats.t.ppf(1 - (1 - confidence) / 2, df) * se
    p = 2 * stats.t.sf(abs(mean) / se, df)
    return float(np.exp(mean)), float(np.exp(mean - half)), float(np.exp(mean + half)), float(p)


def _welch(log_base: np.ndarray, log_head: np.ndarray, confidence: float) -> tuple:
    shift = log_head.mean() - log_base.mean()
    if min(len(log_base), len(log_head)) == 1:  # one run on a side: assume equal spreads
        df = len(log_base) + len(log_head) - 2
        pooled = (
            np.sum((log_base - log_base.mean()) ** 2) + np.sum((log_head - log_head.mean()) ** 2)
        ) / df
        se = np.sqrt(pooled * (1 / len(log_base) + 1 / len(log_head)))
        return _t_interval(shift, se, df, confidence)
    var_base, var_head = (x.var(ddof=1) / len(x) for x in (log_base, log_head))
    se = np.sqrt(var_base + var_head)
    df = (
        (var_base + var_head) ** 2
        / (var_base**2 / (len(log_base) - 1) + var_head**2 / (len(log_head) - 1))
        if se
        else 1.0
    )
    return _t_interval(shift, se, df, confidence)


def _u_cut(m: int, n: int, confidence: float) -> int:
    """The number k of smallest (and of largest) of the m * n pairwise differences that the
    Mann-Whitney interval leaves out: the largest k with P(U < k) <= (1 - confidence) / 2
    when both samples come from one distribution. 0: no interval at this confidence."""
    tail = (1 - confidence) / 2
    if m * n > 2500:  # normal approximation, with the continuity correction
        half = stats.norm.ppf(1 - tail) * np.sqrt(m * n * (m + n + 1) / 12)
        return max(int(np.floor(m * n / 2 - half + 0.5)), 0)
    # counts[j][u]: arrangements of i BASE values and j HEAD values with U = u, for i = 0..m
    counts = [np.ones(1) for _ in range(n + 1)]
    for i in range(1, m + 1):
        row = [np.ones(1)]
        for j in range(1, n + 1):
            grown = np.zeros(i * j + 1)
            grown[j : j + len(counts[j])] += counts[j]  # the largest value is BASE's: > all j
            grown[: len(row[j - 1])] += row[j - 1]  # it is HEAD's: it adds no pair to U
            row.append(grown)
        counts = row
    cdf = np.cumsum(counts[n]) / counts[n].sum()
    return int(np.searchsorted(cdf, tail, side="right"))


def _ranks(log_base: np.ndarray, log_head: np.ndarray, confidence: float) -> tuple:
    """Hodges-Lehmann shift of log HEAD over log BASE, its Mann-Whitney interval and the U
    test's p-value (exact where _u_cut's interval is, as it switches)."""
    diffs = np.sort((log_head[None, :] - log_base[:, None]).ravel())
    k = _u_cut(len(log_base), len(log_head), confidence)
    method = "exact" if len(diffs) <= 2500 else "asymptotic"
    return (
        float(np.exp(np.median(diffs))),
        float(np.exp(diffs[k - 1])),
        float(np.exp(diffs[len(diffs) - k])),
        float(stats.mannwhitneyu(log_head, log_base, method=method).pvalue),
    )


def _between_runs(base_runs: list, head_runs: list, confidence: float) -> tuple:
    log_base, log_head = (np.log([np.min(r) for r in runs]) for runs in (base_runs, head_runs))
    if _u_cut(len(log_base), len(log_head), confidence) >= 1:
        return _ranks(log_base, log_head, confidence)
    return _welch(log_base, log_head, confidence)


def _within_run(
    base: np.ndarray, head: np.ndarray, confidence: float, resamples: int, seed: int
) -> tuple:
    """One run a side: percentile bootstrap of the ratio of median rounds; p from a z-test of
    the log ratio over the resamples' standard deviation of it."""
    rng = np.random.default_rng(seed)
    # one median round per resample: rows of `resamples` draws of the run's rounds
    base_medians, head_medians = (
        np.median(x[rng.integers(0, len(x), (resamples, len(x)))], axis=1) for x in (base, head)
    )
    tail = (1 - confidence) / 2
    ratios = head_medians / base_medians
    low, high = np.quantile(ratios, [tail, 1 - tail])
    ratio = float(np.median(head) / np.median(base))
    se = np.log(ratios).std(ddof=1)
    p = 2 * stats.norm.sf(abs(np.log(ratio)) / se) if se > 0 else float(ratio == 1)
    return ratio, float(low), float(high), float(p)


def ratio_test(
    base_runs: list,
    head_runs: list,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple:
    """-> (ratio, ci_low, ci_high, p) of HEAD / BASE for one cell, p the two-sided p-value of
    a ratio of 1. A side is a list of runs, each a sequence of per-round seconds."""
    base_runs, head_runs = (
        _undisturbed([np.asarray(r, dtype=float) for r in runs]) for runs in (base_runs, head_runs)
    )
    if len(base_runs) == 1 and len(head_runs) == 1:
        return _within_run(base_runs[0], head_runs[0], confidence, resamples, seed)
    return _between_runs(base_runs, head_runs, confidence)


def count_ratio(base_counts, head_counts) -> tuple:
    """-> (ratio, low, high) of HEAD / BASE instruction counts: the ratio of the medians and
    the range of the ratios between any run of one side and any run of the other."""
    base_counts, head_counts = (np.asarray(c, dtype=float) for c in (base_counts, head_counts))
    return (
        float(np.median(head_counts) / np.median(base_counts)),
        float(head_counts.min() / base_counts.max()),
        float(head_counts.max() / base_counts.min()),
    )
