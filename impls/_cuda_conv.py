"""The CUDA rungs' convolution and max pool: kernels/cuda/conv.cu around the rung's product.

conv2d is im2col, then one product by the rung's own kernel (`_gemm`: naive, tiled or
cuBLAS), then the bias add; its backward takes both gradients of the product by the same
kernel, col2im and a row sum (see conv.cu's header for the layout). ConvOps is mixed into
CudaImpl, with NetworkOps (the launch helpers) and NnOps (the row sums).
"""

from __future__ import annotations

import numpy as np

from harness.contract import POOL, ShapeError
from impls._cuda_ops import checked


def conv_windows(op, Y, Z, J, L, stride, padding) -> tuple:
    """-> (U, W), the output size of a J x L kernel over a Y x Z image, or a ValueError."""
    if stride < 1 or padding < 0:
        raise ValueError(f"{op}: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    U, W = (Y + 2 * padding - J) // stride + 1, (Z + 2 * padding - L) // stride + 1
    if U < 1 or W < 1:
        raise ValueError(
            f"{op}: a {J} x {L} kernel (J x L) does not fit a {Y} x {Z} image (Y x Z) padded "
            f"by {padding}: it needs Y + 2 padding >= J and Z + 2 padding >= L"
        )
    return U, W


def check_output(op, name, shape, expected):
    if tuple(shape[2:]) != expected:
        raise ShapeError(
            f"{op}: {name} has shape {tuple(shape)} but the windows of x give U x W = "
            f"{expected[0]} x {expected[1]}"
        )


class ConvOps:
    """conv2d and maxpool2d with their backwards, for a CudaImpl (see NetworkOps)."""

    def _im2col(self, x_BQYZ, J, L, U, W, stride, padding):
        """-> cols_KN, K = Q * J * L and N = B * U * W: the patches of x as columns."""
        B, Q, Y, Z = x_BQYZ.shape
        cols_KN = self.backend.empty((Q * J * L, B * U * W))
        sizes = (B, Q, Y, Z, J, L, U, W, stride, padding)
        self._elementwise("im2col", cols_KN.size, x_BQYZ, cols_KN, *map(np.int32, sizes))
        return cols_KN

    def conv2d(self, x_BQYZ, w_FQJL, b_F, stride, padding):
        size = checked("conv2d", x_BQYZ.shape, w_FQJL.shape, b_F.shape)
        B, Q, Y, Z, F, J, L = (size[letter] for letter in "BQYZFJL")
        U, W = conv_windows("conv2d", Y, Z, J, L, stride, padding)
        cols_KN = self._im2col(x_BQYZ, J, L, U, W, stride, padding)
        y_FN = self._gemm(w_FQJL.reshape(F, Q * J * L), cols_KN)  # N = (b, u, w)
        y_BFUW = self.backend.empty((B, F, U, W))
        self._elementwise("conv_out", y_BFUW.size, y_FN, b_F, y_BFUW, *map(np.int32, (B, F, U * W)))
        return y_BFUW

    def conv2d_bwd(self, x_BQYZ, w_FQJL, dy_BFUW, stride, padding):
        size = checked("conv2d_bwd", x_BQYZ.shape, w_FQJL.shape, dy_BFUW.shape)
        B, Q, Y, Z, F, J, L = (size[letter] for letter in "BQYZFJL")
        U, W = conv_windows("conv2d_bwd", Y, Z, J, L, stride, padding)
        check_output("conv2d_bwd", "dy_BFUW", dy_BFUW.shape, (U, W))
        dy_FN = self.backend.empty((F, B * U * W))
        self._elementwise("conv_dy_rows", dy_FN.size, dy_BFUW, dy_FN, *map(np.int32, (B, F, U * W)))
        cols_KN = self._im2col(x_BQYZ, J, L, U, W, stride, padding)
        dw_FK = self._gemm(dy_FN, cols_KN, tb=True)
        dcols_KN = self._gemm(w_FQJL.reshape(F, Q * J * L), dy_FN, ta=True)
        dx_BQYZ = self.backend.empty((B, Q, Y, Z))
        sizes = (B, Q, Y, Z, J, L, U, W, stride, padding)
        self._elementwise("col2im", dx_BQYZ.size, dcols_KN, dx_BQYZ, *map(np.int32, sizes))
        return dx_BQYZ, dw_FK.reshape(F, Q, J, L), self._row_sums(dy_FN)

    # -- POOL x POOL max pool, stride POOL (conv.cu's POOL_SIDE) -------------------------
    def maxpool2d(self, x_BQYZ):
        B, Q, Y, Z = checked("maxpool2d", x_BQYZ.shape).values()
        U, W = Y // POOL, Z // POOL
        y_BQUW = self.backend.empty((B, Q, U, W))
        sizes = (B * Q, Y, Z, U, W)
        self._elementwise("maxpool2d", y_BQUW.size, x_BQYZ, y_BQUW, *map(np.int32, sizes))
        return y_BQUW

    def maxpool2d_bwd(self, x_BQYZ, dy_BQUW):
        checked("maxpool2d_bwd", x_BQYZ.shape, dy_BQUW.shape)
        B, Q, Y, Z = x_BQYZ.shape
        U, W = Y // POOL, Z // POOL
        check_output("maxpool2d_bwd", "dy_BQUW", dy_BQUW.shape, (U, W))
        dx_BQYZ = self.backend.empty((B, Q, Y, Z))
        sizes = (B * Q, Y, Z, U, W)
        self._elementwise(
            "maxpool2d_bwd", dx_BQYZ.size, x_BQYZ, dy_BQUW, dx_BQYZ, *map(np.int32, sizes)
        )
        return dx_BQYZ
