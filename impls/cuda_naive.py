"""The naive CUDA rung: one GPU thread per output of every product (kernels/cuda/01_naive.cu).

Every other op is the shared network kernels of kernels/cuda/ops.cu, nn.cu and conv.cu
(see _cuda_base.py); the convolution's product is this rung's.
"""

from __future__ import annotations

from impls._cuda_base import NETWORK_FILES, CudaImpl, cdiv

NAIVE_BLOCK = (32, 8)  # x along n (a warp writes 32 consecutive outputs), y along m


class CudaNaive(CudaImpl):
    name = "cuda-naive"
    rung = 3
    kernel_files = (*NETWORK_FILES, "01_naive.cu")

    def info(self):
        return {"gemm_rung": "01_naive"}

    def _product(self, a, b, c, plan):
        grid = (cdiv(plan.N, NAIVE_BLOCK[0]), cdiv(plan.M, NAIVE_BLOCK[1]), plan.X)
        self.backend.launch(
            "matmul_naive", grid, NAIVE_BLOCK, (a, b, c, *plan.sizes, *plan.strides)
        )
