"""One timing protocol for the CPU: calibrate a loop count, then fill a time budget.

As pytest-benchmark does: a round runs `loops` calls back to back, with loops grown until a
round is long enough for the timer to be trusted; rounds then repeat until the budget is
spent (at least `min_rounds`). `sync` is called inside the timed region, so asynchronous
device work is counted where it is done. Each sample is one round's time per call.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

MIN_ROUND_S = 2e-3  # a round this long makes perf_counter's ~100 ns resolution negligible
# Warm-up before calibrating. Threads that slept (OpenMP teams, BLAS pools, the other vCPU
# of a VM) wake slowly: the threaded C GEMM at 256^3 took 8 ms a call for its first ~50 ms
# of calls on a 2-core VM, then 0.2 ms. WARMUP_S of calls (at least one) go first.
WARMUP_S = 0.1


@dataclass(frozen=True)
class Stats:
    samples_s: tuple  # seconds per call, one per round
    loops: int

    @property
    def rounds(self) -> int:
        return len(self.samples_s)

    @property
    def min(self) -> float:
        return min(self.samples_s)

    @property
    def median(self) -> float:
        return statistics.median(self.samples_s)

    @property
    def iqr(self) -> float:
        if self.rounds < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples_s, n=4)
        return q3 - q1

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_s)

    @property
    def stddev(self) -> float:
        return statistics.stdev(self.samples_s) if self.rounds > 1 else 0.0

    def as_dict(self) -> dict:
        return {
            "rounds": self.rounds,
            "loops": self.loops,
            "t_min_s": self.min,
            "t_median_s": self.median,
            "t_iqr_s": self.iqr,
            "t_mean_s": self.mean,
            "t_stddev_s": self.stddev,
            "samples_s": list(self.samples_s),
        }


def _round(fn, sync, loops) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    sync()
    return time.perf_counter() - start


def calibrate(round_s) -> tuple:
    """(loops, seconds of a round of that many calls): loops grown from 1 until a round, timed
    by round_s(loops), lasts MIN_ROUND_S. Used by every CPU timer (here and on MPI ranks)."""
    loops = 1
    elapsed = round_s(loops)
    while elapsed < MIN_ROUND_S:
        loops *= 10 if elapsed < MIN_ROUND_S / 10 else 2
        elapsed = round_s(loops)
    return loops, elapsed


def measure(
    fn, sync=lambda: None, time_per_cell_s: float = 0.5, min_rounds: int = 5, max_rounds: int = 1000
) -> Stats:
    """Time fn: warm up for WARMUP_S, calibrate loops, then fill time_per_cell_s with rounds."""
    warm_until = time.perf_counter() + WARMUP_S
    while True:
        _round(fn, sync, 1)
        if time.perf_counter() >= warm_until:
            break
    loops, elapsed = calibrate(lambda loops: _round(fn, sync, loops))
    samples = [elapsed / loops]
    deadline = time.perf_counter() + time_per_cell_s
    while len(samples) < max_rounds and (
        len(samples) < min_rounds or time.perf_counter() < deadline
    ):
        samples.append(_round(fn, sync, loops) / loops)
    return Stats(tuple(samples), loops)
