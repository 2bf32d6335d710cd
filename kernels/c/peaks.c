/* The machine's ceilings, measured: what one core, or every core at once, reaches at best.
 * harness/results/ceilings.py sizes and calls these (through module_peaks.c); a roofline drawn
 * from them holds every cell under it only if nothing real can run faster, so each loop is the
 * fastest way this CPU does its kind of work:
 *
 *   PEAK_FMA     float32 FMAs on FMA_ACCS independent accumulators that never leave the
 *                registers: the compute limit. An FMA has ~4 cycles of latency and x86 cores
 *                have 2 FMA pipes, so 8 must be in flight; 12 are, with the 2 operands in
 *                registers too (14 of the 16 ymm/xmm registers).
 *   PEAK_READ    the sum of a buffer of `bytes`, again and again: READ_ACCS accumulators, so the
 *                adds (3-4 cycles) never wait on each other and only the loads limit it.
 *   PEAK_UPDATE  y += x over the two halves of the buffer: two streams read and one written,
 *                the optimizer updates' pattern. It moves 1.5x the bytes a second of reads
 *                alone at every level of a Zen 4 VM: a store port beside the two load ports,
 *                and two streams for the prefetchers in place of one.
 *
 * Each is written once as a macro for three vector widths: AVX-512 (16 floats), AVX2+FMA (8)
 * and generic (4: SSE2 on any x86-64, NEON on arm64, by GCC's vector extensions). The wide ones
 * are compiled with a target attribute and picked at run time, as gemm_3_blocked.c picks its
 * micro-kernel, so the build needs no -march flag. The generic FMA is a multiply then an add
 * (a C11 build does not fuse them): a lower bound on an arm64 core, whose fmla does both in
 * one; harness/measure/roofs.py takes the larger of it and BLAS's GEMM for the compute roof.
 *
 * A team of `threads` runs one kernel each on its own buffer, allocated and first touched by
 * its own thread (so a multi-socket machine reads its nearest memory); a round is timed by
 * thread 0 from one barrier to the next, so it is the slowest thread's. Passes per round double
 * until a round lasts ROUND_S (a timer read every ~100 ns of L1 work would be all overhead)
 * and rounds repeat until `seconds` are spent; the best time a pass is the figure.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nnladder.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_X86 1
#include <immintrin.h>
#else
#define HAVE_X86 0
#endif

#define FMA_ACCS 12
#define FMA_STEPS 1024  // FMA_ACCS vector FMAs each, a pass
#define READ_ACCS 8
#define BLOCK 256       // floats: a buffer is whole blocks, so both halves are whole 16-float rows
#define ROUND_S 2e-3

// may_alias: the buffers are filled as floats and read as vectors
typedef float vec4 __attribute__((vector_size(16), may_alias));

/* fma_NAME(passes, m, c) -> the accumulators' sum; read_NAME(buf, n, passes) -> the sum of
 * buf[0:n] `passes` times; update_NAME(buf, n, passes): y += x, passes times, for x the first
 * n / 2 floats and y the rest. VEC holds W floats; FMA(a, m, c) is a * m + c. */
#define PEAK_KERNELS(NAME, VEC, W, TARGET, FMA)                                                 \
    TARGET static float fma_##NAME(long passes, float m, float c)                              \
    {                                                                                           \
        VEC acc[FMA_ACCS], m_v, c_v;                                                            \
        for (int i = 0; i < W; i++) m_v[i] = m, c_v[i] = c;                                     \
        for (int a = 0; a < FMA_ACCS; a++) acc[a] = c_v * (float)a;                             \
        for (long p = 0; p < passes; p++) {                                                     \
            for (int s = 0; s < FMA_STEPS; s++) {                                               \
                _Pragma("GCC unroll 16") for (int a = 0; a < FMA_ACCS; a++) {                   \
                    acc[a] = FMA(acc[a], m_v, c_v);                                             \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        float sum = 0.0f;                                                                       \
        for (int a = 0; a < FMA_ACCS; a++) for (int i = 0; i < W; i++) sum += acc[a][i];        \
        return sum;                                                                             \
    }                                                                                           \
    TARGET static float read_##NAME(const float* buf, ptrdiff_t n, long passes)                \
    {                                                                                           \
        VEC acc[READ_ACCS] = {{0.0f}};                                                          \
        for (long p = 0; p < passes; p++) {                                                     \
            for (ptrdiff_t i = 0; i < n; i += READ_ACCS * W) {                                  \
                _Pragma("GCC unroll 8") for (int a = 0; a < READ_ACCS; a++) {                   \
                    acc[a] += *(const VEC*)(buf + i + a * W);                                   \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        float sum = 0.0f;                                                                       \
        for (int a = 0; a < READ_ACCS; a++) for (int i = 0; i < W; i++) sum += acc[a][i];       \
        return sum;                                                                             \
    }                                                                                           \
    TARGET static float update_##NAME(float* buf, ptrdiff_t n, long passes)                    \
    {                                                                                           \
        const float* x = buf;                                                                   \
        float* y = buf + n / 2;                                                                 \
        for (long p = 0; p < passes; p++) {                                                     \
            for (ptrdiff_t i = 0; i < n / 2; i += W) *(VEC*)(y + i) += *(const VEC*)(x + i);    \
        }                                                                                       \
        return y[0] + y[n / 2 - 1];                                                             \
    }

#define FMA_GENERIC(a, m, c) ((a) * (m) + (c))
PEAK_KERNELS(generic, vec4, 4, , FMA_GENERIC)

#if HAVE_X86
typedef float vec8 __attribute__((vector_size(32), may_alias));
typedef float vec16 __attribute__((vector_size(64), may_alias));
PEAK_KERNELS(avx2, vec8, 8, __attribute__((target("avx2,fma"))), _mm256_fmadd_ps)
PEAK_KERNELS(avx512, vec16, 16, __attribute__((target("avx512f"))), _mm512_fmadd_ps)

static int cpu_runs(const char* isa)
{
    __builtin_cpu_init();
    if (strcmp(isa, "avx512") == 0) return __builtin_cpu_supports("avx512f");
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

typedef struct {
    const char* name;
    int width;  // floats a vector
    float (*fma)(long passes, float m, float c);
    float (*read)(const float* buf, ptrdiff_t n, long passes);
    float (*update)(float* buf, ptrdiff_t n, long passes);
} isa_kernels;

static const isa_kernels ISAS[] = {  // widest first: "auto" is the first this CPU runs
#if HAVE_X86
    {"avx512", 16, fma_avx512, read_avx512, update_avx512},
    {"avx2", 8, fma_avx2, read_avx2, update_avx2},
#endif
    {"generic", 4, fma_generic, read_generic, update_generic},
};

static const isa_kernels* pick(const char* isa)
{
    for (size_t i = 0; i < sizeof ISAS / sizeof ISAS[0]; i++) {
        const int named = strcmp(isa, "auto") == 0 || strcmp(isa, ISAS[i].name) == 0;
#if HAVE_X86
        if (named && (strcmp(ISAS[i].name, "generic") == 0 || cpu_runs(ISAS[i].name))) {
            return &ISAS[i];
        }
#else
        if (named) return &ISAS[i];
#endif
    }
    return NULL;
}

const char* peak_isa(const char* isa)
{
    const isa_kernels* k = pick(isa);
    return k ? k->name : NULL;
}

static double now(void)
{
#ifdef _OPENMP
    return omp_get_wtime();
#else
    struct timespec t;
    timespec_get(&t, TIME_UTC);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
#endif
}

static float run_kernel(const isa_kernels* k, int kind, float* buf, ptrdiff_t n, long passes)
{
    if (kind == PEAK_FMA) return k->fma(passes, 0.999f, 1e-3f);  // acc -> 1: never denormal
    if (kind == PEAK_READ) return k->read(buf, n, passes);
    return k->update(buf, n, passes);
}

double peak_rate(int kind, const char* isa, ptrdiff_t bytes, int threads, double seconds)
{
    const isa_kernels* k = pick(isa);
    if (k == NULL) return -2.0;
    const ptrdiff_t blocks = (bytes + 4 * BLOCK - 1) / (4 * BLOCK);  // at least one
    const ptrdiff_t n = kind == PEAK_FMA ? 0 : blocks * BLOCK;  // floats a thread
    const double work = kind == PEAK_FMA ? 2.0 * FMA_STEPS * FMA_ACCS * k->width  // FLOPs a pass
                        : kind == PEAK_READ ? 4.0 * n : 1.5 * 4.0 * n;            // or bytes
    double best = HUGE_VAL;
    long passes = 1;
    int failed = 0, done = 0;
    const double start = now();
#pragma omp parallel num_threads(threads)
    {
        float* buf = n ? aligned_alloc(64, (size_t)n * sizeof(float)) : NULL;  // (n,)
        if (n && buf == NULL) {
#pragma omp atomic write
            failed = 1;
        }
        for (ptrdiff_t i = 0; buf && i < n; i++) buf[i] = 1e-3f;  // first touch, by this thread
#pragma omp barrier
        double t0 = 0.0;
        volatile float sink;  // the kernels' results are stored, so none can be left out
        while (!failed && !done) {
#pragma omp barrier
#pragma omp master
            t0 = now();
            sink = run_kernel(k, kind, buf, n, passes);
#pragma omp barrier
#pragma omp master
            {
                // Every round counts: one too short for its overhead, or cut by a thread taken
                // off its core, only overstates the time a pass takes. Passes double while the
                // best pass says a round is short, so one slow round cannot stop them early.
                const double per_pass = (now() - t0) / (double)passes;
                best = per_pass < best ? per_pass : best;
                if (best * (double)passes < ROUND_S && passes < LONG_MAX / 2) passes *= 2;
                done = now() - start >= seconds;
            }
#pragma omp barrier
        }
        (void)sink;
        free(buf);
    }
    if (failed) return -1.0;
#ifndef _OPENMP
    threads = 1;  // the pragmas above ran one thread
#endif
    return threads * work / best;
}
