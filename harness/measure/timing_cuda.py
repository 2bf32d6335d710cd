"""The GPU timing protocols, one per mode (`run --gpu-timing`; each row's gpu_timing says which):

events  (the default) CUDA events around each call, the L2 cache flushed between calls. As
        triton's `do_bench`: warm up, estimate one call from a few back to back, then repeat
        enough calls to fill the time budget. A sample is GPU time from the start of the
        call's first kernel to the end of its last, including the gaps where the GPU waited
        for Python to launch the next kernel (a training step's launch overhead is part of
        its cost). Before each repeat a write over twice the L2 size evicts the inputs, so
        every call starts from DRAM as it would inside a network, where other layers ran in
        between; without it a small problem would be timed from L2.
graph   `calls` calls captured once into a CUDA graph (CuPy's stream capture) and the graph
        replayed: a sample is one replay over `calls`, the L2 flushed between replays (not
        between the calls inside one). What the GPU takes when launching costs Python
        nothing. A call that waits for the host (a step's float loss) cannot be captured:
        such a cell is timed by events, and its gpu_timing_note says why.
kernel  the kernels' own time, from CUPTI through PyTorch's profiler: a sample is the sum of
        one call's kernel durations, each call after a flush by a kernel of a known name
        that marks where the call starts. The events' samples are taken too, and the row's
        launch_overhead_s is their median minus this one: the GPU's idle gaps inside a call.

Imports CuPy: the lifecycle imports this module only for impls whose device is "cuda".
"""

from __future__ import annotations

import contextlib
import math
import statistics
from dataclasses import dataclass

import cupy

from harness.measure import gpu_options
from harness.measure.timing import Stats

WARMUP_CALLS = 3
ESTIMATE_CALLS = 5
GRAPH_S = 5e-3  # a replay at least this long: a launch's few microseconds are then noise
MAX_GRAPH_CALLS = 1000
KERNEL_MAX_ROUNDS = 200  # profiled calls: CUPTI's records of every kernel are kept in memory
FLUSH_KERNEL = "nnladder_l2_flush"  # the flush that marks a call's start in the profile
NOT_KERNELS = ("Memcpy", "Memset", "Context Sync")  # GPU activity the profiler also lists
FLUSH_SOURCE = (  # zeros over the flush buffer (N bytes), by a kernel of a name of our own
    f'extern "C" __global__ void {FLUSH_KERNEL}(unsigned char* x, long long N) {{'
    "  for (long long i = blockIdx.x * 256LL + threadIdx.x; i < N; i += gridDim.x * 256LL)"
    "    x[i] = 0; }"
)


@dataclass(frozen=True)
class GpuStats(Stats):
    """Stats, and how they were measured: the row's gpu_timing, launch_overhead_s (kernel
    mode: events' median minus the kernels' median) and gpu_timing_note (why not the mode
    asked for)."""

    mode: str = "events"
    launch_overhead_s: float | None = None
    note: str | None = None

    def as_dict(self) -> dict:
        extra = {"gpu_timing": self.mode, "launch_overhead_s": self.launch_overhead_s}
        return {
            **super().as_dict(),
            **extra,
            **({"gpu_timing_note": self.note} if self.note else {}),
        }


def _l2_flush_buffer():
    l2_bytes = cupy.cuda.Device().attributes["L2CacheSize"]
    return cupy.empty(max(2 * l2_bytes, 1 << 20), dtype=cupy.uint8)


def _rounds(budget_s: float, per_sample_s: float, min_rounds: int, max_rounds: int) -> int:
    return min(max_rounds, max(min_rounds, math.ceil(budget_s / max(per_sample_s, 1e-7))))


def measure(
    fn,
    sync,
    time_per_cell_s: float = 0.5,
    min_rounds: int = 5,
    max_rounds: int = 1000,
    mode: str | None = None,
) -> GpuStats:
    """Time fn (already run once by the caller's correctness check) in `mode` (default: the
    run's, gpu_options.timing_mode()): one sample per call."""
    mode = mode or gpu_options.timing_mode()
    if mode not in gpu_options.MODES:
        raise ValueError(f"GPU timing mode {mode!r}: expected one of {gpu_options.MODES}")
    if mode == "kernel" and (reason := gpu_options.kernel_timing_unavailable()):
        raise ValueError(reason)
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
    rounds = _rounds(time_per_cell_s, per_call_s, min_rounds, max_rounds)
    if mode == "graph":
        calls = min(MAX_GRAPH_CALLS, math.ceil(GRAPH_S / max(per_call_s, 1e-7)))
        replays = _rounds(time_per_cell_s, per_call_s * calls, min_rounds, max_rounds)
        try:
            return GpuStats(_graph_samples(fn, flush, calls, replays), loops=calls, mode=mode)
        except GraphUnavailable as error:
            note = f"graph capture failed, timed by events: {error}"
            return GpuStats(_event_samples(fn, sync, flush, rounds), loops=1, note=note)
    events = _event_samples(fn, sync, flush, rounds)
    if mode == "events":
        return GpuStats(events, loops=1)
    kernels = _kernel_samples(fn, sync, flush, min(rounds, KERNEL_MAX_ROUNDS))
    overhead = statistics.median(events) - statistics.median(kernels)
    return GpuStats(kernels, loops=1, mode=mode, launch_overhead_s=overhead)


def _event_samples(fn, sync, flush, rounds: int) -> tuple:
    starts = [cupy.cuda.Event() for _ in range(rounds)]
    ends = [cupy.cuda.Event() for _ in range(rounds)]
    for start, end in zip(starts, ends, strict=True):
        flush.fill(0)
        start.record()
        fn()
        end.record()
    sync()
    return tuple(cupy.cuda.get_elapsed_time(s, e) / 1e3 for s, e in zip(starts, ends, strict=True))


class GraphUnavailable(RuntimeError):
    """fn could not be captured into a CUDA graph (it waited for the host, say)."""


def _graph_samples(fn, flush, calls: int, replays: int) -> tuple:
    """Seconds per call of each replay of a graph of `calls` calls. On a stream of its own: the
    legacy default stream cannot be captured. The captured calls' arrays go back to CuPy's
    pool after capture while the graph still writes them: nothing else allocates here until
    the last replay is done, so no one else is handed them meanwhile."""
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        fn()  # the pool's blocks for this stream, before capture
        stream.synchronize()
        stream.begin_capture()
        try:
            for _ in range(calls):
                fn()
        except Exception as error:  # noqa: BLE001 - CuPy refuses a host sync during capture
            with contextlib.suppress(Exception):  # the capture is void already: just end it
                stream.end_capture()
            raise GraphUnavailable(f"{type(error).__name__}: {error}") from error
        graph = stream.end_capture()
        starts = [cupy.cuda.Event() for _ in range(replays)]
        ends = [cupy.cuda.Event() for _ in range(replays)]
        for start, end in zip(starts, ends, strict=True):
            flush.fill(0)
            start.record(stream)
            graph.launch(stream)
            end.record(stream)
        stream.synchronize()
    return tuple(
        cupy.cuda.get_elapsed_time(s, e) / 1e3 / calls for s, e in zip(starts, ends, strict=True)
    )


def _kernel_samples(fn, sync, flush, rounds: int) -> tuple:
    """Each call's kernel seconds, as CUPTI saw them (PyTorch's profiler, CUDA activity only:
    it records every kernel of the process, CuPy's too)."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.init()  # CUPTI through torch's own CUDA state, on the context CuPy uses
    marker = cupy.RawKernel(FLUSH_SOURCE, FLUSH_KERNEL)
    size = cupy.int64(flush.size)
    with profile(activities=[ProfilerActivity.CUDA]) as profiled:
        for _ in range(rounds):
            marker((1024,), (256,), (flush, size))
            fn()
        sync()
    activity = [
        (e.name, e.time_range.start, e.time_range.elapsed_us())
        for e in profiled.events()
        if e.device_type == DeviceType.CUDA
    ]
    return kernel_seconds_per_call(activity, rounds)


def kernel_seconds_per_call(activity, calls: int) -> tuple:
    """[(name, start_us, duration_us)] of the GPU's activity, any order -> each call's kernel
    seconds: the kernels between one flush marker and the next, copies, memsets and the
    profiler's own "Context Sync" left out. One stream runs them in order, so start times
    sort them into calls."""
    samples = []
    for name, _, duration_us in sorted(activity, key=lambda a: a[1]):
        if name.startswith(FLUSH_KERNEL):
            samples.append(0.0)
        elif samples and not name.startswith(NOT_KERNELS):
            samples[-1] += duration_us / 1e6
    if len(samples) != calls:
        raise ValueError(
            f"the profiler recorded {len(samples)} {FLUSH_KERNEL} kernels for {calls} calls: "
            "expected one before each call (a CUPTI buffer overflowed, or another stream ran?)"
        )
    return tuple(samples)
