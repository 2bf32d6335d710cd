"""How far to trust a cell's times: pyperf's checks on its rounds, and the machine around them.

A timed cell that breaks a rule is `unstable` (its status stays ok) and `unstable_reason`
names each rule broken with its numbers ("spread 23% >= 10% ...; steal 7% ..."); a cell that
holds them is `unstable` False. Counted cells have no rounds and are not judged. The rules,
after pyperf's `check` (pyperf/_cli.py, format_checks) where it has one:

- spread: the rounds' stddev / mean is SPREAD (10%, pyperf's) or more;
- outliers: the fastest or the slowest round is OUTLIER (50%, pyperf's) or more off the
  median (pyperf reads against the mean, which the slow round itself moves);
- short rounds: a round (`loops` calls back to back) shorter than its timer can be trusted
  with, SHORT_ROUND_S: on the CPU 1 ms, pyperf's floor and half of timing.MIN_ROUND_S
  (calibration leaves rounds of 2 to 4 ms, so only a round that a slowed calibration left
  short falls under 1 ms, not one that jitter put under 2); CUDA events resolve ~0.5 us, so
  a GPU call under 10 us is timed to 5% or worse;
- too few: fewer rounds than MIN_ROUNDS (5, the protocol's least), or, when the spread
  passed, than pin the mean to +-HALF_WIDTH (5%, half of compare's 10% threshold) at 95%:
  n = (1.96 * stddev / (HALF_WIDTH * mean))^2, pyperf's sample-size formula (it asks 1%, of
  processes' means);
- steal: the hypervisor took more than STEAL (5%) of the machine's CPU time while the cell
  was measured (/proc/stat's ticks: a 0.1 s window on 2 cores has 20, so one tick is not
  past it);
- run queue: other work held half the cores or more (machine_state.busy, run's warning's rule)
  both when the measurement began and when it ended (a passing process is not load); the
  threads of the cell's own processes (its MPI ranks too) are not other work.

The Window's readings span the whole measurement: warm-up, calibration and timed rounds.
"""

from __future__ import annotations

import math
import os
import statistics

from harness.measure.timing import MIN_ROUND_S
from harness.results import machine_state

SPREAD = 0.10
OUTLIER = 0.50
SHORT_ROUND_S = {"cpu": MIN_ROUND_S / 2, "cuda": 10e-6}
MIN_ROUNDS = 5
HALF_WIDTH = 0.05
Z_95 = 1.96
STEAL = 0.05


class Window:
    """The machine around one measurement, read when made and at close() -> steal_frac (the
    share of every CPU's ticks stolen meanwhile) and others_running (threads of other work,
    the lower of the two reads); None where /proc cannot tell. `pids` are the processes that
    measure (default this one); `read(path)` and `own(pids)` are machine_state's, or a test's."""

    def __init__(self, pids=(), read=machine_state.read_text, own=machine_state.running_threads):
        self.pids, self.read, self.own = tuple(pids) or (os.getpid(),), read, own
        self.opened = self._now()

    def _now(self) -> tuple:
        return machine_state.cpu_ticks(self.read), machine_state.others_now(
            self.pids, self.read, self.own
        )

    def close(self) -> dict:
        (ticks_0, others_0), (ticks_1, others_1) = self.opened, self._now()
        spent = ticks_0 and ticks_1 and ticks_1[1] - ticks_0[1]
        return {
            "steal_frac": (ticks_1[0] - ticks_0[0]) / spent if spent else None,
            "others_running": None if None in (others_0, others_1) else min(others_0, others_1),
        }


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def judge(row: dict) -> dict:
    """{unstable, unstable_reason} of a timed row: samples_s (seconds a call, one per round),
    loops, device, and the Window's steal_frac and others_running where it has them."""
    samples, loops = row["samples_s"], row.get("loops") or 1
    rounds, mean, median = len(samples), statistics.fmean(samples), statistics.median(samples)
    spread = statistics.stdev(samples) / mean if rounds > 1 and mean > 0 else 0.0
    broken = []
    if spread >= SPREAD:
        broken.append(f"spread {spread:.1%} >= {SPREAD:.0%} (stddev / mean)")
    for name, value in (("min", min(samples)), ("max", max(samples))):
        off = abs(value - median) / median if median > 0 else 0.0
        if off >= OUTLIER:
            broken.append(f"{name} {_ms(value)} is {off:.0%} off the median {_ms(median)}")
    short_s = SHORT_ROUND_S.get(row.get("device"), SHORT_ROUND_S["cpu"])
    if min(samples) * loops < short_s:
        broken.append(f"shortest round {_ms(min(samples) * loops)} < {_ms(short_s)}")
    needed = (
        MIN_ROUNDS
        if spread >= SPREAD
        else max(MIN_ROUNDS, math.ceil((Z_95 * spread / HALF_WIDTH) ** 2))
    )
    if rounds < needed:
        broken.append(f"{rounds} rounds < {needed} (mean to +-{HALF_WIDTH:.0%} at 95%)")
    steal, others = row.get("steal_frac"), row.get("others_running")
    if steal is not None and steal > STEAL:
        broken.append(f"steal {steal:.1%} of the CPU time > {STEAL:.0%}")
    if others is not None and machine_state.busy(others):
        broken.append(
            f"run queue: {others:g} runnable threads of other work on {os.cpu_count() or 1} cores"
        )
    return {"unstable": bool(broken), "unstable_reason": "; ".join(broken)}
