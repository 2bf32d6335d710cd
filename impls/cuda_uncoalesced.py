"""The uncoalesced CUDA rung: one GPU thread per output with threadIdx.x along the rows of c,
the textbook mapping whose warps read A and write c 32 rows apart (kernels/cuda/
00_uncoalesced.cu): rung 00 of the GEMM ladder, below cuda-naive's coalesced mapping.

Every other op is the shared network kernels of kernels/cuda/ops.cu, nn.cu and conv.cu
(see _cuda_base.py); the convolution's product is this rung's.
"""

from __future__ import annotations

from impls._cuda_base import NETWORK_FILES, CudaImpl, cdiv

UNCOALESCED_BLOCK = (32, 8)  # x along m (a warp spans 32 rows of c), y along n


class CudaUncoalesced(CudaImpl):
    name = "cuda-uncoalesced"
    rung = 3
    kernel_files = (*NETWORK_FILES, "00_uncoalesced.cu")

    def info(self):
        return {"gemm_rung": "00_uncoalesced"}

    def _product(self, a, b, c, plan):
        grid = (cdiv(plan.M, UNCOALESCED_BLOCK[0]), cdiv(plan.N, UNCOALESCED_BLOCK[1]), plan.X)
        self.backend.launch(
            "matmul_uncoalesced", grid, UNCOALESCED_BLOCK, (a, b, c, *plan.sizes, *plan.strides)
        )
