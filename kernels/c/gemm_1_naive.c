/* GEMM rung 1: naive i-j-k. One dot product per output element.
 *
 * The innermost loop walks down a column of b_KN: with a row-major b every step is a new cache
 * line, so this rung is bound by memory latency long before arithmetic. It is the baseline the
 * other rungs are measured against, and the simplest correct thing to check them by.
 */
#include "nnladder.h"

void gemm_naive(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_MK, view b_KN, float* c_MN,
                ptrdiff_t ldc, int accumulate)
{
    for (ptrdiff_t i = 0; i < M; i++) {
        for (ptrdiff_t j = 0; j < N; j++) {
            float sum = accumulate ? c_MN[i * ldc + j] : 0.0f;
            for (ptrdiff_t k = 0; k < K; k++) {
                sum += a_MK.p[i * a_MK.rs + k * a_MK.cs] * b_KN.p[k * b_KN.rs + j * b_KN.cs];
            }
            c_MN[i * ldc + j] = sum;
        }
    }
}
