"""The pure-Python rung's arrays: nested lists of Python floats, and the helpers its ops share.

A vector is a list, a matrix a list of rows, an array of more axes a list of those. The
products keep both operands of every dot product contiguous rows (b's columns are taken once
with `zip(*rows)`), and elementwise work maps over the innermost lists, where the loop of
`map` runs in C.
"""

from __future__ import annotations

import math
from operator import mul

import numpy as np

if hasattr(math, "sumprod"):
    dot = math.sumprod
else:

    def dot(a, b):
        return sum(map(mul, a, b))


class _NoRows(list):
    """A matrix with no rows (b_KN with K = 0, w_IO with I = 0): an empty list, which keeps
    the width that nested lists cannot, so a product with it is zeros of the right shape."""

    def __init__(self, width: int):
        super().__init__()
        self.width = width


def _lists(x_np):
    """A float array as nested lists of Python floats; a matrix with no rows as _NoRows."""
    if x_np.ndim >= 2 and x_np.shape[-2] == 0:
        return [_lists(x) for x in x_np] if x_np.ndim > 2 else _NoRows(x_np.shape[1])
    return x_np.astype(np.float64).tolist()


def _columns(b_KN):
    """b's columns as tuples, so both operands of every dot are contiguous rows."""
    return list(zip(*b_KN)) if b_KN else [()] * b_KN.width


def _matmul_nt(a_MK, bt_NK):
    """a @ b from a and b's transpose: every entry one dot of two contiguous rows."""
    return [[dot(row_K, col_K) for col_K in bt_NK] for row_K in a_MK]


def _matmul(a_MK, b_KN):
    return _matmul_nt(a_MK, _columns(b_KN))


def _transpose(a_MK):
    return [list(col) for col in zip(*a_MK)]


def _innermost(x):
    """The innermost lists of an array of any number of axes: what an in-place update walks
    (a vector is its own one)."""
    if x and isinstance(x[0], list):
        for part in x:
            yield from _innermost(part)
    else:
        yield x


def _map(fn, *arrays):
    """fn of the entries of arrays of one shape (any number of axes), in that shape."""
    if arrays[0] and isinstance(arrays[0][0], list):
        return [_map(fn, *parts) for parts in zip(*arrays)]
    return list(map(fn, *arrays))


def _size(x) -> int:
    """The number of entries of an array of any number of axes."""
    return sum(map(len, _innermost(x)))
