// Rung 05, warp tiling with a two-stage pipeline: rung 04's 16-byte loads, with the work
// inside a block arranged by warps, and the next K slab on its way from global memory while
// the current one is computed. With the default tiles, a block of 128 threads (4 warps)
// computes a 128 x 128 tile of c over K slabs of 16; each warp owns a 64 x 64 quarter of it,
// computed as 4 sub-tiles of 64 x 16 that its 32 threads cover as 8 x 4 threads of 8 x 4
// outputs. What that adds over rung 04:
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
// Adds: warp tiles, and cp.async copying the next K slab while the current one is computed.
// Lacks: tensor cores (float32 FFMA alone) and a tile per shape; tiles are tuned per GPU only.
//
// cp.async copies 16 bytes as they lie, so the A slab stays (m, k) in shared memory, rows
// padded by 4 floats (16 -> 20), and a thread reads its A values as a float4 along k, 4 k at
// a time. A thread's TM rows are lane_m, lane_m + 8, ..., of its warp's tile (8 = WM / TM
// lanes down it): for one i the warp's 8 row groups then read 8 consecutive rows, which the
// padding puts on 8 different 4-bank groups (row r starts at bank (BK + 4) r mod 32, for BK 8,
// 16 or 32): no bank conflicts.
//
// The tiles are compile-time parameters, all eight given or none (then the defaults below):
// the loader passes them as -D options (impls/_cuda_warptile.py, which checks them first, and
// benchmarks/warptile_sweep.py, which picks them per GPU); the static_asserts say what a set
// must satisfy. WT_BM x WT_BN is a block's tile of c, WT_BK its K slab, WT_WM x WT_WN a warp's
// tile in WT_WNITER sub-tiles across n, WT_TM x WT_TN a thread's outputs in each sub-tile.
//
// The same layout contract as rung 04: a and b contiguous row-major (X, M, K) and (X, K, N)
// with K and N multiples of 4 and 16-byte aligned data (the impl checks it). M is free.
// Launch: block WT_THREADS (128 by default), grid (ceil(N / WT_BN), ceil(M / WT_BM), X).
// Needs sm_80 or newer (cp.async).
//
// Build alone: nvcc -arch=sm_90 --cubin 05_warptile.cu   (other tiles: -DWT_BM=... all eight)

#ifndef WT_BM
#define WT_BM 128
#define WT_BN 128
#define WT_BK 16
#define WT_WM 64
#define WT_WN 64
#define WT_WNITER 4
#define WT_TM 8
#define WT_TN 4
#endif

constexpr int WT_SUBN = WT_WN / WT_WNITER;    // columns of a sub-tile: 16 by default
constexpr int WT_LANES_N = WT_SUBN / WT_TN;   // lanes across a sub-tile: 4
constexpr int WT_ROW_STEP = WT_WM / WT_TM;    // lanes down a warp's tile, the distance between
                                              // a thread's rows: 8
constexpr int WT_THREADS = 32 * (WT_BM / WT_WM) * (WT_BN / WT_WN);  // 128
constexpr int WT_A_LOADS = WT_BM * WT_BK / 4 / WT_THREADS;  // float4 of A a thread copies: 4
constexpr int WT_B_LOADS = WT_BK * WT_BN / 4 / WT_THREADS;  // and of B: 4
constexpr int WT_A_ROW = WT_BK + 4;  // a padded row of the A slab: see above
constexpr int WT_STAGES = 2;
// A cap of 255 registers a thread either way (65536 an SM / 2 blocks of 128 threads, or / 1
// of 256): room for 128 accumulators. A cap of 128 for the tiles of 64 accumulators spilled.
constexpr int WT_MIN_BLOCKS = WT_THREADS >= 256 ? 1 : 2;

static_assert(WT_BM % WT_WM == 0 && WT_BN % WT_WN == 0, "warp tiles must tile the block's");
static_assert(WT_WM % WT_TM == 0 && WT_WN % WT_WNITER == 0 && WT_SUBN % WT_TN == 0,
              "thread tiles must tile a warp's sub-tiles");
static_assert(WT_ROW_STEP * WT_LANES_N == 32, "(WM / TM) x (WN / WNITER / TN) must be 32 lanes");
static_assert(WT_TN % 4 == 0 && WT_BK % 4 == 0, "B and c go by float4 along n, A along k");
static_assert(WT_A_LOADS >= 1 && WT_A_LOADS * WT_THREADS * 4 == WT_BM * WT_BK &&
                  WT_B_LOADS >= 1 && WT_B_LOADS * WT_THREADS * 4 == WT_BK * WT_BN,
              "every thread copies the same whole number of float4 of each slab");
static_assert(WT_STAGES * (WT_BM * WT_A_ROW + WT_BK * WT_BN) * 4 <= 48 * 1024,
              "the stages must fit the 48 KiB a block may take statically");
static_assert(WT_THREADS <= 1024, "at most 1024 threads a block");

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

// Start copying the K slab at k0 into one stage: A BM rows of BK / 4 float4, B BK rows of
// BN / 4 float4, consecutive threads on consecutive float4 of a row (coalesced). Outside the
// matrix the stage gets zeros.
__device__ __forceinline__ void warptile_load_slab(float (*a_stage)[WT_A_ROW],
                                                   float (*b_stage)[WT_BN], const float* a,
                                                   const float* b, int M, int K, int N,
                                                   int m0, int n0, int k0) {
  const int t = threadIdx.x;
#pragma unroll
  for (int l = 0; l < WT_A_LOADS; ++l) {
    const int i = t + l * WT_THREADS;
    const int am = i / (WT_BK / 4), ak = (i % (WT_BK / 4)) * 4;
    const int m = m0 + am, ka = k0 + ak;
    const bool inside = m < M && ka < K;  // K % 4 == 0: all of the float4 or none
    copy16_async(&a_stage[am][ak], inside ? &a[(long long)m * K + ka] : a, inside);
  }
#pragma unroll
  for (int l = 0; l < WT_B_LOADS; ++l) {
    const int i = t + l * WT_THREADS;
    const int bk = i / (WT_BN / 4), bn = (i % (WT_BN / 4)) * 4;
    const int kb = k0 + bk, n = n0 + bn;
    const bool inside = kb < K && n < N;  // N % 4 == 0, likewise
    copy16_async(&b_stage[bk][bn], inside ? &b[(long long)kb * N + n] : b, inside);
  }
  copies_commit();
}

extern "C" __global__ void __launch_bounds__(WT_THREADS, WT_MIN_BLOCKS)
matmul_warptile(const float* a,  // (X, M, K), K % 4 == 0
                const float* b,  // (X, K, N), N % 4 == 0
                float* c,        // (X, M, N)
                int M, int K, int N) {
  // Two stages of (BM x (BK + 4) + BK x BN) floats: 36 KiB by default, inside the 48 KiB a
  // block may take statically.
  alignas(16) __shared__ float a_tile[WT_STAGES][WT_BM][WT_A_ROW];  // (m, k), rows padded
  alignas(16) __shared__ float b_tile[WT_STAGES][WT_BK][WT_BN];     // (k, n)
  const int t = threadIdx.x, warp = t / 32, lane = t % 32;
  const int warp_m = (warp / (WT_BN / WT_WN)) * WT_WM;  // the warp's tile inside the block's
  const int warp_n = (warp % (WT_BN / WT_WN)) * WT_WN;
  const int lane_m = lane / WT_LANES_N;            // rows lane_m + ROW_STEP i, see above
  const int lane_n = (lane % WT_LANES_N) * WT_TN;  // 8 x 4 lanes of 8 x 4 by default
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
      float a_reg[WT_TM][4];  // TM rows x 4 k
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
        for (int sub = 0; sub < WT_WNITER; ++sub)
#pragma unroll
          for (int j = 0; j < WT_TN; j += 4) {
            const float4 v = *reinterpret_cast<const float4*>(
                &b_tile[stage][kk + k][warp_n + sub * WT_SUBN + lane_n + j]);
            float* r = &b_reg[sub * WT_TN + j];
            r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
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
    for (int sub = 0; sub < WT_WNITER; ++sub)
#pragma unroll
      for (int j = 0; j < WT_TN; j += 4) {
        const int n = n0 + warp_n + sub * WT_SUBN + lane_n + j;
        const float* r = &acc[i][sub * WT_TN + j];
        if (n < N)  // N % 4 == 0: the float4 is all in or all out
          *reinterpret_cast<float4*>(&c[(long long)m * N + n]) =
              make_float4(r[0], r[1], r[2], r[3]);
      }
  }
}
