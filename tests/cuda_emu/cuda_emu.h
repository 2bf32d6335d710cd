// CUDA on the CPU, for testing kernel sources without a GPU: the same .cu text compiles with
// the host C++ compiler after this header. One launch runs one std::thread per thread of a
// block (blockDim of them), all of them going through the blocks of the grid in order;
// __syncthreads is a real barrier across those threads, so ThreadSanitizer sees exactly the
// happens-before that the kernel's barriers give, and reports a shared-memory race where one
// is missing. __shared__ becomes `static`: one copy, which the block's threads share, reused
// block after block (the end-of-block barrier orders one block's reads before the next
// block's writes). Buffers are exact-size heap blocks (see driver.h), so AddressSanitizer
// reports any read or write past the end of an array.
//
// Not emulated: warps (no shuffles, votes or warp-synchronous code: kernels here reduce
// through shared memory), blocks running concurrently, dynamic shared memory, atomics.
#pragma once

#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <math.h>
#include <thread>
#include <vector>

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};

inline thread_local uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::barrier<>* block_barrier = nullptr;  // the running launch's barrier

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

inline void __syncthreads() { block_barrier->arrive_and_wait(); }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline float __int_as_float(int bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// kernel<<<grid, block>>>(args...): returns when every block has run.
template <typename... Params, typename... Args>
void launch(dim3 grid, dim3 block, void (*kernel)(Params...), Args... args) {
  gridDim = grid;
  blockDim = block;
  const unsigned n = block.x * block.y * block.z;
  std::barrier<> barrier(n);
  block_barrier = &barrier;
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (unsigned t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      threadIdx = uint3{t % block.x, t / block.x % block.y, t / (block.x * block.y)};
      for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
          for (unsigned x = 0; x < grid.x; ++x) {
            blockIdx = uint3{x, y, z};
            kernel(args...);
            barrier.arrive_and_wait();  // the block is done before shared memory is reused
          }
    });
  for (std::thread& thread : threads) thread.join();
  block_barrier = nullptr;
}
