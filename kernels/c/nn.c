/* The ops of the transformer and the CNN besides products: gelu, sigmoid, tanh and their
 * backwards, mse, layernorm, transpose and the embedding's gather and scatter-add.
 *
 * Plain loops that gcc vectorizes at -O3, built twice (VECTORIZED, nnladder.h): for baseline
 * x86-64 and for AVX2 + FMA, picked at load. Every exponential is exp_minus below, not libm's
 * expf, which is a call no loop vectorizes. A sum in one float is a chain gcc keeps in order
 * (it may not reassociate without -ffast-math), so row sums keep LANES partial sums in GCC
 * vectors (lanes_f); left to find them in an array of partial sums, gcc vectorized across the
 * row's steps instead, through the stack, and layernorm's backward ran at 1.3 ns an entry. mse's sum, which is a loss, is kept in double.
 * All run on one thread: memory-bound and small at the workloads' sizes, as ops.c says.
 */
#include <math.h>
#include <string.h>

#include "nnladder.h"

#define LANES 8  // partial sums of a row: an AVX2 register, two SSE2 ones (lanes_total: 8)
typedef float lanes_f __attribute__((vector_size(LANES * sizeof(float))));
// (lanes_f values pass by pointer: one passed by value would change the ABI per target clone)
#define LOAD_LANES(v, p) memcpy(&(v), (p), sizeof(lanes_f))  // unaligned

// The lanes summed pairwise: three adds deep, where one after another would be eight.
static inline float lanes_total(const lanes_f* v)
{
    const lanes_f s = *v;
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

#define GELU_C 0.7978845608028654f  // sqrt(2 / pi): gelu's tanh(GELU_C (x + GELU_A x^3))
#define GELU_A 0.044715f

/* e^-b for b >= 0 as 2^n e^r: Cephes' expf. -b = n ln2 + r with |r| <= ln2 / 2 (ln2 in two
 * parts, so n ln2 is exact) and e^r = 1 + r + r^2 P(r), P of degree 5; n is rounded by adding
 * and subtracting 1.5 * 2^23. No branch and no call, so a loop of it vectorizes. From b = 87
 * on, 2^n is 0 (e^-87 = 1.6e-38 is about the smallest normal float): the test is on b's bits,
 * which for a float >= 0 order as int32s do, and integer masks are branch-free, where a float
 * compare without -ffast-math is a branch that gcc folds into two paths that no longer
 * vectorize. -> r + r^2 P(r), and 2^n in *two_n. */
static inline float exp_parts(float b, float* two_n)
{
    const int32_t most = 0x42AE0000;  // 87.0f
    int32_t b_bits;
    memcpy(&b_bits, &b, sizeof b_bits);
    const int32_t below = -(int32_t)(b_bits < most);  // all ones, or 0 from 87 on (and NaN)
    b_bits &= below;                                  // (b = 0 there: n stays in range)
    memcpy(&b, &b_bits, sizeof b);
    const float n = (b * -1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (-b - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const int32_t bits = (((int32_t)n + 127) << 23) & below;
    memcpy(two_n, &bits, sizeof *two_n);
    return p * r * r + r;
}

// e^-b for b >= 0, within 2 ulp.
static inline float exp_minus(float b)
{
    float two_n;
    const float em1_r = exp_parts(b, &two_n);
    return two_n * (em1_r + 1.0f);
}

/* e^-b - 1 for b >= 0 as 2^n (e^r - 1) + (2^n - 1): near 0, where n = 0, that is r + r^2 P(r)
 * with no cancellation, which 1 - e^-b would have (tanh of a small x). */
static inline float expm1_minus(float b)
{
    float two_n;
    const float em1_r = exp_parts(b, &two_n);
    return two_n * em1_r + (two_n - 1.0f);
}

/* x where x is a NaN, else v: exp_minus takes a NaN as 0, so sigmoid and tanh keep a NaN this
 * way. On the bits, as exp_parts tests (x == x would be a branch, as it says). */
static inline float nan_or(float x, float v)
{
    int32_t x_bits, v_bits;
    memcpy(&x_bits, &x, sizeof x_bits);
    memcpy(&v_bits, &v, sizeof v_bits);
    const int32_t nan = -(int32_t)((x_bits & 0x7FFFFFFF) > 0x7F800000);  // all ones for a NaN
    v_bits = (x_bits & nan) | (v_bits & ~nan);
    memcpy(&v, &v_bits, sizeof v);
    return v;
}

// ---- elementwise: any shape, n entries ---------------------------------------------------------

/* sigmoid(z) from e = e^-|z| and inv = 1 / (1 + e): inv for z >= 0, e inv below, with no
 * overflow and no cancellation. The side is h = 1 or 0 from z's sign bit, by arithmetic: a
 * compare leaves a branch that gcc splits into two paths (one of them multiplied by 1), and no
 * loop with a branch vectorizes (-ftrapping-math, the default, forbids computing both sides). */
static inline float sigmoid_from(float z, float e, float inv)
{
    const float h = 0.5f + copysignf(0.5f, z);
    return (h + (1.0f - h) * e) * inv;
}

/* gelu(x) = 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = GELU_C (x + GELU_A x^3): the sigmoid
 * has no cancellation, where 1 + tanh(u) loses digits for u < 0. */
VECTORIZED void gelu_fwd(ptrdiff_t n, const float* restrict x, float* restrict y)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const float x_i = x[i], u = GELU_C * (x_i + GELU_A * x_i * x_i * x_i);
        const float e = exp_minus(2.0f * fabsf(u));
        y[i] = x_i * sigmoid_from(u, e, 1.0f / (1.0f + e));
    }
}

/* d/dx of x s(2u) = s + 2 x s (1 - s) u', with s (1 - s) = e / (1 + e)^2 on either side. */
VECTORIZED void gelu_bwd(ptrdiff_t n, const float* restrict x, const float* restrict dy,
                         float* restrict dx)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const float x_i = x[i], u = GELU_C * (x_i + GELU_A * x_i * x_i * x_i);
        const float e = exp_minus(2.0f * fabsf(u)), inv = 1.0f / (1.0f + e);
        const float du_dx = GELU_C * (1.0f + 3.0f * GELU_A * x_i * x_i);
        dx[i] = dy[i] * (sigmoid_from(u, e, inv) + 2.0f * x_i * e * inv * inv * du_dx);
    }
}

VECTORIZED void sigmoid_fwd(ptrdiff_t n, const float* restrict x, float* restrict y)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const float e = exp_minus(fabsf(x[i])), s = sigmoid_from(x[i], e, 1.0f / (1.0f + e));
        y[i] = nan_or(x[i], s);
    }
}

VECTORIZED void sigmoid_bwd(ptrdiff_t n, const float* restrict y, const float* restrict dy,
                            float* restrict dx)
{
    for (ptrdiff_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

/* tanh |x| = (1 - e) / (1 + e) = -m / (2 + m) with e = e^-2|x| and m = e - 1 from expm1_minus,
 * accurate for small x too; then x's sign. */
VECTORIZED void tanh_fwd(ptrdiff_t n, const float* restrict x, float* restrict y)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const float m = expm1_minus(2.0f * fabsf(x[i])), t = copysignf(-m / (2.0f + m), x[i]);
        y[i] = nan_or(x[i], t);
    }
}

VECTORIZED void tanh_bwd(ptrdiff_t n, const float* restrict y, const float* restrict dy,
                         float* restrict dx)
{
    // (1 - y)(1 + y), not 1 - y^2: where |y| nears 1, y^2's rounding would be most of 1 - y^2
    for (ptrdiff_t i = 0; i < n; i++) dx[i] = dy[i] * ((1.0f - y[i]) * (1.0f + y[i]));
}

// The mean of (y - target)^2, summed in double.
VECTORIZED double mse_fwd(ptrdiff_t n, const float* restrict y, const float* restrict target)
{
    double part[LANES / 2] = {0.0};
    ptrdiff_t i = 0;
    for (; i + LANES / 2 <= n; i += LANES / 2) {
        for (int k = 0; k < LANES / 2; k++) {
            const double d = (double)y[i + k] - (double)target[i + k];
            part[k] += d * d;
        }
    }
    double sum = 0.0;
    for (; i < n; i++) sum += ((double)y[i] - target[i]) * ((double)y[i] - target[i]);
    for (int k = 0; k < LANES / 2; k++) sum += part[k];
    return sum / (double)n;
}

VECTORIZED void mse_bwd(ptrdiff_t n, const float* restrict y, const float* restrict target,
                        float* restrict dy)
{
    const float scale = (float)(2.0 / (double)n);
    for (ptrdiff_t i = 0; i < n; i++) dy[i] = scale * (y[i] - target[i]);
}

// ---- layernorm over rows (R, D) ------------------------------------------------------------

/* The sum of x_D[d] - shift, or of its square: two chains of LANES partial sums (one chain of
 * vector adds waits on each add's latency), then the tail. */
static inline float row_sum(ptrdiff_t D, const float* restrict x_D, float shift, int squared)
{
    lanes_f even = {0.0f}, odd = {0.0f}, v, w;
    ptrdiff_t d = 0;
    for (; d + 2 * LANES <= D; d += 2 * LANES) {
        LOAD_LANES(v, x_D + d);
        LOAD_LANES(w, x_D + d + LANES);
        v -= shift;
        w -= shift;
        even += squared ? v * v : v;
        odd += squared ? w * w : w;
    }
    even += odd;
    float sum = lanes_total(&even);
    for (; d < D; d++) sum += squared ? (x_D[d] - shift) * (x_D[d] - shift) : x_D[d] - shift;
    return sum;
}

VECTORIZED float sum_f32(ptrdiff_t n, const float* x) { return row_sum(n, x, 0.0f, 0); }

/* Two passes over each row: its mean, then the variance about it (one pass of sum and sum of
 * squares cancels when the mean is large against the spread). Biased variance, LN_EPS. */
VECTORIZED void layernorm_fwd(ptrdiff_t R, ptrdiff_t D, const float* restrict x_RD,
                              const float* restrict gamma_D, const float* restrict beta_D,
                              float* restrict y_RD, float* restrict mean_R, float* restrict rstd_R)
{
    for (ptrdiff_t r = 0; r < R; r++) {
        const float* x_D = x_RD + r * D;  // (D,)
        float* y_D = y_RD + r * D;        // (D,)
        const float mean = row_sum(D, x_D, 0.0f, 0) / (float)D;
        const float rstd = 1.0f / sqrtf(row_sum(D, x_D, mean, 1) / (float)D + LN_EPS);
        for (ptrdiff_t d = 0; d < D; d++) y_D[d] = (x_D[d] - mean) * rstd * gamma_D[d] + beta_D[d];
        mean_R[r] = mean;
        rstd_R[r] = rstd;
    }
}

/* With xhat = (x - mean) rstd and g = dy gamma, per row: dx = rstd (g - mean(g) - xhat
 * mean(g xhat)); dgamma and dbeta sum dy xhat and dy over the rows. The two row sums are one
 * pass, dx, dgamma and dbeta a second. */
VECTORIZED void layernorm_bwd(ptrdiff_t R, ptrdiff_t D, const float* restrict x_RD,
                              const float* restrict gamma_D, const float* restrict mean_R,
                              const float* restrict rstd_R, const float* restrict dy_RD,
                              float* restrict dx_RD, float* restrict dgamma_D,
                              float* restrict dbeta_D)
{
    memset(dgamma_D, 0, D * sizeof(float));
    memset(dbeta_D, 0, D * sizeof(float));
    for (ptrdiff_t r = 0; r < R; r++) {
        const float *x_D = x_RD + r * D, *dy_D = dy_RD + r * D;  // (D,)
        float* dx_D = dx_RD + r * D;                            // (D,)
        const float mean = mean_R[r], rstd = rstd_R[r];
        lanes_f g_part = {0.0f}, gx_part = {0.0f}, dy, gamma, x;
        ptrdiff_t d = 0;
        for (; d + LANES <= D; d += LANES) {
            LOAD_LANES(dy, dy_D + d);
            LOAD_LANES(gamma, gamma_D + d);
            LOAD_LANES(x, x_D + d);
            g_part += dy * gamma;
            gx_part += dy * gamma * ((x - mean) * rstd);
        }
        float g_sum = lanes_total(&g_part), gx_sum = lanes_total(&gx_part);
        for (; d < D; d++) {
            g_sum += dy_D[d] * gamma_D[d];
            gx_sum += dy_D[d] * gamma_D[d] * ((x_D[d] - mean) * rstd);
        }
        const float g_mean = g_sum / (float)D, gx_mean = gx_sum / (float)D;
        for (d = 0; d < D; d++) {
            const float xhat = (x_D[d] - mean) * rstd;
            dx_D[d] = rstd * (dy_D[d] * gamma_D[d] - g_mean - xhat * gx_mean);
            dgamma_D[d] += dy_D[d] * xhat;
            dbeta_D[d] += dy_D[d];
        }
    }
}

// ---- moving rows -----------------------------------------------------------------------------

#define TILE 16  // transpose in TILE x TILE blocks: each block's rows and columns stay in L1

void transpose_f32(ptrdiff_t M, ptrdiff_t K, const float* restrict a_MK, float* restrict at_KM)
{
    for (ptrdiff_t m0 = 0; m0 < M; m0 += TILE) {
        for (ptrdiff_t k0 = 0; k0 < K; k0 += TILE) {
            const ptrdiff_t m1 = m0 + TILE < M ? m0 + TILE : M, k1 = k0 + TILE < K ? k0 + TILE : K;
            for (ptrdiff_t k = k0; k < k1; k++) {
                for (ptrdiff_t m = m0; m < m1; m++) at_KM[k * M + m] = a_MK[m * K + k];
            }
        }
    }
}

// x_RD[r] = w_VD[tokens_R[r]]; every token is in [0, V) (the module checked).
void embedding_fwd(ptrdiff_t R, ptrdiff_t D, const int64_t* tokens_R, const float* w_VD,
                   float* x_RD)
{
    for (ptrdiff_t r = 0; r < R; r++) {
        memcpy(x_RD + r * D, w_VD + tokens_R[r] * D, D * sizeof(float));
    }
}

// dw_VD[v] = the sum of dx_RD[r] over the r whose token is v: a scatter-add into zeros.
VECTORIZED void embedding_bwd(ptrdiff_t R, ptrdiff_t V, ptrdiff_t D, const int64_t* tokens_R,
                              const float* restrict dx_RD, float* restrict dw_VD)
{
    memset(dw_VD, 0, V * D * sizeof(float));
    for (ptrdiff_t r = 0; r < R; r++) {
        float* dw_D = dw_VD + tokens_R[r] * D;  // (D,)
        for (ptrdiff_t d = 0; d < D; d++) dw_D[d] += dx_RD[r * D + d];
    }
}
