"""The GPU timing protocol: CUDA events around each call, the L2 cache flushed between calls.

As triton's `do_bench`: warm up, estimate one call from a few back to back, then repeat
enough calls to fill the time budget. Each repeat is bracketed by two events recorded on the
stream, so a sample is GPU time from the start of the call's first kernel to the end of its
last, including the gaps where the GPU waited for Python to launch the next kernel (a
training step's launch overhead is part of its cost). Before each repeat a write over twice
the L2 size evicts the inputs, so every call starts from DRAM as it would inside a network,
where other layers ran in between; without it a small problem would be timed from L2.

Imports CuPy: the lifecycle imports this module only for impls whose device is "cuda".
"""

from __future__ import annotations

import math

import cupy

from harness.measure.timing import Stats

WARMUP_CALLS = 3
ESTIMATE_CALLS = 5


def _l2_flush_buffer():
    l2_bytes = cupy.cuda.Device().attributes["L2CacheSize"]
    return cupy.empty(max(2 * l2_bytes, 1 << 20), dtype=cupy.uint8)


def measure(
    fn, sync, time_per_cell_s: float = 0.5, min_rounds: int = 5, max_rounds: int = 1000
) -> Stats:
    """Time fn (already run once by the caller's correctness check): one sample per call."""
    flush = _l2_flush_buffer()
    for _ in range(WARMUP_CALLS):
        fn()
    sync()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(ESTIMATE_CALLS):
        fn()
    end.record()
    end.synchronize()
    per_call_s = cupy.cuda.get_elapsed_time(start, end) / 1e3 / ESTIMATE_CALLS
    rounds = min(max_rounds, max(min_rounds, math.ceil(time_per_cell_s / max(per_call_s, 1e-7))))
    starts = [cupy.cuda.Event() for _ in range(rounds)]
    ends = [cupy.cuda.Event() for _ in range(rounds)]
    for start, end in zip(starts, ends, strict=True):
        flush.fill(0)
        start.record()
        fn()
        end.record()
    sync()
    samples = tuple(
        cupy.cuda.get_elapsed_time(s, e) / 1e3 for s, e in zip(starts, ends, strict=True)
    )
    return Stats(samples, loops=1)
