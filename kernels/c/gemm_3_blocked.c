/* GEMM rung 3: blocked and packed, a 6x16 register-tile micro-kernel (BLIS's five loops).
 *
 * Rung 2 streams whole rows of b through the cache for every a[i, k]. Here the work is cut so
 * each level of the memory hierarchy holds the block it reuses (sizes for AVX2 cores with
 * 32 KiB L1d and >= 256 KiB L2; the shapes stay correct anywhere, only speed depends on them):
 *   a KC x NR micro-panel of b (24 KiB) stays in L1 while it meets every MR-row panel of a;
 *   an MC x KC block of a (216 KiB) stays in L2 while it meets every column panel of b;
 *   a KC x NC panel of b (6 MiB) stays in L3 while it meets every MC block of a.
 * (KC = 384 measured a few percent faster than 256 at 1024^3 on a Zen 3 core.)
 * Packing copies each block once into the exact order the micro-kernel reads (unit stride,
 * zero-padded to whole tiles), which also makes transposed operands free: the strides of a
 * `view` are only read while packing. Small products skip it for an operand that is already
 * in that order (see IN_PLACE_MAX_REUSE).
 * The micro-kernel keeps a 6x16 tile of c in 12 of the 16 ymm registers and does 12 FMAs per
 * k step (2 loads of b, 6 broadcasts of a): compute-bound once the blocks above are in cache.
 * It is compiled for AVX2+FMA with a target attribute and picked at run time, so the build
 * never needs -march=native; CPUs without AVX2/FMA get the scalar micro-kernel.
 */
#include <stdlib.h>
#include <string.h>

#include "nnladder.h"

#define MR GEMM_MR
#define NR GEMM_NR
#define KC 384
#define MC 144   // a multiple of MR
#define NC 4096  // a multiple of NR

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_X86 1
#include <immintrin.h>
#else
#define HAVE_X86 0
#endif

/* a_panel[i * a_rs + p * a_cs] is a[i, p] and b_panel[p * b_step + j] is b[p, j]: a packed panel
 * has a_rs 1, a_cs MR and b_step NR; an operand read in place has its own strides. Only the first
 * `rows` rows of the tile are computed and stored: the last tile of an M that MR does not divide
 * costs what its rows need, not a whole tile (a slab of 32 rows is 5 tiles and 2 rows, not 6
 * tiles). */
typedef void kernel_fn(ptrdiff_t kc, const float* a_panel, ptrdiff_t a_rs, ptrdiff_t a_cs,
                       const float* b_panel, ptrdiff_t b_step, float* c, ptrdiff_t ldc,
                       int accumulate, int rows);

static ptrdiff_t min_ptrdiff(ptrdiff_t x, ptrdiff_t y) { return x < y ? x : y; }
static ptrdiff_t round_up(ptrdiff_t x, ptrdiff_t m) { return (x + m - 1) / m * m; }

// ---- micro-kernels: c[0:rows, 0:NR] (+)= a_panel (kc, MR) ^T-ish @ b_panel (kc, NR) ------------

static void kernel_scalar(ptrdiff_t kc, const float* a_panel, ptrdiff_t a_rs, ptrdiff_t a_cs,
                          const float* b_panel, ptrdiff_t b_step, float* c, ptrdiff_t ldc,
                          int accumulate, int rows)
{
    float tile[MR][NR] = {{0.0f}};  // (MR, NR)
    for (ptrdiff_t p = 0; p < kc; p++) {
        for (int i = 0; i < rows; i++) {
            const float a_ip = a_panel[i * a_rs + p * a_cs];
            for (int j = 0; j < NR; j++) tile[i][j] += a_ip * b_panel[p * b_step + j];
        }
    }
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < NR; j++) c[i * ldc + j] = tile[i][j] + (accumulate ? c[i * ldc + j] : 0);
    }
}

#if HAVE_X86
// One k step for row r of the tile: broadcast a[r] and multiply it into both halves of b.
#define ROW_FMA(r)                                                   \
    if ((r) < rows) {                                                \
        const __m256 a_r = _mm256_broadcast_ss(a_panel + (r) * a_rs); \
        c##r##0 = _mm256_fmadd_ps(a_r, b0, c##r##0);                 \
        c##r##1 = _mm256_fmadd_ps(a_r, b1, c##r##1);                 \
    }
#define ROW_STORE(r)                                                              \
    if ((r) < rows) {                                                             \
        if (accumulate) {                                                         \
            c##r##0 = _mm256_add_ps(c##r##0, _mm256_loadu_ps(c + (r) * ldc));     \
            c##r##1 = _mm256_add_ps(c##r##1, _mm256_loadu_ps(c + (r) * ldc + 8)); \
        }                                                                         \
        _mm256_storeu_ps(c + (r) * ldc, c##r##0);                                 \
        _mm256_storeu_ps(c + (r) * ldc + 8, c##r##1);                             \
    }

/* The tile for a `rows` known where it is inlined, so each test on it folds away: one copy of
 * the loop per row count, with exactly the FMAs that row count needs. */
__attribute__((target("avx2,fma"), always_inline))
static inline void tile_avx2(ptrdiff_t kc, const float* a_panel, ptrdiff_t a_rs, ptrdiff_t a_cs,
                             const float* b_panel, ptrdiff_t b_step, float* c, ptrdiff_t ldc,
                             int accumulate, const int rows)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int r = 0; r < rows; r++) {  // c is read only at the end: start bringing it in now
        _mm_prefetch((const char*)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char*)(c + r * ldc + NR - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (ptrdiff_t p = 0; p < kc; p++) {
        // unaligned loads: an in-place b need not be aligned (as fast as aligned ones when it is)
        const __m256 b0 = _mm256_loadu_ps(b_panel), b1 = _mm256_loadu_ps(b_panel + 8);
        ROW_FMA(0) ROW_FMA(1) ROW_FMA(2) ROW_FMA(3) ROW_FMA(4) ROW_FMA(5)
        a_panel += a_cs;
        b_panel += b_step;
    }
    ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3) ROW_STORE(4) ROW_STORE(5)
}

__attribute__((target("avx2,fma")))
static void kernel_avx2(ptrdiff_t kc, const float* a_panel, ptrdiff_t a_rs, ptrdiff_t a_cs,
                        const float* b_panel, ptrdiff_t b_step, float* c, ptrdiff_t ldc,
                        int accumulate, int rows)
{
#define TILE(r, a_rs) tile_avx2(kc, a_panel, a_rs, a_cs, b_panel, b_step, c, ldc, accumulate, r)
    switch (rows) {
    case 1: TILE(1, a_rs); break;
    case 2: TILE(2, a_rs); break;
    case 3: TILE(3, a_rs); break;
    case 4: TILE(4, a_rs); break;
    case 5: TILE(5, a_rs); break;
    default:  // a whole tile; a packed or column-major a (a_rs 1) gets constant offsets
        if (a_rs == 1) {
            TILE(MR, 1);
        } else {
            TILE(MR, a_rs);
        }
    }
#undef TILE
}

static int cpu_has_avx2_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
static int cpu_has_avx2_fma(void) { return 0; }
#endif

static kernel_fn* kernel = kernel_scalar;
static const char* kernel_name = "scalar";

const char* gemm_kernel(void) { return kernel_name; }

int gemm_set_kernel(const char* name)
{
    int avx2 = cpu_has_avx2_fma();
    if (strcmp(name, "auto") == 0) name = avx2 ? "avx2" : "scalar";
    if (strcmp(name, "scalar") == 0) {
        kernel = kernel_scalar;
        kernel_name = "scalar";
        return 0;
    }
#if HAVE_X86
    if (strcmp(name, "avx2") == 0 && avx2) {
        kernel = kernel_avx2;
        kernel_name = "avx2";
        return 0;
    }
#endif
    return -1;
}

// ---- packing ----------------------------------------------------------------------------------

/* Packing pays for itself through reuse: a packed panel of b is read by every MR-row panel of a
 * block of a, and a packed panel of a by every NR-column panel of b. In the small products of a
 * training step the reuse is short (x @ w0 of the MNIST step has M = 64: each panel of w0 meets
 * 11 panels of x), and the copy costs a good part of the product (the scalar transpose that
 * packs x was a tenth of the MNIST forward). So an operand the micro-kernel can read where it
 * lies is read in place when the other operand has at most IN_PLACE_MAX_REUSE panels: a with
 * unit stride along either axis (x row-major in a forward, x^T column-major in a weight
 * gradient), since the kernel broadcasts a[i, p] through both strides; b row-major (cs == 1),
 * since it loads 16 consecutive columns. Only a panel of b with columns past the end is packed,
 * zero-padded: the kernel reads all NR columns of b, but only the rows of a it computes.
 * (BLIS's "sup" path for small and skinny products rests on the same trade.) Where the other
 * operand is large, its reuse pays for the copy, and in place every k step of a panel would be
 * another cache line and, with long rows, another page. */
#define IN_PLACE_MAX_REUSE 16

// a[ic:ic+mc, pc:pc+kc] -> micro-panels of MR rows, each (kc, MR), rows past mc zero.
static void pack_a(ptrdiff_t mc, ptrdiff_t kc, view a, float* a_packed)
{
    for (ptrdiff_t ir = 0; ir < mc; ir += MR) {
        float* panel = a_packed + ir * kc;  // (kc, MR)
        const float* a_rows = a.p + ir * a.rs;
        const ptrdiff_t rows = min_ptrdiff(MR, mc - ir);
        if (rows == MR) {  // a whole panel: no test per element
            for (ptrdiff_t p = 0; p < kc; p++) {
                for (ptrdiff_t i = 0; i < MR; i++) panel[p * MR + i] = a_rows[i * a.rs + p * a.cs];
            }
            continue;
        }
        for (ptrdiff_t p = 0; p < kc; p++) {
            for (ptrdiff_t i = 0; i < MR; i++) {
                panel[p * MR + i] = i < rows ? a_rows[i * a.rs + p * a.cs] : 0.0f;
            }
        }
    }
}

// b[pc:pc+kc, jc:jc+nc] -> micro-panels of NR columns, each (kc, NR), columns past nc zero.
// Panels before column `first` are skipped (read in place).
static void pack_b(ptrdiff_t kc, ptrdiff_t nc, view b, float* b_packed, ptrdiff_t first)
{
    for (ptrdiff_t jr = first; jr < nc; jr += NR) {
        float* panel = b_packed + jr * kc;  // (kc, NR)
        const ptrdiff_t cols = min_ptrdiff(NR, nc - jr);
        for (ptrdiff_t p = 0; p < kc; p++) {
            const float* b_row = b.p + p * b.rs + jr * b.cs;
            if (cols == NR && b.cs == 1) {
                memcpy(panel + p * NR, b_row, NR * sizeof(float));
                continue;
            }
            for (ptrdiff_t j = 0; j < NR; j++) panel[p * NR + j] = j < cols ? b_row[j * b.cs] : 0.0f;
        }
    }
}

// ---- the five loops -------------------------------------------------------------------------

static void* alloc_floats(ptrdiff_t n)
{
    // 64-byte aligned, so a panel starts on a cache line; aligned_alloc wants a multiple.
    return aligned_alloc(64, (size_t)round_up(n * (ptrdiff_t)sizeof(float), 64));
}

// a_packed NULL: a is read in place (a_in_place).
static void blocked_loops(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_MK, view b_KN,
                          float* c_MN, ptrdiff_t ldc, int accumulate, float* a_packed,
                          float* b_packed)
{
    _Alignas(64) float edge[MR * NR];  // (MR, NR): a tile with columns past c's is made here
    /* K and M are cut into equal blocks no larger than KC and MC: K = 784 as 4 x 196, not
     * 3 x 256 + 16, whose last block would load and store c for only 16 steps of k. */
    const ptrdiff_t k_step = (K + (K + KC - 1) / KC - 1) / ((K + KC - 1) / KC);
    const ptrdiff_t m_step = round_up((M + (M + MC - 1) / MC - 1) / ((M + MC - 1) / MC), MR);
    // Whole panels of an operand read in place, or packed (see IN_PLACE_MAX_REUSE)
    const int a_in_place = a_packed == NULL;
    const int b_in_place = b_KN.cs == 1 && (M + MR - 1) / MR <= IN_PLACE_MAX_REUSE;
    for (ptrdiff_t jc = 0; jc < N; jc += NC) {
        const ptrdiff_t nc = min_ptrdiff(NC, N - jc);
        const ptrdiff_t b_whole = b_in_place ? nc / NR : 0;  // panels of b read in place
        for (ptrdiff_t pc = 0; pc < K; pc += k_step) {
            const ptrdiff_t kc = min_ptrdiff(k_step, K - pc);
            const int acc = accumulate || pc > 0;
            view b = {b_KN.p + pc * b_KN.rs + jc * b_KN.cs, b_KN.rs, b_KN.cs};
            pack_b(kc, nc, b, b_packed, b_whole * NR);
            for (ptrdiff_t ic = 0; ic < M; ic += m_step) {
                const ptrdiff_t mc = min_ptrdiff(m_step, M - ic);
                view a = {a_MK.p + ic * a_MK.rs + pc * a_MK.cs, a_MK.rs, a_MK.cs};
                if (!a_in_place) pack_a(mc, kc, a, a_packed);
                const ptrdiff_t n_panels = (nc + NR - 1) / NR, m_panels = (mc + MR - 1) / MR;
                for (ptrdiff_t jp = 0; jp < n_panels; jp++) {
                    const int b_here = jp < b_whole;
                    const float* b_panel = b_here ? b.p + jp * NR : b_packed + jp * NR * kc;
                    const ptrdiff_t b_step = b_here ? b.rs : NR;
                    for (ptrdiff_t ip = 0; ip < m_panels; ip++) {
                        const ptrdiff_t rows = min_ptrdiff(MR, mc - ip * MR);
                        const ptrdiff_t cols = min_ptrdiff(NR, nc - jp * NR);
                        float* c = c_MN + (ic + ip * MR) * ldc + jc + jp * NR;  // (rows, cols)
                        const float* a_panel = a_in_place ? a.p + ip * MR * a.rs
                                                          : a_packed + ip * MR * kc;
                        const ptrdiff_t a_rs = a_in_place ? a.rs : 1, a_cs = a_in_place ? a.cs : MR;
                        if (cols == NR) {
                            kernel(kc, a_panel, a_rs, a_cs, b_panel, b_step, c, ldc, acc,
                                   (int)rows);
                            continue;
                        }
                        kernel(kc, a_panel, a_rs, a_cs, b_panel, b_step, edge, NR, 0, (int)rows);
                        for (ptrdiff_t i = 0; i < rows; i++) {
                            for (ptrdiff_t j = 0; j < cols; j++) {
                                c[i * ldc + j] = edge[i * NR + j] + (acc ? c[i * ldc + j] : 0);
                            }
                        }
                    }
                }
            }
        }
    }
}

int gemm_blocked(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_MK, view b_KN, float* c_MN,
                 ptrdiff_t ldc, int accumulate)
{
    const ptrdiff_t kc = min_ptrdiff(KC, K);
    // a read in place (see IN_PLACE_MAX_REUSE) needs no buffer: a call of the MNIST step's
    // fused model would otherwise allocate 200 KiB on each thread for nothing
    const int a_in_place = (a_MK.rs == 1 || a_MK.cs == 1)
                           && (min_ptrdiff(N, NC) + NR - 1) / NR <= IN_PLACE_MAX_REUSE;
    float* a_packed = a_in_place ? NULL
                                 : alloc_floats(round_up(min_ptrdiff(MC, M), MR) * kc);  // (MC, KC)
    float* b_packed = alloc_floats(round_up(min_ptrdiff(NC, N), NR) * kc);  // (KC, NC)
    const int allocated = (a_in_place || a_packed) && b_packed;
    if (allocated) {
        blocked_loops(M, N, K, a_MK, b_KN, c_MN, ldc, accumulate, a_packed, b_packed);
    }
    free(a_packed);
    free(b_packed);
    return allocated ? 0 : -1;
}
