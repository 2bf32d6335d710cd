"""Contenders timed in alternating rounds, A B C A B C ..., so drift hits them alike.

Whatever changes on a shared machine while a benchmark runs (load from other work, the clock,
heat) lands on every contender's rounds alike, not on whichever ran while it lasted. Each
round is one timing.measure (harness/measure/timing.py); the caller reduces the rounds: pooled
into one Stats (c_targets) or the median of their medians (foundation_figures).
"""

from __future__ import annotations

import time

from harness.measure import timing
from harness.measure.timing import Stats


def measure(contenders: dict, rounds: int, round_s: float, settle_s: float = 0.0, **limits) -> dict:
    """name -> the Stats of each of its rounds, each one timing.measure of round_s seconds
    (`limits`: its min_rounds, max_rounds).

    Each thread pool busy-waits after its last task before it sleeps: OpenBLAS's workers for
    up to ~0.1 s, OpenMP's (ours, PyTorch's) for a few ms. A pool still spinning takes a core
    from the next contender, so each one starts after settle_s of quiet."""
    stats = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            time.sleep(settle_s)
            stats[name].append(timing.measure(fn, time_per_cell_s=round_s, **limits))
    return stats


def pooled(stats: list) -> Stats:
    """One contender's rounds as one Stats: every round's samples, the first round's loops."""
    return Stats(tuple(t for s in stats for t in s.samples_s), loops=stats[0].loops)
