"""What the CUDA rungs share: CuPy arrays, our kernels (kernels/cuda/*.cu) and every contract op.

The rungs differ only in the kernel that computes a product (`_product`); this module places
arrays, plans each product (its sizes, and transposes as strides) and runs the contract's
products through it, and so does the convolution (impls/_cuda_conv.py's ConvOps: im2col,
the rung's product, col2im). Everything else is the same in every rung: the bias add, relu,
row softmax, cross-entropy, column sums, optimizer updates and the layouts are
impls/_cuda_ops.py's NetworkOps (kernels/cuda/ops.cu); the other activations, the squared
error, layernorm, transpose and the embedding are impls/_cuda_nn.py's NnOps (nn.cu).
Kernels are launched through a backend (impls/_cuda_backend.py: CupyBackend on a GPU, the
tests' emulation on the CPU), so the launch geometry and arguments are tested without a
GPU. Every scalar goes to a kernel as numpy.int32 or numpy.float32, as the C parameter is:
CuPy would pass an int as 64 bits.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from harness.contract import Impl
from impls._cuda_backend import (
    KERNELS,
    CupyBackend,
    cuda_unavailable_reason,
    gpu_name,
    kernel_names,
)
from impls._cuda_conv import ConvOps
from impls._cuda_nn import NnOps
from impls._cuda_ops import NetworkOps, cdiv, checked

# The kernel files, their kernels' names, why CUDA is unavailable and the GPU's name (the
# backend's) and the grid arithmetic (the network ops'), named here so that a rung imports
# this module alone.
__all__ = [
    "KERNELS",
    "NETWORK_FILES",
    "CudaImpl",
    "Plan",
    "cdiv",
    "cuda_unavailable_reason",
    "gpu_name",
    "kernel_names",
    "plan_product",
]


class Plan(NamedTuple):
    """One product c = op(a) @ op(b) as the kernels take it (see _gemm)."""

    shape_c: tuple
    M: int
    K: int
    N: int
    X: int
    ta: bool
    tb: bool
    sizes: tuple  # (M, K, N) as numpy.int32
    strides: tuple  # (sa_m, sa_k, sb_k, sb_n, sa_x, sb_x) as numpy.int32


@lru_cache(maxsize=4096)
def plan_product(shape_a, shape_b, ta, tb) -> Plan:
    """The sizes and strides of op(a) @ op(b); op transposes the last two axes where ta / tb
    say so, and 3-d operands are batches. a and b are the arrays as stored, so their axes are
    (X,) M K or (X,) K M, and (X,) K N or (X,) N K: no one suffix fits. Transposes are
    strides, never copies: A(m, k) = a[x, m, k] or a[x, k, m], likewise B. Remembered per
    shape, as the shape checks are (see _cuda_ops.py): a training step repeats its shapes."""
    rows_a, cols_a = shape_a[-2:]
    rows_b, cols_b = shape_b[-2:]
    M, K = (cols_a, rows_a) if ta else (rows_a, cols_a)
    N = rows_b if tb else cols_b
    batched = len(shape_a) == 3
    X = shape_a[0] if batched else 1
    strides = (1, cols_a) if ta else (cols_a, 1)  # (sa_m, sa_k)
    strides += (1, cols_b) if tb else (cols_b, 1)  # (sb_k, sb_n)
    strides += (rows_a * cols_a, rows_b * cols_b) if batched else (0, 0)
    return Plan(
        (X, M, N) if batched else (M, N),
        M,
        K,
        N,
        X,
        ta,
        tb,
        tuple(np.int32(n) for n in (M, K, N)),
        tuple(np.int32(n) for n in strides),
    )


# The kernel files of every rung: all but the products (see the mixins above).
NETWORK_FILES = ("ops.cu", "nn.cu", "conv.cu")


class CudaImpl(ConvOps, NnOps, NetworkOps, Impl):
    """Every contract op on CuPy arrays (all but the products from the mixins); a subclass
    says which files to load (NETWORK_FILES and its products') and `_product`."""

    device = "cuda"
    kernel_files: tuple = NETWORK_FILES

    def __init__(self, backend=None):
        self.backend = backend or CupyBackend(self.kernel_files, self.kernel_defines())
        self.xp = self.backend.xp

    def kernel_defines(self) -> dict:
        """{kernel file: its -D options} for the backend to build with; none by default."""
        return {}

    @classmethod
    def unavailable_reason(cls):
        return cuda_unavailable_reason()

    def device_peak_bytes(self, fn):
        return self.backend.peak_bytes(fn)

    # -- placement ------------------------------------------------------------------------
    def put(self, x_np, role):
        dtype = np.int64 if role == "label" else np.float32
        return self.backend.to_device(np.ascontiguousarray(x_np, dtype=dtype))

    def get(self, x):
        return self.backend.to_host(x)

    def sync(self):
        self.backend.sync()

    # -- products -------------------------------------------------------------------------
    def _gemm(self, a, b, ta=False, tb=False):
        """op(a) @ op(b), batch by batch for 3-d operands: see plan_product."""
        plan = plan_product(a.shape, b.shape, ta, tb)
        c = self.backend.empty(plan.shape_c)
        if not plan.K:  # a sum of no terms; no kernel runs (a prefetching one would read a, b)
            c.fill(0)
        elif c.size:
            self._product(a, b, c, plan)
        return c

    def _product(self, a, b, c, plan: Plan):
        """c = op(a) @ op(b), as the plan says; a subclass picks the kernel."""
        raise NotImplementedError

    def matmul(self, a_MK, b_KN):
        checked("matmul", a_MK.shape, b_KN.shape)
        return self._gemm(a_MK, b_KN)

    def matmul_bwd(self, a_MK, b_KN, dc_MN):
        checked("matmul_bwd", a_MK.shape, b_KN.shape, dc_MN.shape)
        return self._gemm(dc_MN, b_KN, tb=True), self._gemm(a_MK, dc_MN, ta=True)

    def bmm(self, a_XMK, b_XKN):
        checked("bmm", a_XMK.shape, b_XKN.shape)
        return self._gemm(a_XMK, b_XKN)

    def bmm_bwd(self, a_XMK, b_XKN, dc_XMN):
        checked("bmm_bwd", a_XMK.shape, b_XKN.shape, dc_XMN.shape)
        return self._gemm(dc_XMN, b_XKN, tb=True), self._gemm(a_XMK, dc_XMN, ta=True)

    def linear(self, x_BI, w_IO, b_O):
        size = checked("linear", x_BI.shape, w_IO.shape, b_O.shape)
        y_BO = self._gemm(x_BI, w_IO)
        self._elementwise(
            "add_bias", y_BO.size, y_BO, b_O, np.int32(size["B"]), np.int32(size["O"])
        )
        return y_BO

    def linear_bwd(self, x_BI, w_IO, dy_BO):
        checked("linear_bwd", x_BI.shape, w_IO.shape, dy_BO.shape)
        return (
            self._gemm(dy_BO, w_IO, tb=True),
            self._gemm(x_BI, dy_BO, ta=True),
            self._colsum(dy_BO),
        )
