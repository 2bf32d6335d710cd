"""The NumPy rung's image ops: the conv as im2col and one GEMM, and the 2 x 2 max pool.

im2col: the zero-padded image's windows as a strided view (sliding_window_view, every
stride-th window), copied once into cols_JLQBUW. That order makes every product below a view
BLAS reads with its transpose flags (the kernel w_FQJL is reordered instead: it is small), and
the copy's inner loop runs along an output row (W entries) rather than along a kernel row
(L = 3). The backward recomputes the columns: the contract hands it x, not a cache.
col2im adds each kernel offset's slice of the column gradient into the padded image's
gradient, a strided slice add per (j, l): J*L NumPy calls, none per pixel.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from harness.contract import POOL
from impls._numpy_einsum import einsum

# The pool's window offsets (j, l) in row-major order: the order in which a tie is decided.
_POOL_OFFSETS = [(j, l) for j in range(POOL) for l in range(POOL)]


def _padded(x_BQYZ, padding):
    """x_BQYZ with `padding` zero rows and columns on each side (x itself when 0)."""
    if not padding:
        return x_BQYZ
    B, Q, Y, Z = x_BQYZ.shape
    xp_BQYZ = np.zeros((B, Q, Y + 2 * padding, Z + 2 * padding), np.float32)
    xp_BQYZ[:, :, padding : padding + Y, padding : padding + Z] = x_BQYZ
    return xp_BQYZ


def _cols(x_BQYZ, J, L, stride, padding):
    """-> cols_JLQBUW: entry (j, l, q, b, u, w) is x's padded pixel (stride u + j, stride w + l)
    of channel q in image b, the one the kernel's (j, l) weight meets at output pixel (u, w)."""
    xp_BQYZ = _padded(x_BQYZ, padding)
    # Every window, then every stride-th: U = (Y + 2 padding - J) // stride + 1 of them.
    win_BQUWJL = sliding_window_view(xp_BQYZ, (J, L), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.ascontiguousarray(win_BQUWJL.transpose(4, 5, 1, 0, 2, 3))


def _pool_view(a_BQYZ, j, l, U, W):
    """The (j, l) entry of every pool window of a_BQYZ: a strided view, shape (B, Q, U, W)."""
    return a_BQYZ[:, :, j : POOL * U : POOL, l : POOL * W : POOL]


class NumpyImages:
    """conv2d and maxpool2d with their backwards, mixed into NumpyImpl."""

    def conv2d(self, x_BQYZ, w_FQJL, b_F, stride, padding):
        F, Q, J, L = w_FQJL.shape
        cols_JLQBUW = _cols(x_BQYZ, J, L, stride, padding)
        # One GEMM, (F, JLQ) @ (JLQ, BUW); its (F, B) order is undone by the bias's pass.
        y_FBUW = einsum("fjlq,jlqbuw->bfuw", w_FQJL.transpose(0, 2, 3, 1), cols_JLQBUW)
        y_BFUW = np.empty(y_FBUW.shape, np.float32)
        np.add(y_FBUW, b_F[:, None, None], out=y_BFUW)
        return y_BFUW

    def conv2d_bwd(self, x_BQYZ, w_FQJL, dy_BFUW, stride, padding):
        B, Q, Y, Z = x_BQYZ.shape
        F, _, J, L = w_FQJL.shape
        U, W = dy_BFUW.shape[2:]
        cols_JLQBUW = _cols(x_BQYZ, J, L, stride, padding)
        # dy once in (F, B) order: both products below then read it as a plain (F, BUW) matrix.
        dy_FBUW = np.ascontiguousarray(dy_BFUW.transpose(1, 0, 2, 3))
        # (JLQ, BUW) @ (BUW, F): the columns as they lie; 15% faster than (F, BUW) @ (BUW, JLQ).
        dw_FQJL = np.ascontiguousarray(einsum("jlqbuw,fbuw->fqjl", cols_JLQBUW, dy_FBUW))
        w_FJLQ = np.ascontiguousarray(w_FQJL.transpose(0, 2, 3, 1))
        dcols_JLQBUW = einsum("fjlq,fbuw->jlqbuw", w_FJLQ, dy_FBUW)
        # col2im in (Q, B) order, the columns' own: each offset's add reads one block of them.
        Yp, Zp = Y + 2 * padding, Z + 2 * padding
        dxp_QBYZ = np.zeros((Q, B, Yp, Zp), np.float32)
        for j in range(J):
            for l in range(L):
                rows, cols = slice(j, j + stride * U, stride), slice(l, l + stride * W, stride)
                dxp_QBYZ[:, :, rows, cols] += dcols_JLQBUW[j, l]
        dx_BQYZ = dxp_QBYZ.transpose(1, 0, 2, 3)[:, :, padding : padding + Y, padding : padding + Z]
        return np.ascontiguousarray(dx_BQYZ), dw_FQJL, dy_FBUW.sum(axis=(1, 2, 3))

    def maxpool2d(self, x_BQYZ):
        U, W = x_BQYZ.shape[2] // POOL, x_BQYZ.shape[3] // POOL
        (j, l), *rest = _POOL_OFFSETS
        y_BQUW = _pool_view(x_BQYZ, j, l, U, W).copy()
        for j, l in rest:
            np.maximum(y_BQUW, _pool_view(x_BQYZ, j, l, U, W), out=y_BQUW)
        return y_BQUW

    def maxpool2d_bwd(self, x_BQYZ, dy_BQUW):
        U, W = dy_BQUW.shape[2:]
        y_BQUW = self.maxpool2d(x_BQYZ)
        dx_BQYZ = np.zeros_like(x_BQYZ)
        # Offsets in row-major order; a window's gradient goes to the first that holds its max.
        open_BQUW = np.ones(y_BQUW.shape, bool)  # windows whose max is not yet routed
        hit_BQUW = np.empty(y_BQUW.shape, bool)
        for j, l in _POOL_OFFSETS:
            np.equal(_pool_view(x_BQYZ, j, l, U, W), y_BQUW, out=hit_BQUW)
            hit_BQUW &= open_BQUW
            np.copyto(_pool_view(dx_BQYZ, j, l, U, W), dy_BQUW, where=hit_BQUW)
            open_BQUW ^= hit_BQUW  # hit is within open: this closes the windows just routed
        return dx_BQYZ
