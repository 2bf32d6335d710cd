// Rung 05, warp tiling with a two-stage pipeline: rung 04's 16-byte loads, with the work
// inside a block arranged by warps, and the next K slab on its way from global memory while
// the current one is computed. A block of 128 threads (4 warps) computes a 128 x 128 tile of
// c over K slabs of 16; each warp owns a 64 x 64 quarter of it, computed as 4 sub-tiles of
// 64 x 16 that its 32 threads cover as 8 x 4 threads of 8 x 4 outputs. What that adds over
// rung 04:
// - the 32 threads of a warp read shared memory at 4 neighbouring float4 of B (and 8 of A)
//   that the other threads of the warp share: fewer distinct addresses, fewer bank
//   conflicts, while each thread still does 128 multiply-adds per 24 values it loads;
// - the K slab doubles to 16, halving the barriers per multiply-add;
// - 128 threads a block with 128 accumulators each: more work per thread in registers;
// - two shared-memory stages filled by cp.async (global -> shared without registers): slab
//   s + 1 is copied while slab s is computed. Without it every slab began with the block's
//   warps waiting out a global load behind a barrier, with only 2 blocks per SM (the
//   registers allow no more) to cover the wait. Measured on an H100 at 4096^3: 37.2 ->
//   38.7 TFLOP/s (0.72x -> 0.75x cuBLAS), so that wait was only a small part of the gap.
//
// cp.async copies 16 bytes as they lie, so the A slab stays (m, k) in shared memory, rows
// padded from 16 to 20 floats, and a thread reads its A values as a float4 along k, 4 k at a
// time. A thread's 8 rows are lane_m, lane_m + 8, ..., lane_m + 56 of its warp's tile: for
// one i the warp's 8 row groups then read 8 consecutive rows, which the padding puts on 8
// different 4-bank groups (row r starts at bank 20 r mod 32): no bank conflicts.
//
// The same layout contract as rung 04: a and b contiguous row-major (X, M, K) and (X, K, N)
// with K and N multiples of 4 and 16-byte aligned data (the impl checks it). M is free.
// Launch: block 128, grid (ceil(N / 128), ceil(M / 128), X). Needs sm_80 or newer (cp.async).
//
// Build alone: nvcc -arch=sm_90 --cubin 05_warptile.cu

constexpr int WT_BM = 128, WT_BN = 128, WT_BK = 16;  // the tile of c and the K slab
constexpr int WT_WM = 64, WT_WN = 64;                // a warp's tile of c
constexpr int WT_WNITER = 4;                         // sub-tiles across a warp's tile
constexpr int WT_SUBN = WT_WN / WT_WNITER;           // 16 columns per sub-tile
constexpr int WT_TM = 8, WT_TN = 4;                  // one thread's outputs per sub-tile
constexpr int WT_THREADS = 32 * (WT_BM / WT_WM) * (WT_BN / WT_WN);  // 128
constexpr int WT_LOADS = WT_BM * WT_BK / 4 / WT_THREADS;           // float4 per thread: 4
constexpr int WT_A_ROW = WT_BK + 4;  // a padded row of the A slab: see above
constexpr int WT_STAGES = 2;
constexpr int WT_ROW_STEP = WT_WM / WT_TM;  // 8: the distance between a thread's rows

// 16 bytes from global to shared memory, asynchronously and without passing through
// registers; zeros where `inside` is false (a source size of 0 reads nothing, so src need
// only be a valid address). The CPU emulation (no __CUDA_ARCH__) copies at once.
__device__ __forceinline__ void copy16_async(float* dst, const float* src, bool inside) {
#ifdef __CUDA_ARCH__
  asm volatile(
      "{\n"
      "  .reg .u64 dst64;\n"
      "  .reg .u32 dst32;\n"
      "  cvta.to.shared.u64 dst64, %0;\n"
      "  cvt.u32.u64 dst32, dst64;\n"
      "  cp.async.cg.shared.global [dst32], [%1], 16, %2;\n"
      "}\n" ::"l"(dst), "l"(src), "r"(inside ? 16 : 0) : "memory");
#else
  *reinterpret_cast<float4*>(dst) =
      inside ? *reinterpret_cast<const float4*>(src) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#endif
}

// The copies issued so far form one group; wait until at most `pending` groups are in flight.
__device__ __forceinline__ void copies_commit() {
#ifdef __CUDA_ARCH__
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int pending>
__device__ __forceinline__ void copies_wait() {
#ifdef __CUDA_ARCH__
  asm volatile("cp.async.wait_group %0;\n" ::"n"(pending) : "memory");
#endif
}

// Start copying the K slab at k0 into one stage: A 128 rows of 4 float4, B 16 rows of 32
// float4, 4 of each per thread, consecutive threads on consecutive float4 of a row
// (coalesced). Outside the matrix the stage gets zeros.
__device__ __forceinline__ void warptile_load_slab(float (*a_stage)[WT_A_ROW],
                                                   float (*b_stage)[WT_BN], const float* a,
                                                   const float* b, int M, int K, int N,
                                                   int m0, int n0, int k0) {
  const int t = threadIdx.x;
#pragma unroll
  for (int l = 0; l < WT_LOADS; ++l) {
    const int i = t + l * WT_THREADS;
    const int am = i / (WT_BK / 4), ak = (i % (WT_BK / 4)) * 4;
    const int m = m0 + am, ka = k0 + ak;
    const bool a_inside = m < M && ka < K;  // K % 4 == 0: all of the float4 or none
    copy16_async(&a_stage[am][ak], a_inside ? &a[(long long)m * K + ka] : a, a_inside);
    const int bk = i / (WT_BN / 4), bn = (i % (WT_BN / 4)) * 4;
    const int kb = k0 + bk, n = n0 + bn;
    const bool b_inside = kb < K && n < N;  // N % 4 == 0, likewise
    copy16_async(&b_stage[bk][bn], b_inside ? &b[(long long)kb * N + n] : b, b_inside);
  }
  copies_commit();
}

// Two blocks (8 warps) resident per SM: caps registers at 255 a thread, room for the 128
// accumulators.
extern "C" __global__ void __launch_bounds__(WT_THREADS, 2)
matmul_warptile(const float* a,  // (X, M, K), K % 4 == 0
                const float* b,  // (X, K, N), N % 4 == 0
                float* c,        // (X, M, N)
                int M, int K, int N) {
  // Two stages of (128 x 20 + 16 x 128) floats: 36 KiB, inside the 48 KiB a block may take
  // statically.
  alignas(16) __shared__ float a_tile[WT_STAGES][WT_BM][WT_A_ROW];  // (m, k), rows padded
  alignas(16) __shared__ float b_tile[WT_STAGES][WT_BK][WT_BN];     // (k, n)
  const int t = threadIdx.x, warp = t / 32, lane = t % 32;
  const int warp_m = (warp / (WT_BN / WT_WN)) * WT_WM;  // the warp's tile inside the block's
  const int warp_n = (warp % (WT_BN / WT_WN)) * WT_WN;
  const int lane_m = lane / (WT_SUBN / WT_TN);            // rows lane_m + 8 i, see above
  const int lane_n = (lane % (WT_SUBN / WT_TN)) * WT_TN;  // 8 x 4 lanes of 8 x 4
  const int m0 = blockIdx.y * WT_BM, n0 = blockIdx.x * WT_BN;
  a += (long long)blockIdx.z * M * K;
  b += (long long)blockIdx.z * K * N;

  float acc[WT_TM][WT_WNITER * WT_TN] = {};  // (row, sub-tile x column)
  const int slabs = (K + WT_BK - 1) / WT_BK;
  if (slabs > 0) warptile_load_slab(a_tile[0], b_tile[0], a, b, M, K, N, m0, n0, 0);
  for (int s = 0; s < slabs; ++s) {
    const int stage = s % WT_STAGES;
    if (s + 1 < slabs) {  // the next slab into the other stage, read at the end of s - 1
      warptile_load_slab(a_tile[stage ^ 1], b_tile[stage ^ 1], a, b, M, K, N, m0, n0,
                         (s + 1) * WT_BK);
      copies_wait<1>();  // this thread's copies of slab s are done; those of s + 1 may not be
    } else {
      copies_wait<0>();
    }
    __syncthreads();  // every thread's copies of slab s are in before anyone reads them
#pragma unroll
    for (int kk = 0; kk < WT_BK; kk += 4) {
      float a_reg[WT_TM][4];  // 8 rows x 4 k
#pragma unroll
      for (int i = 0; i < WT_TM; ++i) {
        const float4 v = *reinterpret_cast<const float4*>(
            &a_tile[stage][warp_m + lane_m + i * WT_ROW_STEP][kk]);
        a_reg[i][0] = v.x, a_reg[i][1] = v.y, a_reg[i][2] = v.z, a_reg[i][3] = v.w;
      }
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        float b_reg[WT_WNITER * WT_TN];
#pragma unroll
        for (int sub = 0; sub < WT_WNITER; ++sub) {
          const float4 v = *reinterpret_cast<const float4*>(
              &b_tile[stage][kk + k][warp_n + sub * WT_SUBN + lane_n]);
          b_reg[sub * WT_TN] = v.x, b_reg[sub * WT_TN + 1] = v.y;
          b_reg[sub * WT_TN + 2] = v.z, b_reg[sub * WT_TN + 3] = v.w;
        }
#pragma unroll
        for (int i = 0; i < WT_TM; ++i)
#pragma unroll
          for (int j = 0; j < WT_WNITER * WT_TN; ++j) acc[i][j] += a_reg[i][k] * b_reg[j];
      }
    }
    __syncthreads();  // everyone is done reading this stage before slab s + 2 is copied in
  }
  c += (long long)blockIdx.z * M * N;
#pragma unroll
  for (int i = 0; i < WT_TM; ++i) {
    const int m = m0 + warp_m + lane_m + i * WT_ROW_STEP;
    if (m >= M) break;  // rows grow with i
#pragma unroll
    for (int sub = 0; sub < WT_WNITER; ++sub) {
      const int n = n0 + warp_n + sub * WT_SUBN + lane_n;
      if (n < N)  // N % 4 == 0: the float4 is all in or all out
        *reinterpret_cast<float4*>(&c[(long long)m * N + n]) =
            make_float4(acc[i][sub * WT_TN], acc[i][sub * WT_TN + 1], acc[i][sub * WT_TN + 2],
                        acc[i][sub * WT_TN + 3]);
    }
  }
}
