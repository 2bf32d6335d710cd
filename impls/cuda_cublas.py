"""The reference row for the CUDA rungs: products by cuBLAS (`cupy.matmul`), in float32.

TF32 is off, so every ratio against the hand-written kernels compares float32 with float32:
CuPy hands cuBLAS TF32 only when CUPY_TF32=1, which this impl refuses, and
NVIDIA_TF32_OVERRIDE=0 keeps cuBLAS from choosing it on its own. (The correctness gate would
catch it anyway: TF32's 10-bit mantissa misses the 1e-5 product tolerance by far.)
Every other op is the shared network kernels of kernels/cuda/ops.cu, nn.cu and conv.cu
(see _cuda_base.py); the convolution's product is this rung's.
"""

from __future__ import annotations

import os

from impls._cuda_base import NETWORK_FILES, CudaImpl, cuda_unavailable_reason


class CudaCublas(CudaImpl):
    name = "cuda-cublas"
    rung = 4
    kernel_files = NETWORK_FILES

    @classmethod
    def unavailable_reason(cls):
        if os.environ.get("CUPY_TF32", "0") != "0":
            return (
                f"CUPY_TF32={os.environ['CUPY_TF32']} makes cuBLAS round products to "
                f"TF32; unset it for a float32 reference"
            )
        return cuda_unavailable_reason()

    def __init__(self, backend=None):
        os.environ["NVIDIA_TF32_OVERRIDE"] = "0"  # read by cuBLAS when its handle is made
        super().__init__(backend)

    def info(self):
        return {"gemm_rung": "cublas"}  # the top of the GEMM ladder, with no kernel file

    def _product(self, a, b, c, plan):
        # A transposed view costs cuBLAS nothing: it flips its transpose flag.
        self.xp.matmul(
            a.swapaxes(-1, -2) if plan.ta else a, b.swapaxes(-1, -2) if plan.tb else b, out=c
        )
