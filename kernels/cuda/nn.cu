// The kernels of the CNN and the transformer besides the products and ops.cu's: gelu, sigmoid
// and tanh with their backwards, the squared error, layernorm, transpose and the embedding.
// Elementwise kernels take one thread per element (launch: block 256, grid ceil(n / 256)).
// Reductions go through warp shuffles: a warp sums 32 values in five __shfl steps, without
// shared memory or a barrier, and a block of NN_WARPS warps then meets once in shared memory.
// Every block here is whole warps (the shuffles name all 32 lanes), and a warp leaves a
// kernel early only as a whole.
//
// Build alone: nvcc -arch=sm_90 --cubin nn.cu

constexpr int WARP = 32;  // lanes of a warp: warpSize, as a compile-time constant
constexpr int NN_WARPS = 8;  // warps of a reducing block: 256 threads
constexpr int LN_ROWS = 4;  // layernorm: rows of a block, one warp each (block 32 x 4)
constexpr int LNP_ROWS = 8;  // layernorm_dparams: row strides of a block (block 32 x 8)
constexpr int T_TILE = 32, T_ROWS = 8;  // transpose: a 32 x 32 tile, by a 32 x 8 block
constexpr float GELU_C = 0.7978845608028654f;  // sqrt(2 / pi), gelu's tanh form
constexpr float GELU_A = 0.044715f;

// ---- reductions ---------------------------------------------------------------------------

// Butterfly: after the five steps every lane holds the sum of all 32.
__device__ __forceinline__ float warp_sum_all(float v) {
  for (int lane_mask = WARP / 2; lane_mask > 0; lane_mask /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, lane_mask);
  return v;
}

// Sum of v over a block of NN_WARPS warps (blockDim.x = 256): each warp folds its 32 values
// onto lane 0 (__shfl_down: lane i takes lane i + offset's), lane 0 leaves them in part, and
// warp 0 folds those. Only thread 0 gets the total. part: NN_WARPS floats of shared memory.
__device__ float block_sum(float v, float* part) {
  for (int offset = WARP / 2; offset > 0; offset /= 2)
    v += __shfl_down_sync(0xffffffffu, v, offset);
  const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
  if (lane == 0) part[warp] = v;
  __syncthreads();  // every warp's sum is in before warp 0 reads them
  if (warp != 0) return 0.0f;
  v = lane < NN_WARPS ? part[lane] : 0.0f;
  for (int offset = WARP / 2; offset > 0; offset /= 2)
    v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// out[r] = sum over c of x[r, c], one block of 256 threads per row: a conv's bias gradient
// (F rows of B * U * W) and the total of the squared errors' partial sums.
extern "C" __global__ void row_sums(const float* x,  // (R, C)
                                    float* out,      // (R,)
                                    int C) {
  __shared__ float part[NN_WARPS];
  const float* row = x + (long long)blockIdx.x * C;
  float sum = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) sum += row[c];
  sum = block_sum(sum, part);
  if (threadIdx.x == 0) out[blockIdx.x] = sum;
}

// part[g] = sum of (y - target)^2 over the entries block g strides over: grid G blocks of
// 256 threads, entry i taken by block (i / 256) % G. row_sums adds the G partial sums up.
extern "C" __global__ void sq_err_partials(const float* y,       // (n,)
                                           const float* target,  // (n,)
                                           float* part_G,        // (G,)
                                           int n) {
  __shared__ float part[NN_WARPS];
  float sum = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const float e = y[i] - target[i];
    sum += e * e;
  }
  sum = block_sum(sum, part);
  if (threadIdx.x == 0) part_G[blockIdx.x] = sum;
}

// ---- elementwise ------------------------------------------------------------------------------

extern "C" __global__ void gelu(const float* x, float* y, int n) {  // (n,)
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + tanhf(GELU_C * (v + GELU_A * v * v * v)));
  }
}

extern "C" __global__ void gelu_bwd(const float* x, const float* dy, float* dx, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    const float v = x[i];
    const float t = tanhf(GELU_C * (v + GELU_A * v * v * v));
    const float dt_dx = (1.0f - t * t) * GELU_C * (1.0f + 3.0f * GELU_A * v * v);
    dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * dt_dx);
  }
}

// exp of minus |x| only: it never overflows, and 1 / (1 + e) keeps its relative accuracy
// where the result is tiny (x far below 0), which 0.5 (1 + tanh(x / 2)) would lose.
extern "C" __global__ void sigmoid(const float* x, float* y, int n) {  // (n,)
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    const float e = expf(-fabsf(x[i]));
    y[i] = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  }
}

extern "C" __global__ void sigmoid_bwd(const float* y, const float* dy, float* dx, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

extern "C" __global__ void tanh_fwd(const float* x, float* y, int n) {  // (n,)
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = tanhf(x[i]);
}

extern "C" __global__ void tanh_bwd(const float* y, const float* dy, float* dx, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

// dy = scale * (y - target), scale = 2 / n from the host (in double, rounded once).
extern "C" __global__ void mse_bwd(const float* y, const float* target, float* dy, float scale,
                                   int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dy[i] = scale * (y[i] - target[i]);
}

// ---- layernorm: one warp per row ------------------------------------------------------------

// y = (x - mean) * rstd * gamma + beta over each row of D, with the row's mean and
// rstd = 1 / sqrt(var + eps) kept for the backward. The variance is a second pass over
// x - mean, not E[x^2] - mean^2, which cancels for rows with a large mean. Each lane takes
// columns lane, lane + 32, ... (a warp reads 32 consecutive floats). Launch: block
// (32, LN_ROWS), grid ceil(R / LN_ROWS).
extern "C" __global__ void layernorm_rows(const float* x,      // (R, D)
                                          const float* gamma,  // (D,)
                                          const float* beta,   // (D,)
                                          float* y,            // (R, D)
                                          float* mean,         // (R,)
                                          float* rstd,         // (R,)
                                          int R, int D, float eps) {
  const int r = blockIdx.x * LN_ROWS + threadIdx.y, lane = threadIdx.x;
  if (r >= R) return;  // the whole warp: its row is past the end
  const float* x_row = x + (long long)r * D;
  float sum = 0.0f;
  for (int d = lane; d < D; d += WARP) sum += x_row[d];
  const float m = warp_sum_all(sum) / D;
  float sq = 0.0f;
  for (int d = lane; d < D; d += WARP) sq += (x_row[d] - m) * (x_row[d] - m);
  const float s = 1.0f / sqrtf(warp_sum_all(sq) / D + eps);
  float* y_row = y + (long long)r * D;
  for (int d = lane; d < D; d += WARP) y_row[d] = (x_row[d] - m) * s * gamma[d] + beta[d];
  if (lane == 0) {
    mean[r] = m;
    rstd[r] = s;
  }
}

// dx = rstd * (g - mean_d(g) - xhat * mean_d(g * xhat)) with g = dy * gamma and
// xhat = (x - mean) * rstd: the two row means are warp sums. Launch as layernorm_rows.
extern "C" __global__ void layernorm_bwd_rows(const float* x,      // (R, D)
                                              const float* gamma,  // (D,)
                                              const float* mean,   // (R,)
                                              const float* rstd,   // (R,)
                                              const float* dy,     // (R, D)
                                              float* dx,           // (R, D)
                                              int R, int D) {
  const int r = blockIdx.x * LN_ROWS + threadIdx.y, lane = threadIdx.x;
  if (r >= R) return;  // the whole warp, as in layernorm_rows
  const long long row = (long long)r * D;
  const float m = mean[r], s = rstd[r];
  float sum_g = 0.0f, sum_gx = 0.0f;
  for (int d = lane; d < D; d += WARP) {
    const float g = dy[row + d] * gamma[d];
    sum_g += g;
    sum_gx += g * (x[row + d] - m) * s;
  }
  const float mean_g = warp_sum_all(sum_g) / D, mean_gx = warp_sum_all(sum_gx) / D;
  for (int d = lane; d < D; d += WARP) {
    const float g = dy[row + d] * gamma[d];
    dx[row + d] = s * (g - mean_g - (x[row + d] - m) * s * mean_gx);
  }
}

// dgamma[d] = sum over r of dy * xhat and dbeta[d] = sum over r of dy: column sums, in
// colsum's pattern (ops.cu): threadIdx.x picks the column (coalesced rows), threadIdx.y
// strides down the rows, and the LNP_ROWS partial sums meet in shared memory.
// Launch: block (32, LNP_ROWS), grid ceil(D / 32).
extern "C" __global__ void layernorm_dparams(const float* x,     // (R, D)
                                             const float* mean,  // (R,)
                                             const float* rstd,  // (R,)
                                             const float* dy,    // (R, D)
                                             float* dgamma,      // (D,)
                                             float* dbeta,       // (D,)
                                             int R, int D) {
  __shared__ float part_gamma[LNP_ROWS][WARP], part_beta[LNP_ROWS][WARP];
  const int d = blockIdx.x * WARP + threadIdx.x;
  float sum_gamma = 0.0f, sum_beta = 0.0f;
  if (d < D)
    for (int r = threadIdx.y; r < R; r += LNP_ROWS) {
      const long long i = (long long)r * D + d;
      sum_gamma += dy[i] * (x[i] - mean[r]) * rstd[r];
      sum_beta += dy[i];
    }
  part_gamma[threadIdx.y][threadIdx.x] = sum_gamma;
  part_beta[threadIdx.y][threadIdx.x] = sum_beta;
  __syncthreads();  // all partial sums are in before row 0 adds them up
  if (threadIdx.y == 0 && d < D) {
    float total_gamma = 0.0f, total_beta = 0.0f;
    for (int i = 0; i < LNP_ROWS; ++i) {
      total_gamma += part_gamma[i][threadIdx.x];
      total_beta += part_beta[i][threadIdx.x];
    }
    dgamma[d] = total_gamma;
    dbeta[d] = total_beta;
  }
}

// ---- layout -----------------------------------------------------------------------------------

// at[k, m] = a[m, k] through a 32 x 32 tile in shared memory: a warp reads 32 consecutive
// floats of a row of a and writes 32 consecutive floats of a row of at (both coalesced); the
// tile's rows are padded to 33 floats, so that reading a column hits 32 different banks.
// Launch: block (32, 8), each thread 4 rows of the tile; grid (ceil(K / 32), ceil(M / 32)).
extern "C" __global__ void transpose(const float* a,  // (M, K)
                                     float* at,       // (K, M)
                                     int M, int K) {
  __shared__ float tile[T_TILE][T_TILE + 1];  // (m, k) of the block's tile
  const int k0 = blockIdx.x * T_TILE, m0 = blockIdx.y * T_TILE;
  for (int i = threadIdx.y; i < T_TILE; i += T_ROWS) {
    const int m = m0 + i, k = k0 + threadIdx.x;
    if (m < M && k < K) tile[i][threadIdx.x] = a[(long long)m * K + k];
  }
  __syncthreads();  // the tile is complete before threads read what others loaded
  for (int i = threadIdx.y; i < T_TILE; i += T_ROWS) {
    const int k = k0 + i, m = m0 + threadIdx.x;
    if (k < K && m < M) at[(long long)k * M + m] = tile[threadIdx.x][i];
  }
}

// ---- embedding --------------------------------------------------------------------------------

// x[r, d] = w[tokens[r], d], one thread per entry; a token outside [0, V) gives NaN, not a
// read out of bounds.
extern "C" __global__ void embedding(const long long* tokens,  // (R,)
                                     const float* w,           // (V, D)
                                     float* x,                 // (R, D)
                                     int R, int V, int D) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)R * D) return;
  const long long token = tokens[i / D];
  x[i] = (token >= 0 && token < V) ? w[token * D + i % D] : __int_as_float(0x7fc00000);
}

// dw[tokens[r], d] += dx[r, d], one thread per entry of dx, into dw zeroed by the caller:
// rows with the same token add into one row of dw at once, hence the atomics (the order of
// the additions, and so the last bits of a sum, varies from run to run on a GPU).
extern "C" __global__ void embedding_bwd(const long long* tokens,  // (R,)
                                         const float* dx,          // (R, D)
                                         float* dw,                // (V, D)
                                         int R, int V, int D) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)R * D) return;
  const long long token = tokens[i / D];
  if (token >= 0 && token < V) atomicAdd(&dw[token * D + i % D], dx[i]);
}
