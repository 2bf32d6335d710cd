/* The ops around the products: elementwise, bias, softmax, cross-entropy, optimizer updates.
 *
 * Plain loops on contiguous float32 that gcc vectorizes at -O3; exp and log are libm's. These
 * are memory-bound, so they run on one thread: at the sizes of the workloads a team's wake-up
 * would cost more than the loop. The exception is the optimizer updates of large parameters
 * on rung 4 (see update_team). Sums that feed a loss are kept in double.
 */
#include <math.h>

#include "nnladder.h"

void add_f32(ptrdiff_t n, const float* a, const float* b, float* c)
{
    for (ptrdiff_t i = 0; i < n; i++) c[i] = a[i] + b[i];
}

void relu_fwd(ptrdiff_t n, const float* x, float* y)
{
    for (ptrdiff_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_bwd(ptrdiff_t n, const float* x, const float* dy, float* dx)
{
    /* dy[i] is read whether or not it is kept: a load under the condition is one gcc will not
     * vectorize, and the loop ran scalar with a branch per element (mispredicted half the time
     * on a hidden layer, 10x slower per element than sgd_update). */
    for (ptrdiff_t i = 0; i < n; i++) {
        const float dy_i = dy[i];
        dx[i] = x[i] > 0.0f ? dy_i : 0.0f;
    }
}

// y_BO[b, :] = b_O for every row: a linear layer's output starts as its bias, then += x @ w.
void bias_rows(ptrdiff_t B, ptrdiff_t O, const float* b_O, float* y_BO)
{
    for (ptrdiff_t b = 0; b < B; b++) {
        for (ptrdiff_t o = 0; o < O; o++) y_BO[b * O + o] = b_O[o];
    }
}

// db_O = sum over B of dy_BO, row by row so the inner loop is unit-stride.
void column_sums(ptrdiff_t B, ptrdiff_t O, const float* dy_BO, float* db_O)
{
    for (ptrdiff_t o = 0; o < O; o++) db_O[o] = 0.0f;
    for (ptrdiff_t b = 0; b < B; b++) {
        for (ptrdiff_t o = 0; o < O; o++) db_O[o] += dy_BO[b * O + o];
    }
}

/* y = softmax over S of scale * x. With causal, row t keeps s <= t (query t sees keys up to
 * itself) and the rest get exactly 0. Row t = 0 always keeps s = 0, so no row is empty. */
void softmax_fwd(ptrdiff_t X, ptrdiff_t T, ptrdiff_t S, const float* x_XTS, float* y_XTS,
                 int causal, float scale)
{
    for (ptrdiff_t row = 0; row < X * T; row++) {
        const float* x_S = x_XTS + row * S;  // (S,)
        float* y_S = y_XTS + row * S;        // (S,)
        const ptrdiff_t t = row % T;
        const ptrdiff_t kept = causal ? (t + 1 < S ? t + 1 : S) : S;
        float max = -INFINITY;
        for (ptrdiff_t s = 0; s < kept; s++) max = fmaxf(max, scale * x_S[s]);
        float sum = 0.0f;
        for (ptrdiff_t s = 0; s < kept; s++) {
            y_S[s] = expf(scale * x_S[s] - max);
            sum += y_S[s];
        }
        const float inv = 1.0f / sum;
        for (ptrdiff_t s = 0; s < kept; s++) y_S[s] *= inv;
        for (ptrdiff_t s = kept; s < S; s++) y_S[s] = 0.0f;
    }
}

// dx = scale * y * (dy - <dy, y>) along each row of S: the softmax Jacobian applied to dy.
void softmax_bwd(ptrdiff_t rows, ptrdiff_t S, const float* y, const float* dy, float* dx,
                 float scale)
{
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float* y_S = y + r * S;    // (S,)
        const float* dy_S = dy + r * S;  // (S,)
        float* dx_S = dx + r * S;        // (S,)
        float dot = 0.0f;
        for (ptrdiff_t s = 0; s < S; s++) dot += dy_S[s] * y_S[s];
        for (ptrdiff_t s = 0; s < S; s++) dx_S[s] = scale * y_S[s] * (dy_S[s] - dot);
    }
}

// -> the sum over B of -log softmax(logits)[label] (the caller divides by its batch); probs_BC
// gets the softmax.
double softmax_xent_fwd(ptrdiff_t B, ptrdiff_t C, const float* logits_BC,
                        const int64_t* labels_B, float* probs_BC)
{
    double loss = 0.0;
    for (ptrdiff_t b = 0; b < B; b++) {
        const float* z_C = logits_BC + b * C;  // (C,)
        float* p_C = probs_BC + b * C;         // (C,)
        float max = z_C[0];
        for (ptrdiff_t c = 1; c < C; c++) max = fmaxf(max, z_C[c]);
        double sum = 0.0;
        for (ptrdiff_t c = 0; c < C; c++) {
            p_C[c] = expf(z_C[c] - max);
            sum += p_C[c];
        }
        const float inv = (float)(1.0 / sum);
        for (ptrdiff_t c = 0; c < C; c++) p_C[c] *= inv;
        loss += log(sum) - (double)(z_C[labels_B[b]] - max);
    }
    return loss;
}

// dlogits = (probs - onehot(labels)) * inv_B: the gradient of the mean loss over a batch of
// 1 / inv_B rows, of which these B may be a share.
void softmax_xent_bwd(ptrdiff_t B, ptrdiff_t C, const float* probs_BC,
                      const int64_t* labels_B, float* dlogits_BC, float inv_B)
{
    for (ptrdiff_t b = 0; b < B; b++) {
        for (ptrdiff_t c = 0; c < C; c++) dlogits_BC[b * C + c] = probs_BC[b * C + c] * inv_B;
        dlogits_BC[b * C + labels_B[b]] -= inv_B;
    }
}

/* A team for an update of n elements: at most `threads`, each with UPDATE_MIN_PER_THREAD. Each
 * member takes one contiguous share (schedule(static)), so on the MNIST model's w0 each thread
 * updates about the rows of the gradient it computed (mlp.c), which are still in its cache. */
static int update_team(ptrdiff_t n, int threads)
{
    const ptrdiff_t most = n / UPDATE_MIN_PER_THREAD;
    int team = threads;
    if (team > most) team = (int)most;
    return team < 1 ? 1 : team;
}

void sgd_update(ptrdiff_t n, float* p, const float* g, float lr, int threads)
{
    const int team = update_team(n, threads);
#pragma omp parallel for num_threads(team) if (team > 1) schedule(static)
    for (ptrdiff_t i = 0; i < n; i++) p[i] -= lr * g[i];
}

void momentum_update(ptrdiff_t n, float* p, const float* g, float* v, float lr, float mu,
                     int threads)
{
    const int team = update_team(n, threads);
#pragma omp parallel for num_threads(team) if (team > 1) schedule(static)
    for (ptrdiff_t i = 0; i < n; i++) {
        v[i] = mu * v[i] + g[i];
        p[i] -= lr * v[i];
    }
}

/* Adam with bias correction. Both corrections fold into one step size, and eps is scaled so it
 * sits where the textbook puts it: lr * m_hat / (sqrt(v_hat) + eps), one divide per element.
 * 1 - beta is taken in double and rounded once: 1.0f - (float)beta subtracts two nearly equal
 * numbers, so float32's rounding of beta becomes the difference's error (v 1.3e-5 too small
 * relative for beta2 = 0.999, 1.7e-4 for 0.9999, against a bias correction taken in double). */
void adam_update(ptrdiff_t n, float* p, const float* g, float* m, float* v, long t, double lr,
                 double beta1, double beta2, double eps, int threads)
{
    const int team = update_team(n, threads);
    const double root = sqrt(1.0 - pow(beta2, (double)t));
    const float step = (float)(lr * root / (1.0 - pow(beta1, (double)t)));
    const float eps_hat = (float)(eps * root);
    const float b1 = (float)beta1, b2 = (float)beta2;
    const float one_minus_b1 = (float)(1.0 - beta1), one_minus_b2 = (float)(1.0 - beta2);
#pragma omp parallel for num_threads(team) if (team > 1) schedule(static)
    for (ptrdiff_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + one_minus_b1 * g[i];
        v[i] = b2 * v[i] + one_minus_b2 * g[i] * g[i];
        p[i] -= step * m[i] / (sqrtf(v[i]) + eps_hat);
    }
}
