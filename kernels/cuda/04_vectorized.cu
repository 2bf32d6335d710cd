// Rung 04, vectorized memory access: rung 03's tiling with every global load and store, and
// the shared-memory reads of the inner loop, done 4 floats at a time (float4: one 128-bit
// instruction instead of four 32-bit ones). The A slab is transposed into shared memory as it
// is loaded, so the inner loop reads a thread's 8 rows as two float4, like its 8 columns of B.
// Fewer instructions for the same bytes: the load/store units stop being the bottleneck.
// Adds: 128-bit (float4) global and shared accesses: a quarter of the memory instructions.
// Lacks: latency hiding: every K slab waits behind a barrier for its own global loads.
//
// The price is layout: a and b must be contiguous row-major (X, M, K) and (X, K, N) with
// K and N multiples of 4 and 16-byte aligned pointers, so that a float4 never straddles a row
// or the matrix edge. The impl checks this and falls back to rung 03 otherwise. M is free.
// Launch: block 256, grid (ceil(N / 128), ceil(M / 128), X).
//
// Build alone: nvcc -arch=sm_90 --cubin 04_vectorized.cu

constexpr int VEC_BM = 128, VEC_BN = 128, VEC_BK = 8;  // the tile of c and the K slab
constexpr int VEC_TM = 8, VEC_TN = 8;                  // the outputs of one thread
constexpr int VEC_THREADS = (VEC_BM / VEC_TM) * (VEC_BN / VEC_TN);  // 256

// Two blocks (16 warps) resident per SM: caps registers at 128 a thread, which the 64
// accumulators fit without spilling.
extern "C" __global__ void __launch_bounds__(VEC_THREADS, 2)
matmul_vectorized(const float* a,  // (X, M, K), K % 4 == 0
                  const float* b,  // (X, K, N), N % 4 == 0
                  float* c,        // (X, M, N)
                  int M, int K, int N) {
  alignas(16) __shared__ float a_tile[VEC_BK][VEC_BM];  // (k, m): transposed
  alignas(16) __shared__ float b_tile[VEC_BK][VEC_BN];  // (k, n)
  const int t = threadIdx.x;
  const int row0 = (t / (VEC_BN / VEC_TN)) * VEC_TM;
  const int col0 = (t % (VEC_BN / VEC_TN)) * VEC_TN;
  const int m0 = blockIdx.y * VEC_BM, n0 = blockIdx.x * VEC_BN;
  a += (long long)blockIdx.z * M * K;
  b += (long long)blockIdx.z * K * N;
  // Each slab is 256 float4 per operand: exactly one per thread.
  const int a_m = t / (VEC_BK / 4), a_k = (t % (VEC_BK / 4)) * 4;  // A: 2 float4 per row
  const int b_k = t / (VEC_BN / 4), b_n = (t % (VEC_BN / 4)) * 4;  // B: 32 float4 per row
  const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

  float acc[VEC_TM][VEC_TN] = {};
  float a_reg[VEC_TM], b_reg[VEC_TN];
  for (int k0 = 0; k0 < K; k0 += VEC_BK) {
    // K and N are multiples of 4, so a float4 starting inside the matrix ends inside it.
    const int m = m0 + a_m, ka = k0 + a_k, kb = k0 + b_k, n = n0 + b_n;
    const float4 a4 = (m < M && ka < K)
        ? *reinterpret_cast<const float4*>(&a[(long long)m * K + ka]) : zero;
    a_tile[a_k + 0][a_m] = a4.x;
    a_tile[a_k + 1][a_m] = a4.y;
    a_tile[a_k + 2][a_m] = a4.z;
    a_tile[a_k + 3][a_m] = a4.w;
    *reinterpret_cast<float4*>(&b_tile[b_k][b_n]) = (kb < K && n < N)
        ? *reinterpret_cast<const float4*>(&b[(long long)kb * N + n]) : zero;
    __syncthreads();  // the slab is complete before anyone reads it
#pragma unroll
    for (int k = 0; k < VEC_BK; ++k) {
      // Through a float4 value, not a cast of the register arrays: those need not be
      // 16-byte aligned, and a misaligned vector access faults.
#pragma unroll
      for (int i = 0; i < VEC_TM; i += 4) {
        const float4 v = *reinterpret_cast<const float4*>(&a_tile[k][row0 + i]);
        a_reg[i] = v.x, a_reg[i + 1] = v.y, a_reg[i + 2] = v.z, a_reg[i + 3] = v.w;
      }
#pragma unroll
      for (int j = 0; j < VEC_TN; j += 4) {
        const float4 v = *reinterpret_cast<const float4*>(&b_tile[k][col0 + j]);
        b_reg[j] = v.x, b_reg[j + 1] = v.y, b_reg[j + 2] = v.z, b_reg[j + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < VEC_TM; ++i)
#pragma unroll
        for (int j = 0; j < VEC_TN; ++j) acc[i][j] += a_reg[i] * b_reg[j];
    }
    __syncthreads();  // everyone is done reading before the next slab overwrites it
  }
  c += (long long)blockIdx.z * M * N;
  for (int i = 0; i < VEC_TM; ++i) {
    const int m = m0 + row0 + i;
    if (m >= M) break;
#pragma unroll
    for (int j = 0; j < VEC_TN; j += 4) {
      const int n = n0 + col0 + j;
      if (n < N)
        *reinterpret_cast<float4*>(&c[(long long)m * N + n]) =
            make_float4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]);
    }
  }
}
