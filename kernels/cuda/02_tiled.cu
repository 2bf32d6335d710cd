// Rung 02, shared-memory tiles: over rung 01, a block of 16 x 16 threads stages a 16 x 16
// tile of A and one of B in shared memory, then every thread reads its row and column of
// the tiles from there. Each element fetched from global memory is now used 16 times instead
// of once, so global traffic drops 16-fold; the limit becomes shared-memory bandwidth (two
// shared loads per multiply-add), which rung 03 attacks. 16 rather than 32: 256-thread
// blocks, four times as many of them, so the small products of an MNIST step (64 x 128)
// still spread over 32 SMs rather than 8 (and the CPU emulation runs 256 threads, not 1024).
// Adds: shared-memory tiles: each element fetched from global memory serves 16 multiply-adds.
// Lacks: register reuse: two shared-memory loads per multiply-add cap it at shared bandwidth.
//
// Same operand strides as rung 01 (A(m, k) = a[x * sa_x + m * sa_m + k * sa_k], likewise B),
// so it serves the forward, the transposed backward products and attention's batches.
// Loads outside the matrix write zeros into the tile, so every shape works, not only
// multiples of 16. Launch: block (16, 16), grid (ceil(N / 16), ceil(M / 16), X).
//
// Build alone: nvcc -arch=sm_90 --cubin 02_tiled.cu

constexpr int TILE = 16;

extern "C" __global__ void matmul_tiled(const float* a,  // A: (X, M, K) through strides
                                        const float* b,  // B: (X, K, N) through strides
                                        float* c,        // (X, M, N)
                                        int M, int K, int N, int sa_m, int sa_k, int sb_k,
                                        int sb_n, int sa_x, int sb_x) {
  __shared__ float a_tile[TILE][TILE];  // (m, k) of the current K slab
  __shared__ float b_tile[TILE][TILE];  // (k, n) of the current K slab
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int m = blockIdx.y * TILE + ty, n = blockIdx.x * TILE + tx;
  a += (long long)blockIdx.z * sa_x;
  b += (long long)blockIdx.z * sb_x;
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += TILE) {
    // Threads past the edge still load (zeros) and reach both barriers: a thread that
    // returned early would leave the others waiting at __syncthreads forever.
    const int ka = k0 + tx, kb = k0 + ty;
    a_tile[ty][tx] = (m < M && ka < K) ? a[(long long)m * sa_m + (long long)ka * sa_k] : 0.0f;
    b_tile[ty][tx] = (kb < K && n < N) ? b[(long long)kb * sb_k + (long long)n * sb_n] : 0.0f;
    __syncthreads();  // the tiles are complete before anyone reads them
    for (int k = 0; k < TILE; ++k) acc += a_tile[ty][k] * b_tile[k][tx];
    __syncthreads();  // everyone is done reading before the next slab overwrites them
  }
  if (m < M && n < N) c[((long long)blockIdx.z * M + m) * N + n] = acc;
}
