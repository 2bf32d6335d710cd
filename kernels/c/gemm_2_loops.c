/* GEMM rung 2: the cache-friendly loop order i-k-j.
 *
 * Same arithmetic as rung 1, loops swapped: for each a[i, k] the inner loop adds a[i, k] * b[k, :]
 * to c[i, :]. With row-major b and c both inner streams are unit-stride, so the hardware
 * prefetcher keeps them coming and the compiler vectorizes the loop (SSE at the baseline ISA).
 * What it lacks: reuse. Every a[i, k] drags a whole row of b through the cache, so for large
 * N the rows of b fall out of L1/L2 before they are used again (rung 3 fixes that).
 * A transposed b (column stride != 1) takes the dot-product order instead, for the same reason.
 */
#include "nnladder.h"

void gemm_loops(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_MK, view b_KN, float* c_MN,
                ptrdiff_t ldc, int accumulate)
{
    if (b_KN.cs != 1 && a_MK.cs == 1) {  // b^T is row-major: i-j-k reads both unit-stride
        gemm_naive(M, N, K, a_MK, b_KN, c_MN, ldc, accumulate);
        return;
    }
    for (ptrdiff_t i = 0; i < M; i++) {
        float* c_N = c_MN + i * ldc;  // (N,)
        if (!accumulate) {
            for (ptrdiff_t j = 0; j < N; j++) c_N[j] = 0.0f;
        }
        for (ptrdiff_t k = 0; k < K; k++) {
            const float a_ik = a_MK.p[i * a_MK.rs + k * a_MK.cs];
            const float* b_N = b_KN.p + k * b_KN.rs;  // (N,), stride b_KN.cs
            if (b_KN.cs == 1) {
                for (ptrdiff_t j = 0; j < N; j++) c_N[j] += a_ik * b_N[j];
            } else {
                for (ptrdiff_t j = 0; j < N; j++) c_N[j] += a_ik * b_N[j * b_KN.cs];
            }
        }
    }
}
