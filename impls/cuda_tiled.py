"""The tiled CUDA rungs: shared-memory tiles (02), register blocking (03), float4 access (04),
warp tiling (05).

`kernel` picks one rung's product kernel ("tiled", "blocktile", "vectorized", "warptile"),
which the benchmarks use to set the rungs side by side; by default each product takes the
rung expected to be best for its shape: 05 where its layout allows it (no transpose, K and N
multiples of 4, 16-byte aligned), else 03, and 02 when a 128 x 128 tile per block would
leave most SMs idle (the small products of an MNIST step: 64 x 128 is one 128 x 128 tile,
but 32 tiles of 16 x 16).
Rung 05's tiles are `warptile` (an impls/_cuda_warptile.py WarptileConfig), else the choice
benchmarks/warptile_sweep.py stored for this GPU, else the default; a backend handed in (the
tests' emulation) is built with the default unless `warptile` says otherwise.
Every other op is the shared network kernels of kernels/cuda/ops.cu, nn.cu and conv.cu
(see _cuda_base.py); the convolution's product is this rung's.
"""

from __future__ import annotations

from impls._cuda_base import NETWORK_FILES, CudaImpl, cdiv, gpu_name
from impls._cuda_warptile import DEFAULT, WarptileConfig, chosen

KERNELS = ("tiled", "blocktile", "vectorized", "warptile")
TILE = 16  # 02_tiled.cu's TILE
BLOCK_TILE = 128  # 03 and 04 (and 05 by default): the 128 x 128 tile of c one block computes
THREADS = {"blocktile": 256, "vectorized": 256}  # a block's, 03 and 04; 05's is its config's
ALIGNED = ("vectorized", "warptile")  # the rungs that read float4 straight from a and b
# Each product kernel's file: its rung of the GEMM ladder, as rows record it (`gemm_rung`).
RUNG_FILES = {
    "tiled": "02_tiled",
    "blocktile": "03_blocktile",
    "vectorized": "04_vectorized",
    "warptile": "05_warptile",
}


class CudaTiled(CudaImpl):
    name = "cuda-tiled"
    rung = 4
    kernel_files = (*NETWORK_FILES, *(f"{stem}.cu" for stem in RUNG_FILES.values()))

    def __init__(self, backend=None, kernel=None, warptile: WarptileConfig | None = None):
        if kernel not in (None, *KERNELS):
            raise ValueError(
                f"kernel must be None (best per shape) or one of {KERNELS}, got {kernel!r}"
            )
        if warptile is not None and not isinstance(warptile, WarptileConfig):
            raise TypeError(f"warptile must be a WarptileConfig or None, got {warptile!r}")
        self.kernel = kernel
        self.warptile = (warptile or (DEFAULT if backend else chosen(gpu_name()))).checked()
        super().__init__(backend)

    def kernel_defines(self):
        return {"05_warptile.cu": self.warptile.defines}

    def info(self):
        return {
            "kernel": self.kernel or "best",
            "gemm_rung": RUNG_FILES.get(self.kernel),  # None when it varies with the shape
            "warptile": self.warptile.label,
        }

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
        if kernel in ALIGNED:
            if not self._vectorizable(a, b, plan):
                raise ValueError(
                    f"the {kernel} kernel needs untransposed operands with K and N multiples "
                    f"of 4 and 16-byte aligned data; got K={plan.K}, N={plan.N}, "
                    f"transposed a={plan.ta}, b={plan.tb}"
                )
            tiles = self.warptile if kernel == "warptile" else None
            bm, bn = (tiles.bm, tiles.bn) if tiles else (BLOCK_TILE, BLOCK_TILE)
            grid = (cdiv(plan.N, bn), cdiv(plan.M, bm), plan.X)
            threads = tiles.threads if tiles else THREADS[kernel]
            self.backend.launch(f"matmul_{kernel}", grid, (threads,), (a, b, c, *plan.sizes))
            return
        grid = (cdiv(plan.N, BLOCK_TILE), cdiv(plan.M, BLOCK_TILE), plan.X)
        self.backend.launch(
            "matmul_blocktile", grid, (THREADS[kernel],), (a, b, c, *plan.sizes, *plan.strides)
        )
