/* GEMM rung 4: rung 3 on every thread of an OpenMP team, each on its own share of c.
 *
 * c is cut along its longer side into one slab per thread, on tile boundaries: a slab of
 * columns reads all of a and its own columns of b, a slab of rows its own rows of a and all of
 * b. Each thread then runs rung 3 with its own packing buffers, so the team meets only at the
 * fork and the join. Sharing packed blocks instead (BLIS's way) saves the second packing of
 * the shared operand but needs a barrier per block: on a 2-core machine that is shared with
 * other work, a thread that is descheduled at a barrier stalls its partner for a whole time
 * slice, and rung 4 measured at half of rung 3's speed that way.
 *
 * Thread count: omp_get_max_threads() at each call, which is what threadpoolctl sets
 * (`threadpool_limits(n)` sets BLAS and OpenMP alike) and what OMP_NUM_THREADS sets at start.
 * Built without OpenMP, the team is always one thread.
 */
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nnladder.h"

int gemm_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int gemm_threads(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_MK, view b_KN, float* c_MN,
                 ptrdiff_t ldc, int accumulate, int threads)
{
#ifndef _OPENMP
    threads = 1;  // no team to share the work with
#endif
    const double muladds = (double)M * (double)N * (double)K;
    if (muladds < (double)threads * GEMM_MIN_MULADDS_PER_THREAD) {
        threads = (int)(muladds / GEMM_MIN_MULADDS_PER_THREAD);
    }
    const int by_columns = N >= M;
    const ptrdiff_t side = by_columns ? N : M, tile = by_columns ? GEMM_NR : GEMM_MR;
    const ptrdiff_t tiles = (side + tile - 1) / tile;
    if (threads > tiles) threads = (int)tiles;
    if (threads <= 1) return gemm_blocked(M, N, K, a_MK, b_KN, c_MN, ldc, accumulate);
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        const ptrdiff_t lo = tiles * t / team * tile;  // this thread's slab [lo, hi) of side
        ptrdiff_t hi = tiles * (t + 1) / team * tile;
        hi = hi < side ? hi : side;
        if (lo < hi && by_columns) {
            view b = {b_KN.p + lo * b_KN.cs, b_KN.rs, b_KN.cs};
            failed |= gemm_blocked(M, hi - lo, K, a_MK, b, c_MN + lo, ldc, accumulate);
        } else if (lo < hi) {
            view a = {a_MK.p + lo * a_MK.rs, a_MK.rs, a_MK.cs};
            failed |= gemm_blocked(hi - lo, N, K, a, b_KN, c_MN + lo * ldc, ldc, accumulate);
        }
    }
#endif
    return failed ? -1 : 0;
}

static int run(int rung, gemm_call call, int threads)
{
    return gemm(rung, call.M, call.N, call.K, call.a_MK, call.b_KN, call.c_MN, call.ldc,
                call.accumulate, threads);
}

/* A backward's two products (da = dc @ b^T and db = a^T @ dc) always have equal work, M*K*N
 * multiply-adds each. With a team of two, each thread takes one whole product: one fork and
 * join instead of two, and no operand packed by both threads. Other team sizes split each
 * product in turn. */
int gemm_pair(int rung, gemm_call first, gemm_call second, int threads)
{
#ifndef _OPENMP
    threads = 1;
#endif
    const double muladds_first = (double)first.M * (double)first.N * (double)first.K;
    const double muladds_second = (double)second.M * (double)second.N * (double)second.K;
    if (rung != GEMM_THREADS || threads != 2 || muladds_first < GEMM_MIN_MULADDS_PER_THREAD
        || muladds_second < GEMM_MIN_MULADDS_PER_THREAD) {
        return run(rung, first, threads) || run(rung, second, threads) ? -1 : 0;
    }
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(2) reduction(| : failed)
    {
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        if (t == 0) failed |= run(GEMM_BLOCKED, first, 1) != 0;
        if (t == 1 || team == 1) failed |= run(GEMM_BLOCKED, second, 1) != 0;
    }
#endif
    return failed ? -1 : 0;
}
