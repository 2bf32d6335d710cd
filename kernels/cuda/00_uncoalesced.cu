// Rung 00, uncoalesced: one thread per output element, as rung 01, but with the textbook
// mapping that hands threadIdx.x to the rows: the 32 threads of a warp walk DOWN a column of
// c. For row-major operands their 32 reads of A(m, k) are sa_m floats apart and their 32
// writes of c are N floats apart: 32 memory transactions where a coalesced warp needs one
// (B(k, n) is one address for the whole warp, a broadcast). The arithmetic is rung 01's,
// operand for operand; only the order in which a warp touches memory differs, so the gap
// between rungs 00 and 01 is the price of ignoring coalescing.
// Adds: a GPU thread per output of c, thousands of dot products in flight at once.
// Lacks: coalescing: a warp's loads of A and stores of c land on 32 rows, one transaction each.
//
// Same operand strides as rung 01, so it computes a b, a b^T, a^T b and batches:
//   A(m, k) = a[x * sa_x + m * sa_m + k * sa_k]     B(k, n) = b[x * sb_x + k * sb_k + n * sb_n]
// c is contiguous (X, M, N). Launch: block (32, 8), grid (ceil(M / 32), ceil(N / 8), X).
//
// Build alone: nvcc -arch=sm_90 --cubin 00_uncoalesced.cu

extern "C" __global__ void matmul_uncoalesced(const float* a,  // A: (X, M, K) through strides
                                              const float* b,  // B: (X, K, N) through strides
                                              float* c,        // (X, M, N)
                                              int M, int K, int N, int sa_m, int sa_k, int sb_k,
                                              int sb_n, int sa_x, int sb_x) {
  const int m = blockIdx.x * blockDim.x + threadIdx.x;  // along m: a warp spans 32 rows
  const int n = blockIdx.y * blockDim.y + threadIdx.y;
  if (m >= M || n >= N) return;  // the grid rounds up: edge threads have no output
  const float* a_row = a + (long long)blockIdx.z * sa_x + (long long)m * sa_m;
  const float* b_col = b + (long long)blockIdx.z * sb_x + (long long)n * sb_n;
  float acc = 0.0f;
  for (int k = 0; k < K; ++k) acc += a_row[(long long)k * sa_k] * b_col[(long long)k * sb_k];
  c[((long long)blockIdx.z * M + m) * N + n] = acc;
}
