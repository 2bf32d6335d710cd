// Rung 05, warp tiling: rung 04's vectorized loads, with the work inside a block arranged by
// warps. A block of 128 threads (4 warps) computes a 128 x 128 tile of c over K slabs of 16;
// each warp owns a 64 x 64 quarter of it, computed as 4 sub-tiles of 64 x 16 that its 32
// threads cover as 8 x 4 threads of 8 x 4 outputs. What that adds over rung 04:
// - the 32 threads of a warp read shared memory at 4 neighbouring float4 of B (and 8 of A)
//   that the other threads of the warp share: fewer distinct addresses, fewer bank
//   conflicts, while each thread still does 128 multiply-adds per 24 values it loads;
// - the K slab doubles to 16, halving the barriers per multiply-add;
// - 128 threads a block with 128 accumulators each: more work per thread in registers.
//
// The same layout contract as rung 04: a and b contiguous row-major (X, M, K) and (X, K, N)
// with K and N multiples of 4 and 16-byte aligned data (the impl checks it). M is free.
// Launch: block 128, grid (ceil(N / 128), ceil(M / 128), X).
//
// Build alone: nvcc -arch=sm_90 --cubin 05_warptile.cu

constexpr int WT_BM = 128, WT_BN = 128, WT_BK = 16;  // the tile of c and the K slab
constexpr int WT_WM = 64, WT_WN = 64;                // a warp's tile of c
constexpr int WT_WNITER = 4;                         // sub-tiles across a warp's tile
constexpr int WT_SUBN = WT_WN / WT_WNITER;           // 16 columns per sub-tile
constexpr int WT_TM = 8, WT_TN = 4;                  // one thread's outputs per sub-tile
constexpr int WT_THREADS = 32 * (WT_BM / WT_WM) * (WT_BN / WT_WN);  // 128
constexpr int WT_LOADS = WT_BM * WT_BK / 4 / WT_THREADS;           // float4 per thread: 4

// Two blocks (8 warps) resident per SM: caps registers at 255 a thread, room for the 128
// accumulators.
extern "C" __global__ void __launch_bounds__(WT_THREADS, 2)
matmul_warptile(const float* a,  // (X, M, K), K % 4 == 0
                const float* b,  // (X, K, N), N % 4 == 0
                float* c,        // (X, M, N)
                int M, int K, int N) {
  alignas(16) __shared__ float a_tile[WT_BK][WT_BM];  // (k, m): transposed
  alignas(16) __shared__ float b_tile[WT_BK][WT_BN];  // (k, n)
  const int t = threadIdx.x, warp = t / 32, lane = t % 32;
  const int warp_m = (warp / (WT_BN / WT_WN)) * WT_WM;  // the warp's tile inside the block's
  const int warp_n = (warp % (WT_BN / WT_WN)) * WT_WN;
  const int lane_m = (lane / (WT_SUBN / WT_TN)) * WT_TM;  // the lane's outputs in a sub-tile:
  const int lane_n = (lane % (WT_SUBN / WT_TN)) * WT_TN;  // 8 x 4 lanes of 8 x 4
  const int m0 = blockIdx.y * WT_BM, n0 = blockIdx.x * WT_BN;
  a += (long long)blockIdx.z * M * K;
  b += (long long)blockIdx.z * K * N;
  const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

  float acc[WT_TM][WT_WNITER * WT_TN] = {};  // (row, sub-tile x column)
  float a_reg[WT_TM], b_reg[WT_WNITER * WT_TN];
  for (int k0 = 0; k0 < K; k0 += WT_BK) {
    // A slab: 128 rows of 4 float4; B slab: 16 rows of 32 float4. 4 of each per thread,
    // consecutive threads on consecutive float4 of a row (coalesced).
#pragma unroll
    for (int l = 0; l < WT_LOADS; ++l) {
      const int i = t + l * WT_THREADS;
      const int am = i / (WT_BK / 4), ak = (i % (WT_BK / 4)) * 4;
      const int m = m0 + am, ka = k0 + ak;
      const float4 a4 = (m < M && ka < K)
          ? *reinterpret_cast<const float4*>(&a[(long long)m * K + ka]) : zero;
      a_tile[ak + 0][am] = a4.x;
      a_tile[ak + 1][am] = a4.y;
      a_tile[ak + 2][am] = a4.z;
      a_tile[ak + 3][am] = a4.w;
      const int bk = i / (WT_BN / 4), bn = (i % (WT_BN / 4)) * 4;
      const int kb = k0 + bk, n = n0 + bn;
      *reinterpret_cast<float4*>(&b_tile[bk][bn]) = (kb < K && n < N)
          ? *reinterpret_cast<const float4*>(&b[(long long)kb * N + n]) : zero;
    }
    __syncthreads();  // the slab is complete before anyone reads it
#pragma unroll
    for (int k = 0; k < WT_BK; ++k) {
#pragma unroll
      for (int i = 0; i < WT_TM; i += 4) {
        const float4 v = *reinterpret_cast<const float4*>(&a_tile[k][warp_m + lane_m + i]);
        a_reg[i] = v.x, a_reg[i + 1] = v.y, a_reg[i + 2] = v.z, a_reg[i + 3] = v.w;
      }
#pragma unroll
      for (int s = 0; s < WT_WNITER; ++s) {
        const float4 v = *reinterpret_cast<const float4*>(
            &b_tile[k][warp_n + s * WT_SUBN + lane_n]);
        b_reg[s * WT_TN] = v.x, b_reg[s * WT_TN + 1] = v.y;
        b_reg[s * WT_TN + 2] = v.z, b_reg[s * WT_TN + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < WT_TM; ++i)
#pragma unroll
        for (int j = 0; j < WT_WNITER * WT_TN; ++j) acc[i][j] += a_reg[i] * b_reg[j];
    }
    __syncthreads();  // everyone is done reading before the next slab overwrites it
  }
  c += (long long)blockIdx.z * M * N;
  for (int i = 0; i < WT_TM; ++i) {
    const int m = m0 + warp_m + lane_m + i;
    if (m >= M) break;
#pragma unroll
    for (int s = 0; s < WT_WNITER; ++s) {
      const int n = n0 + warp_n + s * WT_SUBN + lane_n;
      if (n < N)  // N % 4 == 0: the float4 is all in or all out
        *reinterpret_cast<float4*>(&c[(long long)m * N + n]) =
            make_float4(acc[i][s * WT_TN], acc[i][s * WT_TN + 1], acc[i][s * WT_TN + 2],
                        acc[i][s * WT_TN + 3]);
    }
  }
}
