"""The NumPy rung's one route to BLAS: `einsum(subscripts, a, b)`, planned once per shapes.

Why einsum is planned here: `np.einsum(..., optimize=True)` reaches BLAS (it plans the
contraction and hands it to matmul), but it parses the subscripts and plans again on every
call, about 25 us on a 2-core machine: a quarter of a 64 x 784 x 128 product, and nine of them
in an MNIST training step. Without `optimize` it runs its own C loop, ten times slower than
BLAS at 256^3. The plan depends only on the subscripts and shapes, so `einsum` below makes it
once (cached): (batch, free-of-a, summed) @ (batch, summed, free-of-b), as transposed views
that BLAS reads with its transpose flags, without copies (an operand whose letters are not
contiguous in that order is copied once, by the reshape).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=4096)
def _plan(subscripts, shape_a, shape_b):
    """'bi,io->bo' and the shapes -> the transposes and reshapes that make it one matmul."""
    inputs, out = subscripts.split("->")
    sub_a, sub_b = inputs.split(",")
    batch = [c for c in out if c in sub_a and c in sub_b]
    summed = [c for c in sub_a if c in sub_b and c not in out]
    free_a = [c for c in sub_a if c not in sub_b]
    free_b = [c for c in sub_b if c not in sub_a]
    if sorted(batch + free_a + free_b) != sorted(out) or len(set(sub_a)) < len(sub_a):
        raise ValueError(f"einsum {subscripts!r}: only products of two operands are planned")
    size = dict(zip(sub_a, shape_a))
    for c, n in zip(sub_b, shape_b):
        if size.setdefault(c, n) != n:
            raise ValueError(
                f"einsum {subscripts!r}: axis {c} is {size[c]} in the first "
                f"operand (shape {shape_a}) but {n} in the second ({shape_b})"
            )

    def prod(letters):
        return math.prod(size[c] for c in letters)

    lead = (prod(batch),) if batch else ()
    order = batch + free_a + free_b
    return (
        [sub_a.index(c) for c in batch + free_a + summed],
        (*lead, prod(free_a), prod(summed)),
        [sub_b.index(c) for c in batch + summed + free_b],
        (*lead, prod(summed), prod(free_b)),
        [size[c] for c in order],
        [order.index(c) for c in out],
    )


def einsum(subscripts, a, b):
    """np.einsum(subscripts, a, b, optimize=True), with the planning done once per shapes."""
    perm_a, shape_a3, perm_b, shape_b3, shape_c, perm_out = _plan(subscripts, a.shape, b.shape)
    c_3 = np.matmul(a.transpose(perm_a).reshape(shape_a3), b.transpose(perm_b).reshape(shape_b3))
    return c_3.reshape(shape_c).transpose(perm_out)
