"""The CPU's ceilings (ceilings.py stores them), each the best of its repeats:
- compute: a register-resident FMA loop in C (kernels/c/peaks.c), and NumPy's BLAS GEMM;
- bandwidth: per cache level the OS reports (roofs.caches) a working set well inside it and
  well beyond the level before (their geometric mean: 180 KiB for a 1 MiB L2 after a 32 KiB
  L1; half of L1), where the level is fastest, and one far beyond L3 (DRAM), summed again
  and again and updated (y += x, the optimizers' pattern), by every vector ISA the CPU runs
  (AVX-512 is not always the faster: on Zen 4, AVX2 updates L1 10% faster). Each on one
  thread and on one a core. Then each thread has its own buffer, sized from its own share of
  each level: all of a per-core level (L1, L2), 1 / n of one that n of them share (L3), and
  of DRAM one buffer of `dram` bytes split between all, so the team's working set lies in
  the level measured, as one thread's does. The large NumPy copy is kept (2 x it moved).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from harness.measure import roofs

GEMM_N = 2048  # 17 GFLOP a product: long enough to reach BLAS's peak, short on 2 cores
COPY_BYTES = 1 << 28  # 256 MiB: far beyond any cache, so the copy runs at memory speed
REPEATS = 5
PROBE_S = 0.1  # seconds of each C probe (figure x scope x ISA): ~50 rounds of >= 2 ms


def best_seconds(fn, sync=lambda: None, repeats: int = REPEATS) -> float:
    """The fastest of `repeats` timed calls after a warm-up (ceilings_cuda.py's too)."""
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


def measure() -> dict:
    """BLAS GEMM on one core and on all, the large copy, and the C probes' hierarchy."""
    from threadpoolctl import threadpool_limits

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rng = np.random.default_rng(0)
    a_MK, b_KN = (rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32) for _ in range(2))
    c_MN = np.empty((GEMM_N, GEMM_N), dtype=np.float32)
    blas = {}
    for scope, threads in zip(roofs.SCOPES, (1, cores)):
        with threadpool_limits(threads):
            blas[scope] = 2 * GEMM_N**3 / best_seconds(lambda: np.matmul(a_MK, b_KN, out=c_MN))
    src_N = np.ones(COPY_BYTES // 4, dtype=np.float32)
    dst_N = np.empty_like(src_N)
    copy_s = best_seconds(lambda: np.copyto(dst_N, src_N))
    return {
        "gemm_gflops_per_s": blas["all_cores"] / 1e9,
        "copy_gb_per_s": 2 * COPY_BYTES / copy_s / 1e9,
        "gemm_n": GEMM_N,
        "copy_bytes": COPY_BYTES,
        "cores": cores,
        "blas_gflops_per_s": {scope: rate / 1e9 for scope, rate in blas.items()},
        **_hierarchy(cores),
    }
