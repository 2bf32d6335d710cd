/* GEMM dispatch: one entry point for every rung, and the batched product of attention. */
#include <string.h>

#include "nnladder.h"

int gemm(int rung, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_MK, view b_KN, float* c_MN,
         ptrdiff_t ldc, int accumulate, int threads)
{
    if (M == 0 || N == 0) return 0;
    if (K == 0) {  // an empty sum: no rung's loops would touch c
        if (!accumulate) {
            for (ptrdiff_t i = 0; i < M; i++) memset(c_MN + i * ldc, 0, N * sizeof(float));
        }
        return 0;
    }
    switch (rung) {
    case GEMM_NAIVE:
        gemm_naive(M, N, K, a_MK, b_KN, c_MN, ldc, accumulate);
        return 0;
    case GEMM_LOOPS:
        gemm_loops(M, N, K, a_MK, b_KN, c_MN, ldc, accumulate);
        return 0;
    case GEMM_BLOCKED:
        return gemm_blocked(M, N, K, a_MK, b_KN, c_MN, ldc, accumulate);
    default:
        return gemm_threads(M, N, K, a_MK, b_KN, c_MN, ldc, accumulate, threads);
    }
}

int gemm_batched(int rung, ptrdiff_t X, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_XMK,
                 ptrdiff_t a_stride, view b_XKN, ptrdiff_t b_stride, float* c_XMN, int threads)
{
    /* Attention's per-head products are small: with at least as many heads as threads, each
     * thread takes whole products (one thread each) instead of splitting every one of them. */
    int failed = 0;
    const double muladds = (double)X * (double)M * (double)N * (double)K;
    const int by_batch = rung == GEMM_THREADS && threads > 1 && X >= threads
                         && muladds >= (double)threads * GEMM_MIN_MULADDS_PER_THREAD;
#pragma omp parallel for num_threads(threads) if (by_batch) reduction(| : failed)
    for (ptrdiff_t x = 0; x < X; x++) {
        view a = {a_XMK.p + x * a_stride, a_XMK.rs, a_XMK.cs};
        view b = {b_XKN.p + x * b_stride, b_XKN.rs, b_XKN.cs};
        failed |= gemm(by_batch ? GEMM_BLOCKED : rung, M, N, K, a, b, c_XMN + x * M * N, N, 0,
                       threads) != 0;
    }
    return failed ? -1 : 0;
}
