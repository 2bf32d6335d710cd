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
 * Layer l maps width[l] features to width[l + 1]; there are L layers and L + 1 widths.
 */
#include <stdlib.h>

#include "nnladder.h"

int mlp_fwd(int rung, int threads, ptrdiff_t B, int L, const ptrdiff_t* width,
            const float* const* w, const float* const* b, const float* x_BI, float* const* h,
            const int64_t* labels_B, float* probs_BC, double* loss)
{
    const ptrdiff_t C = width[L];
    float* logits_BC = malloc((size_t)(B > 0 && C > 0 ? B * C : 1) * sizeof(float));
    if (!logits_BC) return -1;
    const float* in_BI = x_BI;
    int failed = 0;
    for (int l = 0; l < L && !failed; l++) {
        const ptrdiff_t I = width[l], O = width[l + 1];
        float* out_BO = l < L - 1 ? h[l] : logits_BC;
        bias_rows(B, O, b[l], out_BO);  // then out += in @ w
        failed = gemm(rung, B, O, I, (view){in_BI, I, 1}, (view){w[l], O, 1}, out_BO, O, 1,
                      threads);
        if (l < L - 1) relu_fwd(B * O, out_BO, out_BO);
        in_BI = out_BO;
    }
    if (!failed) *loss = softmax_xent_fwd(B, C, logits_BC, labels_B, probs_BC);
    free(logits_BC);
    return failed ? -1 : 0;
}

int mlp_bwd(int rung, int threads, ptrdiff_t B, int L, const ptrdiff_t* width,
            const float* const* w, const float* x_BI, const float* const* h,
            const float* probs_BC, const int64_t* labels_B, float* const* dw, float* const* db)
{
    // Two scratch buffers of the widest layer output: dz of this layer's output, and of the
    // layer below's (B, width[l + 1]) and (B, width[l]).
    ptrdiff_t widest = 1;
    for (int l = 1; l <= L; l++) widest = width[l] > widest ? width[l] : widest;
    float* dz_a = malloc((size_t)(B ? B : 1) * (size_t)widest * 2 * sizeof(float));
    if (!dz_a) return -1;
    float *dz_b = dz_a + B * widest, *dz_BO = dz_a;
    int failed = 0;
    softmax_xent_bwd(B, width[L], probs_BC, labels_B, dz_BO);
    for (int l = L - 1; l >= 0 && !failed; l--) {
        const ptrdiff_t I = width[l], O = width[l + 1];
        const float* in_BI = l ? h[l - 1] : x_BI;
        // dw = in^T @ dz (contract over B); db = column sums of dz
        failed = gemm(rung, I, O, B, (view){in_BI, 1, I}, (view){dz_BO, O, 1}, dw[l], O, 0,
                      threads);
        column_sums(B, O, dz_BO, db[l]);
        if (l == 0 || failed) break;  // the input's gradient: not needed
        // dz of layer l - 1's output = (dz @ w^T) where its relu was on (h > 0), else 0
        float* dx_BI = dz_BO == dz_a ? dz_b : dz_a;
        failed = gemm(rung, B, I, O, (view){dz_BO, O, 1}, (view){w[l], 1, O}, dx_BI, I, 0,
                      threads);
        relu_bwd(B * I, h[l - 1], dx_BI, dx_BI);
        dz_BO = dx_BI;
    }
    free(dz_a);
    return failed ? -1 : 0;
}
