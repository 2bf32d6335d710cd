/* The convolution as im2col and the rung's own GEMM, NCHW (the max pool is pool.c).
 *
 * Per image, cols_(QJL)(UW) holds in row (q, j, l) the pixels that kernel tap (j, l) of channel
 * q meets at each output position (u, w), zero where the window hangs over the padding. Then
 * y_F(UW) = w_F(QJL) @ cols is one plain row-major product of the GEMM entry point (gemm.c),
 * and it lands in y_BFUW's layout as it is: no transpose after. The backward is two products
 * and the adjoint of im2col: dw_F(QJL) += dy_F(UW) @ cols^T over the images, dcols = w^T @ dy,
 * then col2im adds each entry of dcols back onto the pixel it came from. A 1 x 1 kernel with
 * stride 1 and no padding needs no cols: the image x_Q(YZ) is already that matrix.
 *
 * Threads (rung 4): with at least as many images as threads, each thread takes whole images
 * with its own cols and runs rung 3 on them, as gemm_batched does for attention's heads: at
 * CNN sizes one image's product (64 x 196 x 288 at the targets' 14 x 14 layer) is below what
 * rung 4 would split (GEMM_MIN_MULADDS_PER_THREAD), and im2col then runs on every thread
 * too. With fewer images than threads, each image's products are split by rung 4 itself.
 * The forward hands out images as threads ask (dynamic): its images are independent, so a
 * thread that starts late takes fewer, and the bits are the same whoever computes them. The
 * backward's shares are fixed (static), so its sum of dw over images keeps one order.
 */
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "nnladder.h"

static ptrdiff_t clamp(ptrdiff_t v, ptrdiff_t lo, ptrdiff_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The output columns [*lo, *hi) of kernel column l whose input column w stride + l - padding
 * lies inside the image's Z columns; the others read padding. */
static void inside(const conv_dims* d, ptrdiff_t l, ptrdiff_t* lo, ptrdiff_t* hi)
{
    const ptrdiff_t s = d->stride, before = d->padding - l, last = d->Z - 1 + d->padding - l;
    *lo = clamp(before > 0 ? (before + s - 1) / s : 0, 0, d->W);
    *hi = clamp(last >= 0 ? last / s + 1 : 0, *lo, d->W);
}

/* Stride 1 with W == Z (a conv that keeps the width: 2 padding = L - 1): the entry k = u W + w
 * of row (q, j, l) of cols is entry k + shift of channel q's plane, shift = (j - p) Z + l - p,
 * so the row is one long copy (a row of W = 14 entries at a time cost a third of the conv).
 * But where the window is over padding: the rows u outside [u_lo, u_hi) read nothing, which
 * leaves [*k0, *k1) of the row to copy; its columns outside [lo, hi) read the next row over,
 * and are zeroed after. -> shift. */
static ptrdiff_t shifted_span(const conv_dims* d, ptrdiff_t j, ptrdiff_t l, ptrdiff_t* u_lo,
                              ptrdiff_t* u_hi, ptrdiff_t* k0, ptrdiff_t* k1)
{
    const ptrdiff_t p = d->padding, W = d->W, shift = (j - p) * d->Z + l - p;
    *u_lo = clamp(p - j, 0, d->U);
    *u_hi = clamp(d->Y + p - j, *u_lo, d->U);
    *k0 = clamp(-shift, *u_lo * W, *u_hi * W);
    *k1 = clamp(d->Y * d->Z - shift, *k0, *u_hi * W);
    return shift;
}

static int is_shifted(const conv_dims* d) { return d->stride == 1 && d->W == d->Z; }

// The columns outside [lo, hi) of rows [u_lo, u_hi) of row_UW: down each column (a padding
// of 1 leaves one column on a side, and a loop along a row of one entry costs more than it).
static void zero_edges(ptrdiff_t W, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t u_lo, ptrdiff_t u_hi,
                       float* row_UW)
{
    for (ptrdiff_t w = 0; w < lo; w++) {
        for (ptrdiff_t u = u_lo; u < u_hi; u++) row_UW[u * W + w] = 0.0f;
    }
    for (ptrdiff_t w = hi; w < W; w++) {
        for (ptrdiff_t u = u_lo; u < u_hi; u++) row_UW[u * W + w] = 0.0f;
    }
}

/* n floats rounded up to whole 64-byte lines. A row of cols starts every whole_lines(UW)
 * entries, on a line: the forward's GEMM reads cols in place, 16 columns a k step, and with
 * rows of 196 entries (the targets' 14 x 14) three loads in four straddled two lines, so a
 * micro-panel of 289 rows spanned 37 KiB, past a 32 KiB L1, and came back from L2 for each
 * of its 11 panels of w. */
static ptrdiff_t whole_lines(ptrdiff_t n) { return (n + 15) / 16 * 16; }

/* x_QYZ of one image -> cols_(QJL)(UW), rows `ld` apart: each row as shifted_span says, or else
 * row by row of W. The copies are loops gcc vectorizes in place, not memcpy and memset calls
 * of W entries. */
VECTORIZED static void im2col(const conv_dims* d, const float* restrict x_QYZ, ptrdiff_t ld,
                              float* restrict cols)
{
    const ptrdiff_t U = d->U, W = d->W, s = d->stride, p = d->padding;
    for (ptrdiff_t q = 0; q < d->Q; q++) {
        const float* x_YZ = x_QYZ + q * d->Y * d->Z;
        for (ptrdiff_t j = 0; j < d->J; j++) {
            for (ptrdiff_t l = 0; l < d->L; l++) {
                float* row_UW = cols + ((q * d->J + j) * d->L + l) * ld;
                ptrdiff_t lo, hi, u_lo, u_hi, k0, k1;
                inside(d, l, &lo, &hi);
                if (is_shifted(d)) {
                    const ptrdiff_t shift = shifted_span(d, j, l, &u_lo, &u_hi, &k0, &k1);
                    for (ptrdiff_t k = 0; k < k0; k++) row_UW[k] = 0.0f;
                    for (ptrdiff_t k = k0; k < k1; k++) row_UW[k] = x_YZ[k + shift];
                    for (ptrdiff_t k = k1; k < U * W; k++) row_UW[k] = 0.0f;
                    zero_edges(W, lo, hi, u_lo, u_hi, row_UW);
                    continue;
                }
                for (ptrdiff_t u = 0; u < U; u++) {
                    float* out_W = row_UW + u * W;
                    const ptrdiff_t y = u * s + j - p;
                    const int row_inside = y >= 0 && y < d->Y;
                    const ptrdiff_t w_lo = row_inside ? lo : W, w_hi = row_inside ? hi : W;
                    const ptrdiff_t at = (row_inside ? y : 0) * d->Z + l - p;  // x_YZ[at + w s]
                    for (ptrdiff_t w = 0; w < w_lo; w++) out_W[w] = 0.0f;
                    for (ptrdiff_t w = w_lo; w < w_hi; w++) out_W[w] = x_YZ[at + w * s];
                    for (ptrdiff_t w = w_hi; w < W; w++) out_W[w] = 0.0f;
                }
            }
        }
    }
}

/* The adjoint of im2col: dx_QYZ[pixel] += every entry of dcols (rows `ld` apart) that read it
 * (padding: none). dcols is scratch: the shifted form zeroes its entries over padding, then adds
 * whole rows. */
VECTORIZED static void col2im(const conv_dims* d, float* restrict dcols, ptrdiff_t ld,
                              float* restrict dx_QYZ)
{
    const ptrdiff_t U = d->U, W = d->W, s = d->stride, p = d->padding;
    for (ptrdiff_t q = 0; q < d->Q; q++) {
        float* dx_YZ = dx_QYZ + q * d->Y * d->Z;
        for (ptrdiff_t j = 0; j < d->J; j++) {
            for (ptrdiff_t l = 0; l < d->L; l++) {
                float* row_UW = dcols + ((q * d->J + j) * d->L + l) * ld;
                ptrdiff_t lo, hi, u_lo, u_hi, k0, k1;
                inside(d, l, &lo, &hi);
                if (is_shifted(d)) {
                    const ptrdiff_t shift = shifted_span(d, j, l, &u_lo, &u_hi, &k0, &k1);
                    zero_edges(W, lo, hi, u_lo, u_hi, row_UW);
                    for (ptrdiff_t k = k0; k < k1; k++) dx_YZ[k + shift] += row_UW[k];
                    continue;
                }
                for (ptrdiff_t u = 0; u < U; u++) {
                    const ptrdiff_t y = u * s + j - p;
                    if (y < 0 || y >= d->Y) continue;
                    const ptrdiff_t at = y * d->Z + l - p;  // dx_YZ[at + w s]
                    for (ptrdiff_t w = lo; w < hi; w++) dx_YZ[at + w * s] += row_UW[u * W + w];
                }
            }
        }
    }
}

static int is_pointwise(const conv_dims* d)
{
    return d->J == 1 && d->L == 1 && d->stride == 1 && d->padding == 0;
}

/* The team for a conv of B images on `rung`: whole images per thread (see the top), else 1
 * and the rung's GEMM splits each product. */
static int image_team(int rung, int threads, const conv_dims* d)
{
#ifndef _OPENMP
    threads = 1;
#endif
    const double muladds = (double)d->B * d->F * d->U * d->W * d->Q * d->J * d->L;
    if (rung != GEMM_THREADS || threads < 2 || d->B < threads
        || muladds < (double)threads * GEMM_MIN_MULADDS_PER_THREAD) return 1;
    return threads;
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* y_F(UW) (+)= wb_FK @ cols_K(UW) as plain products. Rung 3's tile is GEMM_NR columns wide, so
 * the last UW % GEMM_NR columns (4 of the targets' 196) would cost a whole tile: where F fills
 * whole tiles they are the product transposed instead, tail_(UW % NR)F = cols[:, tail]^T @
 * wbt_KF, scattered into y (6% of the conv's time at the targets' layer). */
static int product(int rung, int threads, ptrdiff_t F, ptrdiff_t UW, ptrdiff_t K, const float* wb,
                   const float* wbt, view cols, float* y_FUW, int accumulate, float* tail)
{
    const ptrdiff_t edge = F % GEMM_NR == 0 ? UW % GEMM_NR : 0, N = UW - edge;
    if (gemm(rung, F, N, K, (view){wb, K, 1}, cols, y_FUW, UW, accumulate, threads)) return -1;
    if (!edge) return 0;
    view tail_cols = {cols.p + N, 1, cols.rs};
    if (gemm(rung, edge, F, K, tail_cols, (view){wbt, F, 1}, tail, F, 0, threads)) return -1;
    for (ptrdiff_t f = 0; f < F; f++) {
        for (ptrdiff_t e = 0; e < edge; e++) {
            y_FUW[f * UW + N + e] = (accumulate ? y_FUW[f * UW + N + e] : 0.0f) + tail[e * F + f];
        }
    }
    return 0;
}

/* The bias rides in the product: cols gets a last row of ones and w a last column of b, so
 * y_F(UW) = [w | b] @ [cols; 1] needs no pass of its own (filling y with b first, then adding
 * the product, wrote and read y once more: a tenth of the conv's time at the targets' layer).
 * Pointwise, cols is x itself, which has no row to spare: y starts as b, then += w @ x. */
int conv2d_fwd(int rung, int threads, conv_dims d, const float* x_BQYZ, const float* w_FQJL,
               const float* b_F, float* y_BFUW)
{
    const ptrdiff_t QJL = d.Q * d.J * d.L, UW = d.U * d.W, QYZ = d.Q * d.Y * d.Z;
    const int team = image_team(rung, threads, &d), pointwise = is_pointwise(&d);
    const int gemm_rung = team > 1 ? GEMM_BLOCKED : rung;
    const ptrdiff_t K = pointwise ? QJL : QJL + 1, ld = whole_lines(UW);  // cols: K rows of ld
    const ptrdiff_t wbs = whole_lines(2 * d.F * K);  // wb and wbt, then work on a line
    // wb (F, K) and its transpose wbt (K, F); per thread, cols (K, ld) and a tail (NR, F)
    const ptrdiff_t per_thread = (pointwise ? 0 : K * ld) + GEMM_NR * d.F;
    float* wb = aligned_alloc(64, (wbs + team * per_thread) * sizeof(float));
    if (!wb) return -1;
    float *wbt = wb + d.F * K, *work = wb + wbs;
    for (ptrdiff_t f = 0; f < d.F; f++) {
        for (ptrdiff_t k = 0; k < K; k++) {
            wb[f * K + k] = wbt[k * d.F + f] = k < QJL ? w_FQJL[f * QJL + k] : b_F[f];
        }
    }
    for (ptrdiff_t i = 0; !pointwise && i < team * UW; i++) {
        work[(i / UW) * per_thread + QJL * ld + i % UW] = 1.0f;  // each cols' row of ones
    }
    int failed = 0;
#pragma omp parallel for num_threads(team) if (team > 1) schedule(dynamic) reduction(| : failed)
    for (ptrdiff_t b = 0; b < d.B; b++) {
        const float* x_QYZ = x_BQYZ + b * QYZ;
        float* cols = work + thread_id() * per_thread;  // (K, ld), then the tail (NR, F)
        float* y_FUW = y_BFUW + b * d.F * UW;
        if (!pointwise) im2col(&d, x_QYZ, ld, cols);
        for (ptrdiff_t f = 0; pointwise && f < d.F; f++) {
            for (ptrdiff_t k = 0; k < UW; k++) y_FUW[f * UW + k] = b_F[f];
        }
        view cols_v = pointwise ? (view){x_QYZ, UW, 1} : (view){cols, ld, 1};
        failed |= product(gemm_rung, threads, d.F, UW, K, wb, wbt, cols_v, y_FUW, pointwise,
                          cols + per_thread - GEMM_NR * d.F) != 0;
    }
    free(wb);
    return failed ? -1 : 0;
}

int conv2d_bwd(int rung, int threads, conv_dims d, const float* x_BQYZ, const float* w_FQJL,
               const float* dy_BFUW, float* dx_BQYZ, float* dw_FQJL, float* db_F)
{
    const ptrdiff_t QJL = d.Q * d.J * d.L, UW = d.U * d.W, QYZ = d.Q * d.Y * d.Z;
    const int team = image_team(rung, threads, &d), pointwise = is_pointwise(&d);
    const int gemm_rung = team > 1 ? GEMM_BLOCKED : rung;
    // each thread's cols and dcols (QJL, ld), unless pointwise, and its share of dw (F, QJL)
    const ptrdiff_t ld = pointwise ? UW : whole_lines(UW);
    const ptrdiff_t per_thread = (pointwise ? 0 : 2 * QJL * ld) + d.F * QJL;
    float* work = malloc((size_t)team * per_thread * sizeof(float));
    if (!work) return -1;
    if (!pointwise) memset(dx_BQYZ, 0, d.B * QYZ * sizeof(float));  // col2im adds into it
    int failed = 0;
#pragma omp parallel num_threads(team) if (team > 1) reduction(| : failed)
    {
        float* cols = work + thread_id() * per_thread;           // (QJL, ld)
        float* dcols = cols + (pointwise ? 0 : QJL * ld);        // (QJL, ld)
        float* dw_mine = cols + (pointwise ? 0 : 2 * QJL * ld);  // (F, QJL)
        int first = 1;
#pragma omp for schedule(static)
        for (ptrdiff_t b = 0; b < d.B; b++) {
            const float *x_QYZ = x_BQYZ + b * QYZ, *dy_FUW = dy_BFUW + b * d.F * UW;
            float* dx_QYZ = dx_BQYZ + b * QYZ;
            if (!pointwise) im2col(&d, x_QYZ, ld, cols);
            const float* cols_QJLUW = pointwise ? x_QYZ : cols;
            // dw += dy_F(UW) @ cols^T; dcols = w^T @ dy_F(UW), straight into dx when pointwise
            failed |= gemm(gemm_rung, d.F, QJL, UW, (view){dy_FUW, UW, 1},
                           (view){cols_QJLUW, 1, ld}, dw_mine, QJL, !first, threads) != 0;
            failed |= gemm(gemm_rung, QJL, UW, d.F, (view){w_FQJL, 1, QJL}, (view){dy_FUW, UW, 1},
                           pointwise ? dx_QYZ : dcols, ld, 0, threads) != 0;
            if (!pointwise) col2im(&d, dcols, ld, dx_QYZ);
            first = 0;
        }
        if (first) memset(dw_mine, 0, d.F * QJL * sizeof(float));  // a thread with no image
    }
    for (ptrdiff_t i = 0; i < d.F * QJL; i++) {
        float sum = 0.0f;
        for (int t = 0; t < team; t++) sum += work[t * per_thread + per_thread - d.F * QJL + i];
        dw_FQJL[i] = sum;
    }
    for (ptrdiff_t f = 0; f < d.F; f++) {  // db_F: dy summed over images and positions
        double sum = 0.0;
        for (ptrdiff_t b = 0; b < d.B; b++) sum += sum_f32(UW, dy_BFUW + (b * d.F + f) * UW);
        db_F[f] = (float)sum;
    }
    free(work);
    return failed ? -1 : 0;
}
