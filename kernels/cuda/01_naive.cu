// Rung 01, naive: one thread per output element, a dot product of length K read straight
// from global memory. What it adds over the CPU rungs: thousands of threads. threadIdx.x runs
// along n, so the 32 threads of a warp read 32 consecutive B(k, n) and write 32 consecutive
// c[m, n] (coalesced), while A(m, k) is one address for the whole warp (a broadcast). Every
// operand element is fetched from L2/DRAM once per use: no reuse but what the caches find.
// Adds: coalescing: threadIdx.x along n, so a warp reads B and writes c as whole lines.
// Lacks: reuse: every element of A and B comes from L2 or DRAM once per multiply-add.
//
// Operands are read through strides, so one kernel computes a b, a b^T and a^T b (the
// backward products) and batches (blockIdx.z = x, for attention) without transposing copies:
//   A(m, k) = a[x * sa_x + m * sa_m + k * sa_k]     B(k, n) = b[x * sb_x + k * sb_k + n * sb_n]
// c is contiguous (X, M, N). Launch: block (32, 8), grid (ceil(N / 32), ceil(M / 8), X).
//
// Build alone: nvcc -arch=sm_90 --cubin 01_naive.cu

extern "C" __global__ void matmul_naive(const float* a,  // A: (X, M, K) through strides
                                        const float* b,  // B: (X, K, N) through strides
                                        float* c,        // (X, M, N)
                                        int M, int K, int N, int sa_m, int sa_k, int sb_k,
                                        int sb_n, int sa_x, int sb_x) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  const int m = blockIdx.y * blockDim.y + threadIdx.y;
  if (m >= M || n >= N) return;  // the grid rounds up: edge threads have no output
  const float* a_row = a + (long long)blockIdx.z * sa_x + (long long)m * sa_m;
  const float* b_col = b + (long long)blockIdx.z * sb_x + (long long)n * sb_n;
  float acc = 0.0f;
  for (int k = 0; k < K; ++k) acc += a_row[(long long)k * sa_k] * b_col[(long long)k * sb_k];
  c[((long long)blockIdx.z * M + m) * N + n] = acc;
}
