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
// Warps: the threads of a block form warps of 32 by their linear index, as on a GPU. A
// shuffle or __syncwarp is a meeting of the warp's 32 lanes (a barrier of their own, with a
// slot per lane for the value a shuffle hands over), so TSan sees the order a __syncwarp
// gives and reports shared memory a warp exchanges without one. Only whole warps and the
// full mask are emulated: a shuffle in a block whose size is not a multiple of 32, with
// another mask, or reached by only some lanes (a divergent shuffle: the others never come,
// and after EMU_WARP_TIMEOUT_S seconds, default 60, the launch fails) is refused with a
// message, where a GPU would return garbage. atomicAdd on a float is a real atomic.
//
// Not emulated: votes, blocks running concurrently, dynamic shared memory.
#pragma once

#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>
#include <math.h>
#include <pthread.h>

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

// ---- warps ------------------------------------------------------------------------------

constexpr int warpSize = 32;
constexpr unsigned FULL_WARP = 0xffffffffu;

[[noreturn]] inline void emu_refuse(const std::string& message) {
  std::fprintf(stderr, "emu: %s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(2);  // other lanes may be blocked: no destructors, no waiting for them
}

struct Warp {
  std::mutex mutex;
  std::condition_variable all_here;
  unsigned lanes = 0, arrived = 0, generation = 0;
  unsigned long long slot[warpSize];  // what each lane offers a shuffle
};
inline thread_local Warp* this_warp = nullptr;
inline thread_local unsigned lane_id = 0;

inline std::chrono::seconds warp_timeout() {
  static const char* seconds = std::getenv("EMU_WARP_TIMEOUT_S");
  return std::chrono::seconds(seconds ? std::atoi(seconds) : 60);
}

// Every lane of the warp arrives before any leaves; refuses what the emulation cannot mean.
inline void warp_meet(unsigned mask, const char* what) {
  Warp& warp = *this_warp;
  if (mask != FULL_WARP || warp.lanes != warpSize)
    emu_refuse(std::string(what) + ": only whole warps (blockDim a multiple of 32) and the " +
               "full mask are emulated; got mask " + std::to_string(mask) + " in a warp of " +
               std::to_string(warp.lanes) + " lanes");
  std::unique_lock<std::mutex> lock(warp.mutex);
  const unsigned generation = warp.generation;
  if (++warp.arrived == warp.lanes) {
    warp.arrived = 0;
    ++warp.generation;
    warp.all_here.notify_all();
    return;
  }
  if (!warp.all_here.wait_for(lock, warp_timeout(), [&] { return warp.generation != generation; }))
    emu_refuse(std::string(what) + ": lane " + std::to_string(lane_id) + " of block (" +
               std::to_string(blockIdx.x) + ", " + std::to_string(blockIdx.y) + ", " +
               std::to_string(blockIdx.z) + ") waited " + std::to_string(warp_timeout().count()) +
               " s for the rest of its warp: a divergent warp-level call");
}

inline void __syncwarp(unsigned mask = FULL_WARP) { warp_meet(mask, "__syncwarp"); }

// The value `source` offers (this lane's own where source is past the warp).
template <typename T>
T warp_exchange(unsigned mask, T value, unsigned source, const char* what) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(unsigned long long));
  std::memcpy(&this_warp->slot[lane_id], &value, sizeof value);
  warp_meet(mask, what);  // every lane's value is in before any is read
  T got;
  std::memcpy(&got, &this_warp->slot[source < warpSize ? source : lane_id], sizeof got);
  warp_meet(mask, what);  // every lane has read before the next shuffle overwrites a slot
  return got;
}

template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = warpSize) {
  if (width != warpSize) emu_refuse("__shfl_xor_sync: only width 32 is emulated");
  return warp_exchange(mask, value, lane_id ^ lane_mask, "__shfl_xor_sync");
}

template <typename T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = warpSize) {
  if (width != warpSize) emu_refuse("__shfl_down_sync: only width 32 is emulated");
  return warp_exchange(mask, value, lane_id + delta, "__shfl_down_sync");
}

// Returns the old value, as CUDA's does.
inline float atomicAdd(float* address, float value) {
  return std::atomic_ref<float>(*address).fetch_add(value);
}
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
  const unsigned n_warps = (n + warpSize - 1) / warpSize;
  std::unique_ptr<Warp[]> warps(new Warp[n_warps]);
  for (unsigned w = 0; w < n_warps; ++w)
    warps[w].lanes = w + 1 < n_warps ? warpSize : n - w * warpSize;
  struct Thread {
    pthread_t handle;
    unsigned t;
    std::function<void(unsigned)>* body;
  };
  std::function<void(unsigned)> body = [&](unsigned t) {
    threadIdx = uint3{t % block.x, t / block.x % block.y, t / (block.x * block.y)};
    this_warp = &warps[t / warpSize];  // t is the linear index, x fastest: a GPU's warps
    lane_id = t % warpSize;
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
