"""The machine's ceilings, measured once per machine: its compute limit and the bandwidth of
each level of its memory hierarchy, on one core and on all of them (read by roofs.py).

No real cell may beat a roof (one under a measured point teaches the wrong thing), so each
figure is the best of its repeats (other work only lowers a sample), the fastest way this
machine does that kind of work:
- compute: a register-resident FMA loop in C (kernels/c/peaks.c), and NumPy's BLAS GEMM;
- bandwidth: per cache level the OS reports (roofs.caches) a working set well inside it and
  well beyond the level before (their geometric mean: 180 KiB for a 1 MiB L2 after a 32 KiB
  L1; half of L1), where the level is fastest, and one far beyond L3 (DRAM), summed again
  and again and updated (y += x, the optimizers' pattern), by every vector ISA the CPU runs
  (AVX-512 is not always the faster: on Zen 4, AVX2 updates L1 10% faster). Each on one
  thread and on one a core. Then each thread has its own buffer, sized from its own share of
  each level: all of a per-core level (L1, L2), 1 / n of one that n of them share (L3), and
  of DRAM one buffer of `dram` bytes split between all, so the team's working set lies in
  the level measured, as one thread's does. The large NumPy copy is kept (2 x it moved);
- on a GPU (CuPy): cuBLAS GEMM and a device copy, an FP32 FMA loop, reads of a quarter of the
  L2 and of a buffer far beyond it, and the SM clock CUDA reports (its rated one).
It takes ~9 s on a quiet 2-core VM, is stored as results/<machine>/ceilings.json (store.load
reads only *.jsonl) and is reused until re-measured on request (`python -m harness report
--remeasure-ceilings`). A file from before the hierarchy (no "levels") is read as it is; roofs
reads its hierarchy as not measured.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from harness.measure import roofs
from harness.results import atomic, machine
from harness.results.store import RESULTS, is_number

GEMM_N = 2048  # 17 GFLOP a product: long enough to reach BLAS's peak, short on 2 cores
COPY_BYTES = 1 << 28  # 256 MiB: far beyond any cache, so the copy runs at memory speed
REPEATS = 5
CUDA_GEMM_N = 8192
FIGURES = ("gemm_gflops_per_s", "copy_gb_per_s", "gemm_n", "copy_bytes")
CUDA_FIGURES = tuple(f"cuda_{name}" for name in FIGURES)  # where a GPU was measured
PROBE_S = 0.1  # seconds of each C probe (figure x scope x ISA): ~50 rounds of >= 2 ms


def _best_seconds(fn, sync=lambda: None, repeats: int = REPEATS) -> float:
    fn()  # warm-up: first-touch page faults, BLAS thread start, kernel load
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def _probe(probes, kind: str, bytes_each: int, threads: int, isas: list) -> float:
    """The best of kind's rate over every ISA, in G (FLOP or bytes) a second."""
    return max(probes.peak(kind, bytes_each, threads, PROBE_S, isa)[0] for isa in isas) / 1e9


def _hierarchy(cores: int) -> dict:
    """The FMA peak and each level's bandwidths from the C probes, or a note saying why not."""
    try:
        import nnladder_c as probes
    except ImportError as error:
        return {"hierarchy_note": f"not measured: the C extension is not importable ({error})"}
    isas = [i for i in probes.peak_isas() if i != "generic"] or ["generic"]
    sizes, source = roofs.caches()
    # threads of the team on one instance of each level (sysfs's CPUs sharing it, 0 for all)
    share = {**{lvl: min(cores, by or cores) for lvl, (_, by) in sizes.items()}, "DRAM": cores}
    # DRAM: 4 x all the cache there is (256 MiB at least, 2 GiB at most) is far beyond it
    cache_bytes = max(size * (cores // share[name]) for name, (size, _) in sizes.items())
    dram = min(max(COPY_BYTES, 4 * cache_bytes), 1 << 31)
    levels, before = [], {"one_core": 0, "all_cores": 0}  # a thread's share of the last level
    for name, (size, _) in [*sizes.items(), ("DRAM", (None, cores))]:
        mine = {"one_core": size, "all_cores": size and size // share[name]}
        # a thread's buffer: DRAM's share; else well inside the level and well beyond the one
        # before (their geometric mean; half of L1), where a level is fastest: on a Zen 4 VM
        # L3 (32 MiB) is updated at 150 GB/s with 6 MiB, 110 with half of it
        each = {
            s: int(math.sqrt(before[s] * mine[s]) if before[s] else mine[s] // 2)
            if size
            else dram // (1 if s == "one_core" else cores)
            for s in roofs.SCOPES
        }
        before = mine
        rates = {
            kind: {
                scope: _probe(probes, kind, each[scope], threads, isas)
                for scope, threads in zip(roofs.SCOPES, (1, cores))
            }
            for kind in roofs.KINDS
        }
        levels.append(
            {
                "name": name,
                "bytes": size,
                "shared_by": share[name],
                "working_set_bytes": each,
                **{f"{kind}_gb_per_s": rate for kind, rate in rates.items()},
            }
        )
    return {
        "isas": isas,
        "caches_from": source,
        "levels": levels,
        "fma_gflops_per_s": {
            s: _probe(probes, "fma", 0, t, isas) for s, t in zip(roofs.SCOPES, (1, cores))
        },
    }


def _cpu() -> dict:
    from threadpoolctl import threadpool_limits

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rng = np.random.default_rng(0)
    a_MK, b_KN = (rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32) for _ in range(2))
    c_MN = np.empty((GEMM_N, GEMM_N), dtype=np.float32)
    blas = {}
    for scope, threads in zip(roofs.SCOPES, (1, cores)):
        with threadpool_limits(threads):
            blas[scope] = 2 * GEMM_N**3 / _best_seconds(lambda: np.matmul(a_MK, b_KN, out=c_MN))
    src_N = np.ones(COPY_BYTES // 4, dtype=np.float32)
    dst_N = np.empty_like(src_N)
    copy_s = _best_seconds(lambda: np.copyto(dst_N, src_N))
    return {
        "gemm_gflops_per_s": blas["all_cores"] / 1e9,
        "copy_gb_per_s": 2 * COPY_BYTES / copy_s / 1e9,
        "gemm_n": GEMM_N,
        "copy_bytes": COPY_BYTES,
        "cores": cores,
        "blas_gflops_per_s": {scope: rate / 1e9 for scope, rate in blas.items()},
        **_hierarchy(cores),
    }


CUDA_PROBES = r"""
extern "C" __global__ void fma_loop(float* out, int steps, float m, float c)
{
    // 8 independent chains a thread and 2048 threads an SM: no FMA pipe waits on a result
    float acc[8];
    for (int a = 0; a < 8; a++) acc[a] = c * a;
    for (int s = 0; s < steps; s++)
#pragma unroll
        for (int a = 0; a < 8; a++) acc[a] = fmaf(acc[a], m, c);
    float sum = 0.0f;
    for (int a = 0; a < 8; a++) sum += acc[a];
    out[blockIdx.x * blockDim.x + threadIdx.x] = sum;  // stored: the loop cannot be dropped
}

extern "C" __global__ void read_loop(const float4* buf, long long n4, int passes, float* out)
{
    // __ldcg caches in L2 only: a working set that fits the SMs' L1s still measures L2
    const long long first = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    float4 s = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int p = 0; p < passes; p++)
#pragma unroll 4
        for (long long i = first; i < n4; i += stride) {
            const float4 v = __ldcg(buf + i);
            s.x += v.x; s.y += v.y; s.z += v.z; s.w += v.w;
        }
    out[first] = s.x + s.y + s.z + s.w;
}
"""


def _cuda_hierarchy(cp, sync) -> dict:
    """FP32 FMA peak, L2 and HBM read bandwidth (RawKernels of CUDA_PROBES), the SM clock."""
    rt, device = cp.cuda.runtime, cp.cuda.Device().id
    sms, l2, clock_khz = (
        rt.deviceGetAttribute(a, device)
        for a in (
            rt.cudaDevAttrMultiProcessorCount,
            rt.cudaDevAttrL2CacheSize,
            rt.cudaDevAttrClockRate,
        )
    )
    probes = cp.RawModule(code=CUDA_PROBES)
    fma, read = probes.get_function("fma_loop"), probes.get_function("read_loop")
    blocks, threads, steps = 8 * sms, 256, 1 << 16  # ~5 ms of FMAs on an H100
    out = cp.empty(blocks * threads, dtype=cp.float32)
    fma_s = _best_seconds(
        lambda: fma(
            (blocks,), (threads,), (out, np.int32(steps), np.float32(0.999), np.float32(1e-3))
        ),
        sync,
    )
    free, total = rt.memGetInfo()
    levels = []
    # a quarter of the L2 (an H100's is two halves: the far one is slower), 4000 times; then
    # 16 x L2 (at least 1 GiB) 20 times: ~5 ms each on an H100
    hbm = min(max(16 * l2, 1 << 30), free // 4)
    for name, capacity, nbytes, passes in (("L2", l2, l2 // 4, 4000), ("HBM", total, hbm, 20)):
        buf = cp.ones(nbytes // 16 * 4, dtype=cp.float32)
        seconds = _best_seconds(
            lambda buf=buf, passes=passes: read(
                (blocks,), (threads,), (buf, np.int64(buf.size // 4), np.int32(passes), out)
            ),
            sync,
        )
        levels.append(
            {
                "name": name,
                "bytes": capacity,
                "read_gb_per_s": passes * buf.nbytes / seconds / 1e9,
                "working_set_bytes": int(buf.nbytes),
            }
        )
    return {
        "cuda_fma_gflops_per_s": 2 * 8 * steps * blocks * threads / fma_s / 1e9,
        "cuda_levels": levels,
        "cuda_sms": sms,
        "cuda_sm_clock_mhz": clock_khz / 1e3,
    }


def _cuda() -> dict:
    """cuBLAS GEMM, copy and hierarchy through CuPy; {} without CuPy or a GPU."""
    try:
        import cupy as cp

        if cp.cuda.runtime.getDeviceCount() < 1:
            return {}
    except Exception:  # noqa: BLE001 - no CuPy, no driver, no device: no GPU ceilings
        return {}
    sync = cp.cuda.Device().synchronize
    a_MK, b_KN = (
        cp.random.standard_normal((CUDA_GEMM_N, CUDA_GEMM_N), dtype=cp.float32) for _ in range(2)
    )
    gemm_s = _best_seconds(lambda: cp.matmul(a_MK, b_KN), sync)
    src_N = cp.ones(COPY_BYTES, dtype=cp.float32)  # 1 GiB: far beyond a GPU's L2
    dst_N = cp.empty_like(src_N)
    copy_s = _best_seconds(lambda: cp.copyto(dst_N, src_N), sync)
    figures = {
        "cuda_gemm_gflops_per_s": 2 * CUDA_GEMM_N**3 / gemm_s / 1e9,
        "cuda_copy_gb_per_s": 2 * src_N.nbytes / copy_s / 1e9,
        "cuda_gemm_n": CUDA_GEMM_N,
        "cuda_copy_bytes": int(src_N.nbytes),
    }
    return {**figures, **_cuda_hierarchy(cp, sync)}


def measure() -> dict:
    meta, start = machine.info(), time.perf_counter()
    busy = machine.others_running()  # other work lowers every figure: the file says how much
    figures = {**_cpu(), **_cuda()}
    return {
        "machine": meta["machine"],
        "cpu": meta["cpu"],
        "gpu": meta["gpu"],
        "blas": meta["blas"],
        "threads": meta["threads"],
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "others_running": busy,
        "measure_s": time.perf_counter() - start,
        **figures,
    }


def read(machine_name: str, root: Path | str | None = None) -> dict | None:
    """The stored ceilings of a machine, or None when never measured, unreadable, or not
    figures (the report computes with every one of them): also when a hierarchy is there but
    not whole. A file from before the hierarchy is returned as it is (roofs.py reads its
    hierarchy as not measured)."""
    try:
        stored = json.loads(path_for(machine_name, root).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if (
        not isinstance(stored, dict)
        or not all(is_number(stored.get(k)) for k in FIGURES)
        or not all(is_number(stored[k]) for k in CUDA_FIGURES if k in stored)
        or not roofs.whole(stored)
    ):
        return None
    return stored


def path_for(machine_name: str, root: Path | str | None = None) -> Path:
    return Path(root or RESULTS) / machine_name / "ceilings.json"


def write(ceilings: dict, root: Path | str | None = None) -> Path:
    """Store atomically: a reader never sees half a file, a crash never loses the old one."""
    return atomic.write_atomic(path_for(ceilings["machine"], root), json.dumps(ceilings, indent=1))


def for_this_machine(root: Path | str | None = None, remeasure: bool = False) -> dict:
    """This machine's ceilings: stored ones, or measured now (~10 s) and stored."""
    stored = None if remeasure else read(machine.machine_name(), root)
    if stored is not None:
        return stored
    ceilings = measure()
    write(ceilings, root)
    return ceilings
