"""What the CUDA rungs share: CuPy arrays, our kernels (kernels/cuda/*.cu) and every contract op.

The rungs differ only in the kernel that computes a product (`_product`); everything else
(bias add, relu, row softmax, cross-entropy, column sums, optimizer updates) runs the kernels
of kernels/cuda/ops.cu, the same in every rung. split_heads / merge_heads are pure layout
work: CuPy's own reshape, transpose and copy. Kernels are launched through a backend
(impls/_cuda_backend.py: CupyBackend on a GPU, the tests' emulation on the CPU), so the
launch geometry and arguments below are tested without a GPU. Every scalar goes to a kernel
as numpy.int32 or numpy.float32, as the C parameter is: CuPy would pass an int as 64 bits.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from harness.contract import Impl, check_shapes
from impls._cuda_backend import KERNELS, CupyBackend, cuda_unavailable_reason, kernel_names

# The kernel files, their kernels' names and why CUDA is unavailable: the backend's, named here.
__all__ = [
    "KERNELS",
    "CudaImpl",
    "Plan",
    "cdiv",
    "cuda_unavailable_reason",
    "kernel_names",
    "plan_product",
]

OPS_BLOCK = 256  # threads of an elementwise launch: ops.cu's OPS_BLOCK
ROW_THREADS = 128  # threads per row of a row-wise launch: ops.cu's ROW_THREADS
COL_BLOCK = (32, 8)  # colsum's block: ops.cu's COL_WIDTH x COL_ROWS


def cdiv(n: int, d: int) -> int:
    return -(-n // d)


# A training step calls the same ops on the same shapes over and over, and at MNIST sizes the
# Python around a launch costs as much as the kernel: what depends on shapes alone is worked
# out once per shape (the checks, a product's sizes and strides).


@lru_cache(maxsize=4096)
def _checked(op: str, *shapes) -> dict:
    """check_shapes, remembered for shapes that passed (a failure raises every time)."""
    return check_shapes(op, *shapes)


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
    strides, never copies: A(m, k) = a[x, m, k] or a[x, k, m], likewise B."""
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


class CudaImpl(Impl):
    """Every contract op on CuPy arrays; a subclass says which files to load and `_product`."""

    device = "cuda"
    kernel_files: tuple = ("ops.cu",)

    def __init__(self, backend=None):
        self.backend = backend or CupyBackend(self.kernel_files)
        self.xp = self.backend.xp

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

    # -- launching ------------------------------------------------------------------------
    def _elementwise(self, kernel, n, *args):
        """One thread per element of an n-element array (n == 0 launches nothing)."""
        if n:
            self.backend.launch(kernel, (cdiv(n, OPS_BLOCK),), (OPS_BLOCK,), args)

    def _rows(self, kernel, rows, *args):
        """One block of ROW_THREADS per row."""
        if rows:
            self.backend.launch(kernel, (rows,), (ROW_THREADS,), args)

    def _colsum(self, x_RC):
        R, C = x_RC.shape
        out_C = self.backend.empty((C,))
        self.backend.launch(
            "colsum", (cdiv(C, COL_BLOCK[0]),), COL_BLOCK, (x_RC, out_C, np.int32(R), np.int32(C))
        )
        return out_C

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

    # -- products -------------------------------------------------------------------------
    def matmul(self, a_MK, b_KN):
        _checked("matmul", a_MK.shape, b_KN.shape)
        return self._gemm(a_MK, b_KN)

    def matmul_bwd(self, a_MK, b_KN, dc_MN):
        _checked("matmul_bwd", a_MK.shape, b_KN.shape, dc_MN.shape)
        return self._gemm(dc_MN, b_KN, tb=True), self._gemm(a_MK, dc_MN, ta=True)

    def bmm(self, a_XMK, b_XKN):
        _checked("bmm", a_XMK.shape, b_XKN.shape)
        return self._gemm(a_XMK, b_XKN)

    def bmm_bwd(self, a_XMK, b_XKN, dc_XMN):
        _checked("bmm_bwd", a_XMK.shape, b_XKN.shape, dc_XMN.shape)
        return self._gemm(dc_XMN, b_XKN, tb=True), self._gemm(a_XMK, dc_XMN, ta=True)

    def linear(self, x_BI, w_IO, b_O):
        size = _checked("linear", x_BI.shape, w_IO.shape, b_O.shape)
        y_BO = self._gemm(x_BI, w_IO)
        self._elementwise(
            "add_bias", y_BO.size, y_BO, b_O, np.int32(size["B"]), np.int32(size["O"])
        )
        return y_BO

    def linear_bwd(self, x_BI, w_IO, dy_BO):
        _checked("linear_bwd", x_BI.shape, w_IO.shape, dy_BO.shape)
        return (
            self._gemm(dy_BO, w_IO, tb=True),
            self._gemm(x_BI, dy_BO, ta=True),
            self._colsum(dy_BO),
        )

    # -- elementwise ----------------------------------------------------------------------
    def add(self, a_BI, b_BI):
        _checked("add", a_BI.shape, b_BI.shape)
        c_BI = self.backend.empty(a_BI.shape)
        self._elementwise("add", a_BI.size, a_BI, b_BI, c_BI, np.int32(a_BI.size))
        return c_BI

    def relu(self, x_BI):
        y_BI = self.backend.empty(x_BI.shape)
        self._elementwise("relu", x_BI.size, x_BI, y_BI, np.int32(x_BI.size))
        return y_BI

    def relu_bwd(self, x_BI, dy_BI):
        _checked("relu_bwd", x_BI.shape, dy_BI.shape)
        dx_BI = self.backend.empty(x_BI.shape)
        self._elementwise("relu_bwd", x_BI.size, x_BI, dy_BI, dx_BI, np.int32(x_BI.size))
        return dx_BI

    # -- softmax ----------------------------------------------------------------------------
    def softmax(self, x_XTS, causal=False, scale=1.0):
        X, T, S = _checked("softmax", x_XTS.shape).values()
        y_XTS = self.backend.empty(x_XTS.shape)
        self._rows(
            "softmax_rows",
            X * T,
            x_XTS,
            y_XTS,
            np.int32(T),
            np.int32(S),
            np.float32(scale),
            np.int32(bool(causal)),
        )
        return y_XTS

    def softmax_bwd(self, y_XTS, dy_XTS, scale=1.0):
        X, T, S = _checked("softmax_bwd", y_XTS.shape, dy_XTS.shape).values()
        dx_XTS = self.backend.empty(y_XTS.shape)
        self._rows("softmax_bwd_rows", X * T, y_XTS, dy_XTS, dx_XTS, np.int32(S), np.float32(scale))
        return dx_XTS

    def softmax_xent(self, logits_BC, labels_B):
        B, C = _checked("softmax_xent", logits_BC.shape, labels_B.shape).values()
        probs_BC = self.backend.empty((B, C))
        loss_B = self.backend.empty((B,))
        self._rows("xent_rows", B, logits_BC, labels_B, probs_BC, loss_B, np.int32(C))
        # The mean on the GPU (colsum of a B x 1 column), then one float to the host.
        total_1 = self.get(self._colsum(loss_B.reshape(B, 1)))
        return float(total_1[0]) / B, probs_BC

    def softmax_xent_bwd(self, probs_BC, labels_B):
        B, C = _checked("softmax_xent_bwd", probs_BC.shape, labels_B.shape).values()
        dlogits_BC = self.backend.empty((B, C))
        self._elementwise(
            "xent_bwd", B * C, probs_BC, labels_B, dlogits_BC, np.int32(B), np.int32(C)
        )
        return dlogits_BC

    # -- attention layout: CuPy's reshape / transpose / copy ------------------------------
    def split_heads(self, x_RD, batch, heads, transpose=False):
        R, D = x_RD.shape
        T, E = R // batch, D // heads
        x_BTGE = x_RD.reshape(batch, T, heads, E)
        if transpose:  # keys as (E, S) per head, ready for q k^T
            return self.xp.ascontiguousarray(x_BTGE.transpose(0, 2, 3, 1)).reshape(-1, E, T)
        return self.xp.ascontiguousarray(x_BTGE.transpose(0, 2, 1, 3)).reshape(-1, T, E)

    def merge_heads(self, x_XTE, batch, heads, transposed=False):
        x_BGTE = x_XTE.reshape(batch, heads, *x_XTE.shape[1:])  # x_BGET when transposed
        order = (0, 3, 1, 2) if transposed else (0, 2, 1, 3)
        x_BTGE = self.xp.ascontiguousarray(x_BGTE.transpose(order))
        B, T, G, E = x_BTGE.shape
        return x_BTGE.reshape(B * T, G * E)

    # -- optimizer updates, in place ------------------------------------------------------
    def sgd(self, p, g, lr):
        _checked("sgd", p.shape, g.shape)
        self._elementwise("sgd", p.size, p, g, np.float32(lr), np.int32(p.size))

    def momentum(self, p, g, v, lr, mu):
        _checked("momentum", p.shape, g.shape, v.shape)
        self._elementwise(
            "momentum", p.size, p, g, v, np.float32(lr), np.float32(mu), np.int32(p.size)
        )

    def adam(self, p, g, m, v, t, lr, beta1, beta2, eps):
        _checked("adam", p.shape, g.shape, m.shape, v.shape)
        correction = math.sqrt(1 - beta2**t)  # the bias corrections, folded as in ops.cu
        step, eps_hat = lr * correction / (1 - beta1**t), eps * correction
        self._elementwise(
            "adam",
            p.size,
            p,
            g,
            m,
            v,
            np.float32(beta1),
            np.float32(beta2),
            np.float32(1 - beta1),
            np.float32(1 - beta2),
            np.float32(step),
            np.float32(eps_hat),
            np.int32(p.size),
        )
