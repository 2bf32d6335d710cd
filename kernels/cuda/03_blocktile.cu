// Rung 03, register blocking: over rung 02, each thread computes an 8 x 8 block of outputs
// instead of one. A block of 256 threads owns a 128 x 128 tile of c and walks K in slabs of
// 8; per k, a thread loads 8 values of A and 8 of B from shared memory into registers and
// does 64 multiply-adds with them. Shared-memory loads per multiply-add fall from 2 to 1/4,
// and the 64 independent accumulators keep the FMA pipes busy (instruction-level parallelism).
// The A tile is stored transposed, (k, m), so a thread's 8 rows are contiguous in shared
// memory, like its 8 columns of B.
// Adds: register blocking: 8 x 8 outputs a thread, a quarter shared load per multiply-add.
// Lacks: wide accesses: every load and store moves 32 bits, so memory instructions dominate.
//
// Same operand strides as rungs 01 and 02, and zero-filled edges: any shape, any transpose.
// Launch: block 256, grid (ceil(N / 128), ceil(M / 128), X).
//
// Build alone: nvcc -arch=sm_90 --cubin 03_blocktile.cu

constexpr int BT_BM = 128, BT_BN = 128, BT_BK = 8;  // the tile of c and the K slab
constexpr int BT_TM = 8, BT_TN = 8;                 // the outputs of one thread
constexpr int BT_THREADS = (BT_BM / BT_TM) * (BT_BN / BT_TN);  // 256

// Two blocks (16 warps) resident per SM: caps registers at 128 a thread, which the 64
// accumulators fit without spilling.
extern "C" __global__ void __launch_bounds__(BT_THREADS, 2)
matmul_blocktile(const float* a,  // A: (X, M, K) through strides
                 const float* b,  // B: (X, K, N) through strides
                 float* c,        // (X, M, N)
                 int M, int K, int N, int sa_m, int sa_k, int sb_k, int sb_n, int sa_x,
                 int sb_x) {
  __shared__ float a_tile[BT_BK][BT_BM];  // (k, m): transposed, see above
  __shared__ float b_tile[BT_BK][BT_BN];  // (k, n)
  const int t = threadIdx.x;
  const int row0 = (t / (BT_BN / BT_TN)) * BT_TM;  // this thread's first row in the tile
  const int col0 = (t % (BT_BN / BT_TN)) * BT_TN;  // and first column
  const int m0 = blockIdx.y * BT_BM, n0 = blockIdx.x * BT_BN;
  a += (long long)blockIdx.z * sa_x;
  b += (long long)blockIdx.z * sb_x;

  float acc[BT_TM][BT_TN] = {};
  float a_reg[BT_TM], b_reg[BT_TN];
  for (int k0 = 0; k0 < K; k0 += BT_BK) {
    // 1024 elements per tile, 4 per thread. For A, consecutive threads take consecutive k
    // (coalesced when sa_k = 1); for B, consecutive n (coalesced when sb_n = 1).
    for (int i = t; i < BT_BM * BT_BK; i += BT_THREADS) {
      const int m = m0 + i / BT_BK, k = k0 + i % BT_BK;
      a_tile[i % BT_BK][i / BT_BK] =
          (m < M && k < K) ? a[(long long)m * sa_m + (long long)k * sa_k] : 0.0f;
    }
    for (int i = t; i < BT_BK * BT_BN; i += BT_THREADS) {
      const int k = k0 + i / BT_BN, n = n0 + i % BT_BN;
      b_tile[i / BT_BN][i % BT_BN] =
          (k < K && n < N) ? b[(long long)k * sb_k + (long long)n * sb_n] : 0.0f;
    }
    __syncthreads();  // the slab is complete before anyone reads it
#pragma unroll
    for (int k = 0; k < BT_BK; ++k) {
#pragma unroll
      for (int i = 0; i < BT_TM; ++i) a_reg[i] = a_tile[k][row0 + i];
#pragma unroll
      for (int j = 0; j < BT_TN; ++j) b_reg[j] = b_tile[k][col0 + j];
#pragma unroll
      for (int i = 0; i < BT_TM; ++i)
#pragma unroll
        for (int j = 0; j < BT_TN; ++j) acc[i][j] += a_reg[i] * b_reg[j];
    }
    __syncthreads();  // everyone is done reading before the next slab overwrites it
  }
  c += (long long)blockIdx.z * M * N;
  for (int i = 0; i < BT_TM; ++i) {
    const int m = m0 + row0 + i;
    if (m >= M) break;
    for (int j = 0; j < BT_TN; ++j) {
      const int n = n0 + col0 + j;
      if (n < N) c[(long long)m * N + n] = acc[i][j];
    }
  }
}
