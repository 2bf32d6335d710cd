"""The tiled CUDA rungs: shared-memory tiles (02), register blocking (03), float4 access (04),
warp tiling (05).

`kernel` picks one rung's product kernel ("tiled", "blocktile", "vectorized", "warptile"),
which the benchmarks use to set the rungs side by side; by default each product takes the
rung expected to be best for its shape: 05 where its layout allows it (no transpose, K and N
multiples of 4, 16-byte aligned), else 03, and 02 when a 128 x 128 tile per block would
leave most SMs idle (the small products of an MNIST step: 64 x 128 is one 128 x 128 tile,
but 32 tiles of 16 x 16).
Every other op is the shared network kernels of kernels/cuda/ops.cu, nn.cu and conv.cu
(see _cuda_base.py); the convolution's product is this rung's.
"""

from __future__ import annotations

from impls._cuda_base import NETWORK_FILES, CudaImpl, cdiv

KERNELS = ("tiled", "blocktile", "vectorized", "warptile")
TILE = 16  # 02_tiled.cu's TILE
BLOCK_TILE = 128  # 03, 04 and 05: the 128 x 128 tile of c one block computes
THREADS = {"blocktile": 256, "vectorized": 256, "warptile": 128}  # a block's, 03 to 05
ALIGNED = ("vectorized", "warptile")  # the rungs that read float4 straight from a and b


class CudaTiled(CudaImpl):
    name = "cuda-tiled"
    rung = 4
    kernel_files = (
        *NETWORK_FILES,
        "02_tiled.cu",
        "03_blocktile.cu",
        "04_vectorized.cu",
        "05_warptile.cu",
    )

    def __init__(self, backend=None, kernel=None):
        if kernel not in (None, *KERNELS):
            raise ValueError(
                f"kernel must be None (best per shape) or one of {KERNELS}, got {kernel!r}"
            )
        super().__init__(backend)
        self.kernel = kernel

    def info(self):
        return {"kernel": self.kernel or "best"}

    def _choose(self, a, b, plan):
        if self.kernel:
            return self.kernel
        if (
            cdiv(plan.M, BLOCK_TILE) * cdiv(plan.N, BLOCK_TILE) * plan.X
            < self.backend.multiprocessors
        ):
            return "tiled"
        return "warptile" if self._vectorizable(a, b, plan) else "blocktile"

    def _vectorizable(self, a, b, plan):
        return (
            not (plan.ta or plan.tb)
            and plan.K % 4 == 0
            and plan.N % 4 == 0
            and self.backend.address(a) % 16 == 0
            and self.backend.address(b) % 16 == 0
        )

    def _product(self, a, b, c, plan):
        kernel = self._choose(a, b, plan)
        if kernel == "tiled":
            grid = (cdiv(plan.N, TILE), cdiv(plan.M, TILE), plan.X)
            self.backend.launch(
                "matmul_tiled", grid, (TILE, TILE), (a, b, c, *plan.sizes, *plan.strides)
            )
            return
        grid = (cdiv(plan.N, BLOCK_TILE), cdiv(plan.M, BLOCK_TILE), plan.X)
        if kernel in ALIGNED:
            if not self._vectorizable(a, b, plan):
                raise ValueError(
                    f"the {kernel} kernel needs untransposed operands with K and N multiples "
                    f"of 4 and 16-byte aligned data; got K={plan.K}, N={plan.N}, "
                    f"transposed a={plan.ta}, b={plan.tb}"
                )
            self.backend.launch(
                f"matmul_{kernel}", grid, (THREADS[kernel],), (a, b, c, *plan.sizes)
            )
            return
        self.backend.launch(
            "matmul_blocktile", grid, (THREADS[kernel],), (a, b, c, *plan.sizes, *plan.strides)
        )
