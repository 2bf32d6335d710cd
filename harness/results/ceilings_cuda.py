"""The GPU's ceilings through CuPy (ceilings.py stores them): cuBLAS GEMM and a device copy,
an FP32 FMA loop, reads of a quarter of the L2 and of a buffer far beyond it, and the SM
clock CUDA reports (its rated one). Each the best of its repeats, timed as the CPU's are
(ceilings_cpu.best_seconds), the device synchronised after each.
"""

from __future__ import annotations

import numpy as np

from harness.results import ceilings_cpu

CUDA_GEMM_N = 8192
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


def _hierarchy(cp, sync) -> dict:
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
    fma_s = ceilings_cpu.best_seconds(
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
        seconds = ceilings_cpu.best_seconds(
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


def measure() -> dict:
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
    gemm_s = ceilings_cpu.best_seconds(lambda: cp.matmul(a_MK, b_KN), sync)
    src_N = cp.ones(ceilings_cpu.COPY_BYTES, dtype=cp.float32)  # 1 GiB: far beyond a GPU's L2
    dst_N = cp.empty_like(src_N)
    copy_s = ceilings_cpu.best_seconds(lambda: cp.copyto(dst_N, src_N), sync)
    figures = {
        "cuda_gemm_gflops_per_s": 2 * CUDA_GEMM_N**3 / gemm_s / 1e9,
        "cuda_copy_gb_per_s": 2 * src_N.nbytes / copy_s / 1e9,
        "cuda_gemm_n": CUDA_GEMM_N,
        "cuda_copy_bytes": int(src_N.nbytes),
    }
    return {**figures, **_hierarchy(cp, sync)}
