// CUDA on the CPU, for testing kernel sources without a GPU: the same .cu text compiles with
// the host C++ compiler after this header. One launch runs one POSIX thread per thread of a
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
#include <cstdlib>
#include <cstring>
#include <functional>
#include <math.h>
#include <pthread.h>
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

// A thread's stack: ample for a kernel's locals. Small on purpose: the sanitizers clear the
// shadow of every thread's whole stack, and with the default 8 MiB a 256-thread launch spends
// most of its time there.
constexpr size_t EMU_STACK_BYTES = 256 * 1024;

// kernel<<<grid, block>>>(args...): returns when every block has run.
template <typename... Params, typename... Args>
void launch(dim3 grid, dim3 block, void (*kernel)(Params...), Args... args) {
  gridDim = grid;
  blockDim = block;
  const unsigned n = block.x * block.y * block.z;
  std::barrier<> barrier(n);
  block_barrier = &barrier;
  struct Thread {
    pthread_t handle;
    unsigned t;
    std::function<void(unsigned)>* body;
  };
  std::function<void(unsigned)> body = [&](unsigned t) {
    threadIdx = uint3{t % block.x, t / block.x % block.y, t / (block.x * block.y)};
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          blockIdx = uint3{x, y, z};
          kernel(args...);
          barrier.arrive_and_wait();  // the block is done before shared memory is reused
        }
  };
  std::vector<Thread> threads(n);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, EMU_STACK_BYTES);
  for (unsigned t = 0; t < n; ++t) {
    threads[t] = Thread{{}, t, &body};
    auto start = [](void* self) -> void* {
      Thread* thread = static_cast<Thread*>(self);
      (*thread->body)(thread->t);
      return nullptr;
    };
    if (pthread_create(&threads[t].handle, &attr, start, &threads[t]) != 0) std::abort();
  }
  pthread_attr_destroy(&attr);
  for (Thread& thread : threads) pthread_join(thread.handle, nullptr);
  block_barrier = nullptr;
}
