"""The pure-Python rung's image ops, mixed into PurePythonImpl: conv2d, maxpool2d, flatten.

Images are nested lists x_BQYZ. A conv is im2col as index arithmetic: every output pixel
(b, u, w) becomes one row of a patch matrix cols_MK (M = B*U*W, K = Q*J*L, padding read as
zeros), and the conv is the rung's linear layer over those rows, a dot-product GEMM with the
filters as its columns. The backward is linear's backward over the same rows, then col2im:
each patch row's gradient scatter-added back into the pixels it was read from.
"""

from __future__ import annotations

from itertools import islice
from operator import add

from harness.contract import POOL
from impls._pure_python_lists import _transpose

# A pool window's offsets (j, l) in row-major order: the order a tie is broken in.
WINDOW = [(j, l) for j in range(POOL) for l in range(POOL)]


def _first_max(x_YZ, top, left):
    """-> the offsets (j, l) of the max of the window at (top, left); max keeps the first of
    equal keys, so on a tie the first in row-major order wins."""
    return max(WINDOW, key=lambda jl: x_YZ[top + jl[0]][left + jl[1]])


def _pad(x_YZ, padding):
    """One image plane with `padding` zeros on every side."""
    edge = [0.0] * padding
    rows = [[0.0] * (len(x_YZ[0]) + 2 * padding) for _ in range(2 * padding)]
    return rows[:padding] + [edge + x_Z + edge for x_Z in x_YZ] + rows[padding:]


def _out_size(x_BQYZ, J, L, stride, padding):
    """-> (U, W): the windows that fit on the padded image, a stride apart."""
    Y, Z = len(x_BQYZ[0][0]), len(x_BQYZ[0][0][0])
    return (Y + 2 * padding - J) // stride + 1, (Z + 2 * padding - L) // stride + 1


def _im2col(x_BQYZ, J, L, stride, padding):
    """-> cols_MK: row (b * U + u) * W + w holds the patch read by output pixel (b, u, w),
    in (q, j, l) order; a patch's entries outside the image are zeros of the padding."""
    U, W = _out_size(x_BQYZ, J, L, stride, padding)
    cols_MK = []
    for x_QYZ in x_BQYZ:
        xp_QYZ = [_pad(x_YZ, padding) for x_YZ in x_QYZ]
        for u in range(U):
            top = u * stride
            for left in range(0, W * stride, stride):
                cols_MK.append(
                    [
                        v
                        for xp_YZ in xp_QYZ
                        for xp_Z in xp_YZ[top : top + J]
                        for v in xp_Z[left : left + L]
                    ]
                )
    return cols_MK


def _col2im(dcols_MK, x_BQYZ, J, L, stride, padding):
    """-> dx_BQYZ: every entry of dcols_MK added into the pixel _im2col read it from; the
    padding's share is dropped."""
    U, W = _out_size(x_BQYZ, J, L, stride, padding)
    Y, Z = len(x_BQYZ[0][0]), len(x_BQYZ[0][0][0])
    rows_M = iter(dcols_MK)
    dx_BQYZ = []
    for x_QYZ in x_BQYZ:
        dxp_QYZ = [[[0.0] * (Z + 2 * padding) for _ in range(Y + 2 * padding)] for _ in x_QYZ]
        for u in range(U):
            top = u * stride
            for left in range(0, W * stride, stride):
                dcol_K = iter(next(rows_M))  # read in (q, j, l) order, as _im2col wrote it
                for dxp_YZ in dxp_QYZ:
                    for dxp_Z in dxp_YZ[top : top + J]:  # the rows themselves, not copies
                        part_L = dxp_Z[left : left + L]
                        dxp_Z[left : left + L] = map(add, part_L, islice(dcol_K, L))
        dx_BQYZ.append(
            [
                [dxp_Z[padding : padding + Z] for dxp_Z in dxp_YZ[padding : padding + Y]]
                for dxp_YZ in dxp_QYZ
            ]
        )
    return dx_BQYZ


def _images(y_MF, U, W):
    """Pixel rows y_MF (M = B*U*W) -> images y_BFUW."""
    UW = U * W
    return [
        [[list(y_M[u * W : (u + 1) * W]) for u in range(U)] for y_M in zip(*y_MF[m : m + UW])]
        for m in range(0, len(y_MF), UW)
    ]


def _pixel_rows(dy_BFUW):
    """Images dy_BFUW -> pixel rows dy_MF (M = B*U*W), the inverse of _images."""
    return [
        list(dy_F)
        for dy_FUW in dy_BFUW
        for dy_F in zip(*[[v for dy_W in dy_UW for v in dy_W] for dy_UW in dy_FUW])
    ]


def _flat_filters(w_FQJL):
    """-> w_KF: filter f's weights in (q, j, l) order as column f, the patches' order."""
    return _transpose([[v for w_JL in w_QJL for w_L in w_JL for v in w_L] for w_QJL in w_FQJL])


class ImageOps:
    """conv2d, maxpool2d and their backwards for an impl with the rung's linear layer, and
    flatten and unflatten between images and rows."""

    def flatten(self, x_BQYZ):
        return [[v for x_YZ in x_QYZ for x_Z in x_YZ for v in x_Z] for x_QYZ in x_BQYZ]

    def unflatten(self, x_BI, channels, height, width):
        plane = height * width
        return [
            [
                [x_I[q * plane + y * width : q * plane + (y + 1) * width] for y in range(height)]
                for q in range(channels)
            ]
            for x_I in x_BI
        ]

    def conv2d(self, x_BQYZ, w_FQJL, b_F, stride, padding):
        J, L = len(w_FQJL[0][0]), len(w_FQJL[0][0][0])
        cols_MK = _im2col(x_BQYZ, J, L, stride, padding)
        y_MF = self.linear(cols_MK, _flat_filters(w_FQJL), b_F)
        return _images(y_MF, *_out_size(x_BQYZ, J, L, stride, padding))

    def conv2d_bwd(self, x_BQYZ, w_FQJL, dy_BFUW, stride, padding):
        Q, J, L = len(w_FQJL[0]), len(w_FQJL[0][0]), len(w_FQJL[0][0][0])
        cols_MK = _im2col(x_BQYZ, J, L, stride, padding)
        dcols_MK, dw_KF, db_F = self.linear_bwd(
            cols_MK, _flat_filters(w_FQJL), _pixel_rows(dy_BFUW)
        )
        dw_FQJL = [
            [[dw_K[(q * J + j) * L : (q * J + j + 1) * L] for j in range(J)] for q in range(Q)]
            for dw_K in _transpose(dw_KF)
        ]
        return _col2im(dcols_MK, x_BQYZ, J, L, stride, padding), dw_FQJL, db_F

    def maxpool2d(self, x_BQYZ):
        return [
            [
                [
                    [
                        max(x_YZ[top + j][left + l] for j, l in WINDOW)
                        for left in range(0, len(x_YZ[0]) - POOL + 1, POOL)
                    ]
                    for top in range(0, len(x_YZ) - POOL + 1, POOL)
                ]
                for x_YZ in x_QYZ
            ]
            for x_QYZ in x_BQYZ
        ]

    def maxpool2d_bwd(self, x_BQYZ, dy_BQUW):
        dx_BQYZ = [[[[0.0] * len(x_Z) for x_Z in x_YZ] for x_YZ in x_QYZ] for x_QYZ in x_BQYZ]
        for x_QYZ, dy_QUW, dx_QYZ in zip(x_BQYZ, dy_BQUW, dx_BQYZ):
            for x_YZ, dy_UW, dx_YZ in zip(x_QYZ, dy_QUW, dx_QYZ):
                for u, dy_W in enumerate(dy_UW):
                    for w, d in enumerate(dy_W):
                        top, left = u * POOL, w * POOL
                        j, l = _first_max(x_YZ, top, left)
                        dx_YZ[top + j][left + l] = d
        return dx_BQYZ
