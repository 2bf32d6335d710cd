"""The CUDA rungs' network ops, the same in every rung: the launch helpers and ops.cu's ops.

Add, relu, row softmax, cross-entropy and the optimizer updates run the kernels of
kernels/cuda/ops.cu, and so do the bias add and the column sums that linear (a product, in
impls/_cuda_base.py) takes from here; split_heads / merge_heads and flatten / unflatten are
pure layout work: CuPy's own reshape, transpose and copy. The CNN's and the transformer's
other ops are impls/_cuda_nn.py's and impls/_cuda_conv.py's, on the launch helpers here.
NetworkOps is mixed into CudaImpl, whose constructor sets `backend` and `xp`. Here too,
since the products use them as well: cdiv, the grid arithmetic of every launch, and the
shape checks, remembered per shape.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from harness.contract import ShapeError, check_shapes

OPS_BLOCK = 256  # threads of an elementwise launch: ops.cu's OPS_BLOCK
ROW_THREADS = 128  # threads per row of a row-wise launch: ops.cu's ROW_THREADS
COL_BLOCK = (32, 8)  # colsum's block: ops.cu's COL_WIDTH x COL_ROWS


def cdiv(n: int, d: int) -> int:
    return -(-n // d)


# A training step calls the same ops on the same shapes over and over, and at MNIST sizes the
# Python around a launch costs as much as the kernel: what depends on shapes alone is worked
# out once per shape (the checks here, a product's sizes and strides in _cuda_base.py).


@lru_cache(maxsize=4096)
def checked(op: str, *shapes) -> dict:
    """check_shapes, remembered for shapes that passed (a failure raises every time)."""
    return check_shapes(op, *shapes)


class NetworkOps:
    """The ops of kernels/cuda/ops.cu and the head layout, for a CUDA impl whose constructor
    sets `backend` (impls/_cuda_backend.py's interface) and `xp` (its array module), and whose
    `get` copies an array to the host (the loss's one float)."""

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

    # -- elementwise, on arrays of any shape: the kernels see them flat -------------------
    def _map(self, op, kernel, *inputs):
        """A new array of the inputs' one shape, from an elementwise kernel that takes
        (*inputs, out, n)."""
        checked(op, *(x.shape for x in inputs))
        out = self.backend.empty(inputs[0].shape)
        self._elementwise(kernel, out.size, *inputs, out, np.int32(out.size))
        return out

    def add(self, a, b):
        return self._map("add", "add", a, b)

    def relu(self, x):
        return self._map("relu", "relu", x)

    def relu_bwd(self, x, dy):
        return self._map("relu_bwd", "relu_bwd", x, dy)

    # -- softmax ----------------------------------------------------------------------------
    def softmax(self, x_XTS, causal=False, scale=1.0):
        X, T, S = checked("softmax", x_XTS.shape).values()
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
        X, T, S = checked("softmax_bwd", y_XTS.shape, dy_XTS.shape).values()
        dx_XTS = self.backend.empty(y_XTS.shape)
        self._rows("softmax_bwd_rows", X * T, y_XTS, dy_XTS, dx_XTS, np.int32(S), np.float32(scale))
        return dx_XTS

    def softmax_xent(self, logits_BC, labels_B):
        B, C = checked("softmax_xent", logits_BC.shape, labels_B.shape).values()
        probs_BC = self.backend.empty((B, C))
        loss_B = self.backend.empty((B,))
        self._rows("xent_rows", B, logits_BC, labels_B, probs_BC, loss_B, np.int32(C))
        # The mean on the GPU (colsum of a B x 1 column), then one float to the host.
        total_1 = self.get(self._colsum(loss_B.reshape(B, 1)))
        return float(total_1[0]) / B, probs_BC

    def softmax_xent_bwd(self, probs_BC, labels_B):
        B, C = checked("softmax_xent_bwd", probs_BC.shape, labels_B.shape).values()
        dlogits_BC = self.backend.empty((B, C))
        self._elementwise(
            "xent_bwd", B * C, probs_BC, labels_B, dlogits_BC, np.int32(B), np.int32(C)
        )
        return dlogits_BC

    # -- layout: CuPy's reshape / transpose / copy -------------------------------------------
    def flatten(self, x_BQYZ):
        checked("flatten", x_BQYZ.shape)
        return x_BQYZ.reshape(len(x_BQYZ), -1).copy()

    def unflatten(self, x_BI, channels, height, width):
        checked("unflatten", x_BI.shape)
        if channels * height * width != x_BI.shape[1]:
            raise ShapeError(
                f"unflatten: x_BI has shape {tuple(x_BI.shape)}: its I axis must be channels * "
                f"height * width = {channels} * {height} * {width}"
            )
        return x_BI.reshape(len(x_BI), channels, height, width).copy()

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
        checked("sgd", p.shape, g.shape)
        self._elementwise("sgd", p.size, p, g, np.float32(lr), np.int32(p.size))

    def momentum(self, p, g, v, lr, mu):
        checked("momentum", p.shape, g.shape, v.shape)
        self._elementwise(
            "momentum", p.size, p, g, v, np.float32(lr), np.float32(mu), np.int32(p.size)
        )

    def adam(self, p, g, m, v, t, lr, beta1, beta2, eps):
        checked("adam", p.shape, g.shape, m.shape, v.shape)
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
