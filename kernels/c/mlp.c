/* The MLP model fused: linear -> relu -> ... -> linear -> softmax cross-entropy, its forward in
 * one call and its backward in another (the contract lets an impl override a whole model).
 *
 * Composed from single ops, a training step of the 3-layer MLP is ~17 calls through Python,
 * each checking its arguments and allocating its output. Fused, it is two, and the backward
 * skips the one product nobody reads: the gradient of the first layer's input, dx = dz @ w^T,
 * which for 784-128-64-10 is 12.8 of the step's 42 MFLOP (autograd skips it likewise, since the
 * input needs no gradient). The products go through gemm() at the caller's rung, so every rung
 * of the GEMM ladder still shows what its idea buys.
 *
 * On rung 4 the threads split the model, not each product. The batch's rows are independent
 * until the weight gradients sum over them, so:
 *   forward   each thread takes a slab of rows through every layer (no barrier);
 *   backward  each thread carries its slab's dz down through the layers; the team meets once;
 *             then each thread makes its share of the rows of every dw (and some of the db).
 * Splitting each product instead left everything between the big products (the small layers,
 * relu, softmax, bias, sums) on one thread while the other spun: on the MNIST step the second
 * thread did useful work a third of the time.
 *
 * Layer l maps width[l] features to width[l + 1]; there are L layers and L + 1 widths.
 */
#include <stdlib.h>

#include "nnladder.h"

#ifdef _OPENMP
#include <omp.h>
static int team_rank(void) { return omp_get_thread_num(); }
static int team_count(void) { return omp_get_num_threads(); }
#else
static int team_rank(void) { return 0; }
static int team_count(void) { return 1; }
#endif

/* [lo, hi): member t's share of n rows out of a team of `team`, as even as rows allow. (Cut on
 * the micro-kernel's MR = 6 rows instead, 64 rows are 30 + 34, and the second slab's 6 tiles
 * take longer than the 5 tiles and 2 rows of a 32-row slab.) */
static void share(ptrdiff_t n, int t, int team, ptrdiff_t* lo, ptrdiff_t* hi)
{
    *lo = n * t / team;
    *hi = n * (t + 1) / team;
}

/* Rung 4: a thread per GEMM_MIN_MULADDS_PER_THREAD of the forward's multiply-adds (the backward
 * has about as many), at most `threads` and at most one per MR rows of the batch. Other rungs:
 * one. The 784-128-64-10 model at batch 64 (7M multiply-adds) gets up to 3 (2 on 2 cores), the
 * digits' 64-32-10 one. */
static int team_for(int rung, int threads, ptrdiff_t B, int L, const ptrdiff_t* width)
{
    if (rung != GEMM_THREADS) return 1;
    double muladds = 0.0;
    for (int l = 0; l < L; l++) muladds += (double)B * (double)width[l] * (double)width[l + 1];
    const double most = muladds / GEMM_MIN_MULADDS_PER_THREAD;
    const ptrdiff_t tiles = (B + GEMM_MR - 1) / GEMM_MR;
    int team = threads;
    if (team > most) team = (int)most;
    if (team > tiles) team = (int)tiles;
    return team < 1 ? 1 : team;
}

/* How each product runs: a member of a team runs rung 3 on its own thread; without a team (a
 * batch too small to split, or another rung) the product runs at the caller's rung, and rung 4
 * still splits it between threads. */
typedef struct {
    int rung, threads;
} product_cfg;

static product_cfg products_for(int rung, int threads, int team)
{
    return team > 1 ? (product_cfg){GEMM_BLOCKED, 1} : (product_cfg){rung, threads};
}

// Rows [lo, hi) of the batch through every layer; *loss_sum gets the sum of their losses.
static int fwd_rows(product_cfg run, ptrdiff_t lo, ptrdiff_t hi, int L, const ptrdiff_t* width,
                    const float* const* w, const float* const* b, const float* x_BI,
                    float* const* h, float* logits_BC, const int64_t* labels_B,
                    float* probs_BC, double* loss_sum)
{
    const ptrdiff_t rows = hi - lo, C = width[L];
    // Bt: this thread's slab of the batch's rows (as impls/sharded.py's p marks a rank's block)
    const float* in_BtI = x_BI + lo * width[0];
    for (int l = 0; l < L; l++) {
        const ptrdiff_t I = width[l], O = width[l + 1];
        float* out_BtO = (l < L - 1 ? h[l] : logits_BC) + lo * O;
        bias_rows(rows, O, b[l], out_BtO);  // then out += in @ w
        if (gemm(run.rung, rows, O, I, (view){in_BtI, I, 1}, (view){w[l], O, 1}, out_BtO, O, 1,
                 run.threads)) {
            return -1;
        }
        if (l < L - 1) relu_fwd(rows * O, out_BtO, out_BtO);
        in_BtI = out_BtO;
    }
    *loss_sum = softmax_xent_fwd(rows, C, logits_BC + lo * C, labels_B + lo, probs_BC + lo * C);
    return 0;
}

int mlp_fwd(int rung, int threads, ptrdiff_t B, int L, const ptrdiff_t* width,
            const float* const* w, const float* const* b, const float* x_BI, float* const* h,
            const int64_t* labels_B, float* probs_BC, double* loss)
{
    const ptrdiff_t C = width[L];
    float* logits_BC = malloc((size_t)(B > 0 && C > 0 ? B * C : 1) * sizeof(float));
    if (!logits_BC) return -1;
    const int team = team_for(rung, threads, B, L, width);
    const product_cfg run = products_for(rung, threads, team);
    double loss_sum = 0.0;
    int failed = 0;
#pragma omp parallel num_threads(team) if (team > 1) reduction(+ : loss_sum) reduction(| : failed)
    {
        ptrdiff_t lo, hi;
        share(B, team_rank(), team_count(), &lo, &hi);
        double slab_loss = 0.0;
        failed |= lo < hi && fwd_rows(run, lo, hi, L, width, w, b, x_BI, h, logits_BC, labels_B,
                                      probs_BC, &slab_loss) != 0;
        loss_sum += slab_loss;
    }
    *loss = loss_sum / (double)B;
    free(logits_BC);
    return failed ? -1 : 0;
}

/* Rows [lo, hi) of every layer's dz, from the top down: dz[L - 1] from the loss, then each
 * dz[l - 1] = (dz[l] @ w[l]^T) where layer l - 1's relu was on (h > 0), else 0. */
static int dz_rows(product_cfg run, ptrdiff_t B, ptrdiff_t lo, ptrdiff_t hi, int L,
                   const ptrdiff_t* width, const float* const* w, const float* const* h,
                   const float* probs_BC, const int64_t* labels_B, float* const* dz)
{
    const ptrdiff_t rows = hi - lo, C = width[L];
    softmax_xent_bwd(rows, C, probs_BC + lo * C, labels_B + lo, dz[L - 1] + lo * C,
                     1.0f / (float)B);
    for (int l = L - 1; l > 0; l--) {
        const ptrdiff_t I = width[l], O = width[l + 1];
        float* dx_BtI = dz[l - 1] + lo * I;
        if (gemm(run.rung, rows, I, O, (view){dz[l] + lo * O, O, 1}, (view){w[l], 1, O}, dx_BtI,
                 I, 0, run.threads)) {
            return -1;
        }
        relu_bwd(rows * I, h[l - 1] + lo * I, dx_BtI, dx_BtI);
    }
    return 0;
}

/* Member t's share of the weight gradients: rows [i0, i1) of each dw[l] = in^T @ dz[l]
 * (contracting over B), and the whole of db[l] (column sums of dz[l]) for every l it is dealt. */
static int dw_share(product_cfg run, ptrdiff_t B, int t, int team, int L, const ptrdiff_t* width,
                    const float* x_BI, const float* const* h, float* const* dz,
                    float* const* dw, float* const* db)
{
    for (int l = 0; l < L; l++) {
        const ptrdiff_t I = width[l], O = width[l + 1];
        const float* in_BI = l ? h[l - 1] : x_BI;
        ptrdiff_t i0, i1;
        share(I, t, team, &i0, &i1);
        if (gemm(run.rung, i1 - i0, O, B, (view){in_BI + i0, 1, I}, (view){dz[l], O, 1},
                 dw[l] + i0 * O, O, 0, run.threads)) {
            return -1;
        }
        if (l % team == t) column_sums(B, O, dz[l], db[l]);
    }
    return 0;
}

int mlp_bwd(int rung, int threads, ptrdiff_t B, int L, const ptrdiff_t* width,
            const float* const* w, const float* x_BI, const float* const* h,
            const float* probs_BC, const int64_t* labels_B, float* const* dw, float* const* db)
{
    // dz[l] (B, width[l + 1]): every layer's, since the weight gradients read them all
    ptrdiff_t floats = 0;
    for (int l = 1; l <= L; l++) floats += B * width[l];
    float** dz = malloc((size_t)L * sizeof *dz);
    float* dz_all = malloc((size_t)(floats ? floats : 1) * sizeof(float));
    if (!dz || !dz_all) {
        free(dz);
        free(dz_all);
        return -1;
    }
    float* next = dz_all;
    for (int l = 0; l < L; l++) {
        dz[l] = next;
        next += B * width[l + 1];
    }
    const int team = team_for(rung, threads, B, L, width);
    const product_cfg run = products_for(rung, threads, team);
    int failed = 0;
#pragma omp parallel num_threads(team) if (team > 1) reduction(| : failed)
    {
        const int t = team_rank(), members = team_count();
        ptrdiff_t lo, hi;
        share(B, t, members, &lo, &hi);
        failed |= lo < hi && dz_rows(run, B, lo, hi, L, width, w, h, probs_BC, labels_B, dz) != 0;
#pragma omp barrier
        failed |= dw_share(run, B, t, members, L, width, x_BI, h, dz, dw, db) != 0;
    }
    free(dz);
    free(dz_all);
    return failed ? -1 : 0;
}
