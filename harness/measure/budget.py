"""The time budget: predict a cell's time from smaller sizes of the same impl, before running.

Within one (impl, workload, phase) the cells run smallest first. The time of one call is fitted
as t = a * flops^b by least squares on log-log axes over the cells measured so far, anchored at
the largest size measured, with b at least 1, since small sizes are dominated by fixed
overheads, and at most MAX_SLOPE: time can grow faster than work when a size falls out of a
cache, but no op here costs the square of its work, so a steeper fit is noise (a first call
that paid for a thread pool waking up) and would skip every larger size for it. The first size
of a workload has nothing of its own to fit: it is predicted from the impl's best throughput
(FLOP/s) on the workloads it has run, the optimistic guess, so no cell is skipped on a hunch.
The second size, with one point to go on, is that point plus the extra work at the best
throughput: one point cannot tell fixed cost from work, and scaling all of it with the work
predicted a launch-bound GPU attention cell (1.2 ms, nearly all launches) 100x too slow at the
next size. A cell costs about CALLS_PER_CELL calls (correctness check, memory, MIN_ROUNDS timed
rounds), so it is over budget when that many predicted calls exceed the budget: it is recorded
with its prediction instead of being run.
"""

from __future__ import annotations

import math

CALLS_PER_CELL = 9  # check + memory (tracing ~2x slower) + warm-up + at least 5 timed rounds
MAX_SLOPE = 2.0


class Budget:
    def __init__(self, seconds: float):
        if not seconds > 0:
            raise ValueError(f"budget must be a positive number of seconds, got {seconds}")
        self.seconds = seconds
        self.history: dict = {}  # (workload, phase) -> [(flops, seconds per call)]

    def record(self, workload: str, phase: str, flops: int, t_call_s: float) -> None:
        if flops > 0 and t_call_s > 0:
            self.history.setdefault((workload, phase), []).append((flops, t_call_s))

    def predict(self, workload: str, phase: str, flops: int) -> float | None:
        """Seconds for one call at `flops`, or None with nothing to fit yet."""
        points = self.history.get((workload, phase), [])
        if flops <= 0:
            return None
        rates = [f / t for pts in self.history.values() for f, t in pts]
        if not points:
            return flops / max(rates) if rates else None
        if len(points) == 1:
            ((f_last, t_last),) = points
            return t_last + max(flops - f_last, 0) / max(rates)
        xs = [math.log(f) for f, _ in points]
        ys = [math.log(t) for _, t in points]
        x_mean, y_mean = sum(xs) / len(xs), sum(ys) / len(ys)
        spread = sum((x - x_mean) ** 2 for x in xs)
        slope = (
            1.0
            if spread == 0
            else sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys)) / spread
        )
        slope = min(max(slope, 1.0), MAX_SLOPE)
        x_last, y_last = xs[-1], ys[-1]
        return math.exp(y_last + slope * (math.log(flops) - x_last))

    def over(self, workload: str, phase: str, flops: int) -> float | None:
        """The predicted cell time when it exceeds the budget, else None."""
        t_call = self.predict(workload, phase, flops)
        if t_call is None or t_call * CALLS_PER_CELL <= self.seconds:
            return None
        return t_call * CALLS_PER_CELL
