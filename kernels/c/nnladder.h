/* nnladder C rung: the kernels behind the extension module nnladder_c (kernels/c/module.c).
 *
 * Everything here is plain C on float32 buffers that the module has already checked: right
 * sizes, C-contiguous, aligned. Nothing here touches Python, so every call runs with the GIL
 * released. Shapes use the letters of harness/contract.py's DIMS.
 *
 * The GEMM ladder, one numbered file per rung (in the manner of siboehm/SGEMM_CUDA):
 *   gemm_1_naive.c    i-j-k, one dot product per output
 *   gemm_2_loops.c    i-k-j: the inner loop walks rows of B and C, so it streams and vectorizes
 *   gemm_3_blocked.c  BLIS-style blocking, packed panels and a 6x16 AVX2/FMA micro-kernel
 *                     picked at run time (scalar micro-kernel on CPUs without AVX2/FMA)
 *   gemm_4_threads.c  rung 3 on each thread's share of c, OpenMP threads
 * gemm.c dispatches to a rung and runs attention's batched products; ops.c has the ops of the
 * MLP and attention, nn.c those of the transformer and the CNN (gelu, layernorm, embedding...),
 * conv.c the convolution (im2col to the rung's GEMM), pool.c the max pool;
 * mlp.c runs the whole MLP model, forward and backward, in one call each.
 * peaks.c measures the machine's ceilings: its FMA peak and the bandwidth of each cache level.
 */
#ifndef NNLADDER_H
#define NNLADDER_H

#include <stddef.h>
#include <stdint.h>

/* A matrix operand seen through strides: element (r, c) is at p[r * rs + c * cs]. A transposed
 * row-major array is the same memory with rs and cs swapped, so no rung needs a copy for it. */
typedef struct {
    const float* p;
    ptrdiff_t rs, cs;
} view;

enum { GEMM_NAIVE = 1, GEMM_LOOPS = 2, GEMM_BLOCKED = 3, GEMM_THREADS = 4 };

/* c_MN = a_MK @ b_KN (+ c_MN when accumulate), row-major c with row stride ldc.
 * threads: the team size for rung 4 (the others run on one). -> 0, or -1 when out of memory. */
int gemm(int rung, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_MK, view b_KN, float* c_MN,
         ptrdiff_t ldc, int accumulate, int threads);

/* One product's arguments, for gemm_pair. */
typedef struct {
    ptrdiff_t M, N, K;
    view a_MK, b_KN;
    float* c_MN;
    ptrdiff_t ldc;
    int accumulate;
} gemm_call;

/* Two independent products, such as a backward's da and db. -> 0, or -1 when out of memory. */
int gemm_pair(int rung, gemm_call first, gemm_call second, int threads);

/* X products at once: a and b advance by a_stride and b_stride floats, c_XMN is contiguous. */
int gemm_batched(int rung, ptrdiff_t X, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_XMK,
                 ptrdiff_t a_stride, view b_XKN, ptrdiff_t b_stride, float* c_XMN, int threads);

void gemm_naive(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_MK, view b_KN, float* c_MN,
                ptrdiff_t ldc, int accumulate);
void gemm_loops(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_MK, view b_KN, float* c_MN,
                ptrdiff_t ldc, int accumulate);
int gemm_blocked(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_MK, view b_KN, float* c_MN,
                 ptrdiff_t ldc, int accumulate);
int gemm_threads(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, view a_MK, view b_KN, float* c_MN,
                 ptrdiff_t ldc, int accumulate, int threads);

/* Rung 3's register tile: GEMM_MR rows x GEMM_NR columns of c per micro-kernel call. Rung 4
 * cuts c between threads on these boundaries so no thread computes a padded tile it need not. */
#define GEMM_MR 6
#define GEMM_NR 16

/* Rung 4 gives a thread at least this much work (2M multiply-adds, ~30 us on one AVX2 core),
 * else the product (or the fused model, mlp.c) runs on fewer threads. A team costs
 * microseconds to wake and join on an idle machine, so the MNIST model (7M multiply-adds a
 * forward) is worth splitting (README, "Measured figures": its step on 1 and 2 threads). On a
 * machine shared with other work a team member that is descheduled holds up the join for a
 * time slice (the same section: an epoch beside two busy processes). Run on one thread there
 * (threadpool_limits(1), OMP_NUM_THREADS=1). */
#define GEMM_MIN_MULADDS_PER_THREAD (1 << 21)

/* The micro-kernel in use: "avx2" (AVX2 + FMA, when the CPU has them) or "scalar".
 * gemm_set_kernel returns 0, or -1 for a name this CPU cannot run. */
const char* gemm_kernel(void);
int gemm_set_kernel(const char* name);
int gemm_max_threads(void);

/* ---- the MLP's and attention's other ops (ops.c) --------------------------------------------- */
void add_f32(ptrdiff_t n, const float* a, const float* b, float* c);
void relu_fwd(ptrdiff_t n, const float* x, float* y);
void relu_bwd(ptrdiff_t n, const float* x, const float* dy, float* dx);
void bias_rows(ptrdiff_t B, ptrdiff_t O, const float* b_O, float* y_BO);
void column_sums(ptrdiff_t B, ptrdiff_t O, const float* dy_BO, float* db_O);
void softmax_fwd(ptrdiff_t X, ptrdiff_t T, ptrdiff_t S, const float* x_XTS, float* y_XTS,
                 int causal, float scale);
void softmax_bwd(ptrdiff_t rows, ptrdiff_t S, const float* y, const float* dy, float* dx,
                 float scale);
double softmax_xent_fwd(ptrdiff_t B, ptrdiff_t C, const float* logits_BC,
                        const int64_t* labels_B, float* probs_BC);
void softmax_xent_bwd(ptrdiff_t B, ptrdiff_t C, const float* probs_BC,
                      const int64_t* labels_B, float* dlogits_BC, float inv_B);
/* The optimizer updates split p between up to `threads` threads from UPDATE_MIN_PER_THREAD
 * elements each (the MNIST model's w0 has 100,352; its others stay on one thread). */
#define UPDATE_MIN_PER_THREAD (1 << 15)
void sgd_update(ptrdiff_t n, float* p, const float* g, float lr, int threads);
void momentum_update(ptrdiff_t n, float* p, const float* g, float* v, float lr, float mu,
                     int threads);
void adam_update(ptrdiff_t n, float* p, const float* g, float* m, float* v, long t, double lr,
                 double beta1, double beta2, double eps, int threads);

/* Loops that gcc vectorizes, built for baseline x86-64 (SSE2, all the build asks for) and for
 * AVX2 + FMA, the clone this CPU runs picked when the module loads (an ifunc). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTORIZED __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VECTORIZED
#endif

/* ---- the transformer's and the CNN's other ops (nn.c); elementwise ones over n entries ----- */
#define LN_EPS 1e-5f  // layernorm's epsilon: the contract's, harness/signatures.py's LN_EPS
void gelu_fwd(ptrdiff_t n, const float* x, float* y);
void gelu_bwd(ptrdiff_t n, const float* x, const float* dy, float* dx);
void sigmoid_fwd(ptrdiff_t n, const float* x, float* y);
void sigmoid_bwd(ptrdiff_t n, const float* y, const float* dy, float* dx);
void tanh_fwd(ptrdiff_t n, const float* x, float* y);
void tanh_bwd(ptrdiff_t n, const float* y, const float* dy, float* dx);
double mse_fwd(ptrdiff_t n, const float* y, const float* target);
float sum_f32(ptrdiff_t n, const float* x);  // in float, LANES partial sums (vectorized)
void mse_bwd(ptrdiff_t n, const float* y, const float* target, float* dy);
void layernorm_fwd(ptrdiff_t R, ptrdiff_t D, const float* x_RD, const float* gamma_D,
                   const float* beta_D, float* y_RD, float* mean_R, float* rstd_R);
void layernorm_bwd(ptrdiff_t R, ptrdiff_t D, const float* x_RD, const float* gamma_D,
                   const float* mean_R, const float* rstd_R, const float* dy_RD, float* dx_RD,
                   float* dgamma_D, float* dbeta_D);
void transpose_f32(ptrdiff_t M, ptrdiff_t K, const float* a_MK, float* at_KM);
void embedding_fwd(ptrdiff_t R, ptrdiff_t D, const int64_t* tokens_R, const float* w_VD,
                   float* x_RD);
void embedding_bwd(ptrdiff_t R, ptrdiff_t V, ptrdiff_t D, const int64_t* tokens_R,
                   const float* dx_RD, float* dw_VD);

/* ---- convolution and pooling, NCHW (conv.c, pool.c) --------------------------------------- */
/* A conv's sizes: x_BQYZ, w_FQJL, y_BFUW with U = (Y + 2 padding - J) / stride + 1 (W alike),
 * as the module checked. */
typedef struct {
    ptrdiff_t B, Q, Y, Z, F, J, L, U, W, stride, padding;
} conv_dims;
/* y = x cross-correlated with w, plus b: per image y_F(UW) = w_F(QJL) @ cols_(QJL)(UW) on GEMM
 * `rung`. The backward: dw = sum over images of dy_F(UW) @ cols^T, dcols = w^T @ dy_F(UW)
 * scattered back into dx (col2im), db = sums of dy. -> 0, or -1 when out of memory. */
int conv2d_fwd(int rung, int threads, conv_dims d, const float* x_BQYZ, const float* w_FQJL,
               const float* b_F, float* y_BFUW);
int conv2d_bwd(int rung, int threads, conv_dims d, const float* x_BQYZ, const float* w_FQJL,
               const float* dy_BFUW, float* dx_BQYZ, float* dw_FQJL, float* db_F);
/* The max of each POOL x POOL window, stride POOL, over `images` planes (B * Q) of Y x Z; the
 * backward routes dy to the first max of each window in row-major order. */
#define POOL 2  // harness/signatures.py's POOL
void maxpool2d_fwd(ptrdiff_t images, ptrdiff_t Y, ptrdiff_t Z, const float* x, float* y);
void maxpool2d_bwd(ptrdiff_t images, ptrdiff_t Y, ptrdiff_t Z, const float* x, const float* dy,
                   float* dx);

/* ---- the MLP model fused (mlp.c): layer l maps width[l] features to width[l + 1] ------------ */
/* Forward: h[l] (B, width[l + 1]) = relu(in @ w[l] + b[l]) for the L - 1 hidden layers (in is
 * x_BI, then h[l - 1]); the last layer's logits go through softmax cross-entropy into probs_BC
 * and *loss. -> 0, or -1 when out of memory. */
int mlp_fwd(int rung, int threads, ptrdiff_t B, int L, const ptrdiff_t* width,
            const float* const* w, const float* const* b, const float* x_BI, float* const* h,
            const int64_t* labels_B, float* probs_BC, double* loss);
/* Backward from the forward's h and probs_BC: dw[l] (width[l], width[l + 1]) and db[l] of the
 * mean loss; the first layer's input gradient is not computed. -> 0, or -1 out of memory. */
int mlp_bwd(int rung, int threads, ptrdiff_t B, int L, const ptrdiff_t* width,
            const float* const* w, const float* x_BI, const float* const* h,
            const float* probs_BC, const int64_t* labels_B, float* const* dw, float* const* db);

/* ---- the machine's ceilings (peaks.c) ------------------------------------------------------ */
enum { PEAK_FMA = 0, PEAK_READ = 1, PEAK_UPDATE = 2 };
/* The best rate of `kind` on a team of `threads` over about `seconds`: FLOP/s of the team for
 * PEAK_FMA (bytes unused); bytes moved a second for PEAK_READ (each thread sums its own buffer
 * of `bytes`, rounded up to whole KiB) and PEAK_UPDATE (y += x over its two halves: 1.5 x
 * bytes moved a pass). isa: "auto" (the widest this CPU runs), "avx512", "avx2" or "generic".
 * -> the rate, -1 when out of memory, -2 for an isa this CPU does not run (peak_isa: NULL). */
double peak_rate(int kind, const char* isa, ptrdiff_t bytes, int threads, double seconds);
const char* peak_isa(const char* isa);

#endif
