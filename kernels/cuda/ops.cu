// The network kernels: everything a training step or an attention block runs on the GPU
// besides the products (01..05). Elementwise kernels take one thread per element (launch:
// block OPS_BLOCK, grid ceil(n / OPS_BLOCK)); row-wise kernels take one block of ROW_THREADS
// per row and reduce across it through shared memory (launch: block ROW_THREADS, grid rows).
// Reductions here go through shared memory and __syncthreads alone (nn.cu's start with warp
// shuffles); tests/cuda_emu runs both on the CPU.
//
// Build alone: nvcc -arch=sm_90 --cubin ops.cu

constexpr int OPS_BLOCK = 256;
constexpr int ROW_THREADS = 128;  // a power of two: the tree reduction halves it
constexpr int COL_WIDTH = 32, COL_ROWS = 8;  // colsum's block: 32 columns x 8 row strides
constexpr float LOWEST = -3.402823466e+38f;  // -FLT_MAX, without <cfloat> (NVRTC has none)

// ---- reductions ---------------------------------------------------------------------------

// Sum (or max) of v over the block's ROW_THREADS threads; every thread gets the result.
// red: ROW_THREADS floats of shared memory, reused by consecutive calls.
__device__ float block_reduce(float v, float* red, bool take_max) {
  const int t = threadIdx.x;
  red[t] = v;
  __syncthreads();  // every thread's value is in before the tree reads it
  for (int half = ROW_THREADS / 2; half > 0; half /= 2) {
    if (t < half) red[t] = take_max ? fmaxf(red[t], red[t + half]) : red[t] + red[t + half];
    __syncthreads();  // one level complete before the next reads it
  }
  const float result = red[0];
  __syncthreads();  // everyone has read red[0] before a following call overwrites it
  return result;
}

// out[c] = sum over r of x[r, c]: the bias gradients. threadIdx.x picks the column, so a
// warp reads 32 consecutive floats of a row (coalesced); threadIdx.y strides down the rows,
// and the 8 partial sums meet in shared memory. Launch: block (32, 8), grid ceil(C / 32).
extern "C" __global__ void colsum(const float* x,  // (R, C)
                                  float* out,      // (C,)
                                  int R, int C) {
  __shared__ float part[COL_ROWS][COL_WIDTH];  // (row stride, column)
  const int col = blockIdx.x * COL_WIDTH + threadIdx.x;
  float sum = 0.0f;
  if (col < C)
    for (int r = threadIdx.y; r < R; r += COL_ROWS) sum += x[(long long)r * C + col];
  part[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();  // all partial sums are in before row 0 adds them up
  if (threadIdx.y == 0 && col < C) {
    float total = 0.0f;
    for (int i = 0; i < COL_ROWS; ++i) total += part[i][threadIdx.x];
    out[col] = total;
  }
}

// ---- elementwise ----------------------------------------------------------------------------

extern "C" __global__ void add_bias(float* y,           // (R, C), updated in place
                                    const float* bias,  // (C,)
                                    int R, int C) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < (long long)R * C) y[i] += bias[i % C];
}

extern "C" __global__ void add(const float* a, const float* b, float* c, int n) {  // (n,)
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

extern "C" __global__ void relu(const float* x, float* y, int n) {  // (n,)
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = fmaxf(x[i], 0.0f);
}

extern "C" __global__ void relu_bwd(const float* x, const float* dy, float* dx, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

// ---- row softmax, causal mask, and its backward ---------------------------------------------

// y = softmax over s of scale * x, one block per row of (X * T, S). With causal, row t keeps
// only s <= t (the rest get probability 0): the max and the sum run over the kept entries
// only, so no -inf is ever exponentiated.
extern "C" __global__ void softmax_rows(const float* x,  // (X * T, S)
                                        float* y,        // (X * T, S)
                                        int T, int S, float scale, int causal) {
  __shared__ float red[ROW_THREADS];
  const int t = blockIdx.x % T;
  const int kept = (causal && t + 1 < S) ? t + 1 : S;
  const float* x_row = x + (long long)blockIdx.x * S;
  float* y_row = y + (long long)blockIdx.x * S;
  float top = LOWEST;
  for (int s = threadIdx.x; s < kept; s += ROW_THREADS) top = fmaxf(top, scale * x_row[s]);
  top = block_reduce(top, red, true);
  float total = 0.0f;
  for (int s = threadIdx.x; s < kept; s += ROW_THREADS) total += expf(scale * x_row[s] - top);
  total = block_reduce(total, red, false);
  for (int s = threadIdx.x; s < S; s += ROW_THREADS)
    y_row[s] = s < kept ? expf(scale * x_row[s] - top) / total : 0.0f;
}

// dx = scale * y * (dy - sum_s dy * y), one block per row.
extern "C" __global__ void softmax_bwd_rows(const float* y,   // (X * T, S)
                                            const float* dy,  // (X * T, S)
                                            float* dx,        // (X * T, S)
                                            int S, float scale) {
  __shared__ float red[ROW_THREADS];
  const long long row = (long long)blockIdx.x * S;
  float dot = 0.0f;
  for (int s = threadIdx.x; s < S; s += ROW_THREADS) dot += dy[row + s] * y[row + s];
  dot = block_reduce(dot, red, false);
  for (int s = threadIdx.x; s < S; s += ROW_THREADS)
    dx[row + s] = scale * y[row + s] * (dy[row + s] - dot);
}

// ---- softmax cross-entropy ------------------------------------------------------------------

// probs = softmax(logits) and loss[b] = logsumexp(logits[b]) - logits[b, label], one block
// per row. A label outside [0, C) gives a NaN loss rather than a read out of bounds.
extern "C" __global__ void xent_rows(const float* logits,     // (B, C)
                                     const long long* labels,  // (B,)
                                     float* probs,             // (B, C)
                                     float* loss,              // (B,)
                                     int C) {
  __shared__ float red[ROW_THREADS];
  const float* z_row = logits + (long long)blockIdx.x * C;
  float* p_row = probs + (long long)blockIdx.x * C;
  float top = LOWEST;
  for (int c = threadIdx.x; c < C; c += ROW_THREADS) top = fmaxf(top, z_row[c]);
  top = block_reduce(top, red, true);
  float total = 0.0f;
  for (int c = threadIdx.x; c < C; c += ROW_THREADS) total += expf(z_row[c] - top);
  total = block_reduce(total, red, false);
  const float log_total = logf(total);
  for (int c = threadIdx.x; c < C; c += ROW_THREADS) p_row[c] = expf(z_row[c] - top - log_total);
  if (threadIdx.x == 0) {
    const long long label = labels[blockIdx.x];
    loss[blockIdx.x] = (label >= 0 && label < C) ? log_total - (z_row[label] - top)
                                                 : __int_as_float(0x7fc00000);
  }
}

// dlogits = (probs - onehot(label)) / B: the gradient of the mean loss. One thread per entry.
extern "C" __global__ void xent_bwd(const float* probs,      // (B, C)
                                    const long long* labels,  // (B,)
                                    float* dlogits,           // (B, C)
                                    int B, int C) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= B * C) return;
  const long long label = labels[i / C];
  const float hit = (i % C == label) ? 1.0f : 0.0f;
  dlogits[i] = (label >= 0 && label < C) ? (probs[i] - hit) / B : __int_as_float(0x7fc00000);
}

// ---- optimizer updates, in place ------------------------------------------------------------

extern "C" __global__ void sgd(float* p, const float* g, float lr, int n) {  // (n,)
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] -= lr * g[i];
}

extern "C" __global__ void momentum(float* p, const float* g, float* v, float lr, float mu,
                                    int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    v[i] = mu * v[i] + g[i];
    p[i] -= lr * v[i];
  }
}

// step and eps_hat carry Adam's two bias corrections, folded on the host in double:
// step = lr * sqrt(1 - beta2^t) / (1 - beta1^t), eps_hat = eps * sqrt(1 - beta2^t).
// one_minus_beta1/2 come from the host, taken in double and rounded once: 1.0f - beta2 in
// float32 is off by 1.3e-5 relative for beta2 = 0.999 (1.7e-4 for 0.9999), and v with it.
extern "C" __global__ void adam(float* p, const float* g, float* m, float* v, float beta1,
                                float beta2, float one_minus_beta1, float one_minus_beta2,
                                float step, float eps_hat, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    m[i] = beta1 * m[i] + one_minus_beta1 * g[i];
    v[i] = beta2 * v[i] + one_minus_beta2 * g[i] * g[i];
    p[i] -= step * m[i] / (sqrtf(v[i]) + eps_hat);
  }
}
