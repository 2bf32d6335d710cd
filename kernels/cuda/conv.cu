// Convolution as one product (CS231n's im2col) and the 2 x 2 max pool, on NCHW images.
//
// conv2d: im2col lays the patches of x out as the columns of cols (Q * J * L, B * U * W):
// column (b, u, w) holds the Q x J x L window of image b under output pixel (u, w), zero
// where the window hangs over the padding. The rung's own product then gives
// y_F(BUW) = w (F, Q * J * L) @ cols, and conv_out adds the bias while it moves y to
// (B, F, U, W). The backward moves dy to (F, B * U * W) (conv_dy_rows), takes
// dw = dy_F(BUW) @ cols^T and dcols = w^T @ dy_F(BUW) by the same product, db as row_sums
// (nn.cu) of dy_F(BUW), and col2im folds dcols back onto dx.
// col2im gathers: one thread per pixel of dx sums the entries of dcols that read it, so no
// two threads write one address and no atomics are needed (the sum's order is fixed).
//
// Every kernel here takes one thread per entry of what it writes: block 256, grid
// ceil(n / 256). Indices are long long: B * U * W * Q * J * L passes 2^31 before the
// arrays do.
//
// Build alone: nvcc -arch=sm_90 --cubin conv.cu

constexpr int POOL_SIDE = 2;  // the pool's window and stride: contract.POOL

// cols[(q, j, l), (b, u, w)] = x[b, q, u * stride - padding + j, w * stride - padding + l],
// 0 outside the image. Consecutive threads take consecutive (b, u, w): coalesced writes.
extern "C" __global__ void im2col(const float* x,  // (B, Q, Y, Z)
                                  float* cols,     // (Q * J * L, B * U * W)
                                  int B, int Q, int Y, int Z, int J, int L, int U, int W,
                                  int stride, int padding) {
  const long long N = (long long)B * U * W;
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N * Q * J * L) return;
  const long long n = i % N;
  const int k = (int)(i / N), b = (int)(n / (U * W)), uw = (int)(n % (U * W));
  const int q = k / (J * L), j = k / L % J, l = k % L;
  const int y = uw / W * stride - padding + j, z = uw % W * stride - padding + l;
  cols[i] = (y >= 0 && y < Y && z >= 0 && z < Z) ? x[(((long long)b * Q + q) * Y + y) * Z + z]
                                                  : 0.0f;
}

// dx[b, q, y, z] = sum of dcols[(q, j, l), (b, u, w)] over the (j, l, u, w) with
// u * stride - padding + j = y and w * stride - padding + l = z: for each kernel row j, the
// output row u is (y + padding - j) / stride where that divides and lands in [0, U).
extern "C" __global__ void col2im(const float* dcols,  // (Q * J * L, B * U * W)
                                  float* dx,           // (B, Q, Y, Z)
                                  int B, int Q, int Y, int Z, int J, int L, int U, int W,
                                  int stride, int padding) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)B * Q * Y * Z) return;
  const int z = (int)(i % Z), y = (int)(i / Z % Y), q = (int)(i / ((long long)Y * Z) % Q);
  const int b = (int)(i / ((long long)Q * Y * Z));
  const long long N = (long long)B * U * W;
  float sum = 0.0f;
  for (int j = 0; j < J; ++j) {
    const int u_strided = y + padding - j;
    if (u_strided < 0 || u_strided % stride != 0 || u_strided / stride >= U) continue;
    const int u = u_strided / stride;
    for (int l = 0; l < L; ++l) {
      const int w_strided = z + padding - l;
      if (w_strided < 0 || w_strided % stride != 0 || w_strided / stride >= W) continue;
      const long long k = ((long long)q * J + j) * L + l;
      sum += dcols[k * N + ((long long)b * U + u) * W + w_strided / stride];
    }
  }
  dx[i] = sum;
}

// y[b, f, n] = y_rows[f, b, n] + bias[f] with n = (u, w): the product's (F, B * U * W) in
// NCHW order, plus the filter's bias. Reads and writes run along n: both coalesced.
extern "C" __global__ void conv_out(const float* y_rows,  // (F, B * U * W)
                                    const float* bias,    // (F,)
                                    float* y,             // (B, F, U * W)
                                    int B, int F, int UW) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)B * F * UW) return;
  const long long n = i % UW, bf = i / UW;
  const int f = (int)(bf % F), b = (int)(bf / F);
  y[i] = y_rows[((long long)f * B + b) * UW + n] + bias[f];
}

// dy_rows[f, b, n] = dy[b, f, n]: conv_out's move undone, for the backward's products.
extern "C" __global__ void conv_dy_rows(const float* dy,  // (B, F, U * W)
                                        float* dy_rows,   // (F, B * U * W)
                                        int B, int F, int UW) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)B * F * UW) return;
  const long long n = i % UW, fb = i / UW;
  const int b = (int)(fb % B), f = (int)(fb / B);
  dy_rows[i] = dy[((long long)b * F + f) * UW + n];
}

// ---- 2 x 2 max pool, stride 2 ---------------------------------------------------------------

// The first max of window (u, w) of image plane p in row-major order: its offset in the plane.
__device__ __forceinline__ int pool_argmax(const float* plane, int Z, int u, int w) {
  int best = u * POOL_SIDE * Z + w * POOL_SIDE;
  for (int j = 0; j < POOL_SIDE; ++j)
    for (int l = 0; l < POOL_SIDE; ++l) {
      const int at = (u * POOL_SIDE + j) * Z + w * POOL_SIDE + l;
      if (plane[at] > plane[best]) best = at;  // strictly greater: a tie keeps the first
    }
  return best;
}

// y[p, u, w] = max of the window, for the P = B * Q planes; an odd last row or column of x
// is in no window. One thread per output.
extern "C" __global__ void maxpool2d(const float* x,  // (B * Q, Y, Z)
                                     float* y,        // (B * Q, U, W)
                                     int P, int Y, int Z, int U, int W) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)P * U * W) return;
  const int w = (int)(i % W), u = (int)(i / W % U);
  const float* plane = x + i / ((long long)U * W) * Y * Z;
  y[i] = plane[pool_argmax(plane, Z, u, w)];
}

// dx[p, y, z] = dy of the window whose first max (y, z) is, else 0. One thread per pixel of
// dx finds its window's max again (4 reads) rather than scattering from the windows: every
// entry of dx is written once, the zeros included, and no two threads write one address.
extern "C" __global__ void maxpool2d_bwd(const float* x,   // (B * Q, Y, Z)
                                         const float* dy,  // (B * Q, U, W)
                                         float* dx,        // (B * Q, Y, Z)
                                         int P, int Y, int Z, int U, int W) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)P * Y * Z) return;
  const int z = (int)(i % Z), y = (int)(i / Z % Y);
  const long long p = i / ((long long)Y * Z);
  const int u = y / POOL_SIDE, w = z / POOL_SIDE;
  float grad = 0.0f;
  if (u < U && w < W && pool_argmax(x + p * Y * Z, Z, u, w) == y * Z + z)
    grad = dy[(p * U + u) * W + w];
  dx[i] = grad;
}
