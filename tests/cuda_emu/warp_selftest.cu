// What the emulation's warp primitives must do, as CUDA defines them: tests/test_cuda_emu.py
// runs these in the emulator and checks every lane's result, so a kernel's reduction that
// matches the reference is not the only evidence that the shuffles mean what they mean on a GPU.

// Row t of out: lane ^ 5's value, lane + 3's (its own in lanes 29..31), lane ^ 1's offer
// through shared memory, and the old value of an atomic counter (each of 0 .. n - 1 once).
// Launch: block 64 (two warps), any grid.
extern "C" __global__ void warp_selftest(float* out,    // (grid * 64, 4)
                                         float* count) {  // (1,), 0 before the launch
  __shared__ float offered[64];
  const int t = threadIdx.x;
  const long long row = ((long long)blockIdx.x * blockDim.x + t) * 4;
  const float v = (float)t;
  out[row] = __shfl_xor_sync(0xffffffffu, v, 5);
  out[row + 1] = __shfl_down_sync(0xffffffffu, v, 3);
  offered[t] = 10.0f * v;
  __syncwarp();  // the warp's offers are in before its lanes read them
  out[row + 2] = offered[t ^ 1];
  out[row + 3] = atomicAdd(count, 1.0f);
}

// A shuffle that only the first half of each warp reaches: the emulation must refuse it.
extern "C" __global__ void warp_divergent(float* out) {  // (blockDim.x,)
  if (threadIdx.x % 32 < 16) out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}
