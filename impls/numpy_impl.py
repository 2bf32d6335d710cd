"""The NumPy rung: float32 ndarrays, every contraction an einsum in shape-suffix letters.

Why einsum is planned here: `np.einsum(..., optimize=True)` reaches BLAS (it plans the
contraction and hands it to matmul), but it parses the subscripts and plans again on every
call, about 25 us on a 2-core machine: a quarter of a 64 x 784 x 128 product, and nine of them
in an MNIST training step. Without `optimize` it runs its own C loop, ten times slower than
BLAS at 256^3. The plan depends only on the subscripts and shapes, so `einsum` below makes it
once (cached): (batch, free-of-a, summed) @ (batch, summed, free-of-b), as transposed views
that BLAS reads with its transpose flags, without copies. Elementwise work stays in ufuncs,
with `out=` where a temporary would only be thrown away.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from harness.contract import Impl


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


class NumpyImpl(Impl):
    name = "numpy"
    device = "cpu"
    rung = 1

    def put(self, x_np, role):
        return np.array(x_np, dtype=np.int64 if role == "label" else np.float32, order="C")

    def get(self, x):
        return np.asarray(x)

    def matmul(self, a_MK, b_KN):
        return einsum("mk,kn->mn", a_MK, b_KN)

    def matmul_bwd(self, a_MK, b_KN, dc_MN):
        return einsum("mn,kn->mk", dc_MN, b_KN), einsum("mk,mn->kn", a_MK, dc_MN)

    def bmm(self, a_XMK, b_XKN):
        return einsum("xmk,xkn->xmn", a_XMK, b_XKN)

    def bmm_bwd(self, a_XMK, b_XKN, dc_XMN):
        return (einsum("xmn,xkn->xmk", dc_XMN, b_XKN), einsum("xmk,xmn->xkn", a_XMK, dc_XMN))

    def linear(self, x_BI, w_IO, b_O):
        y_BO = einsum("bi,io->bo", x_BI, w_IO)
        y_BO += b_O
        return y_BO

    def linear_bwd(self, x_BI, w_IO, dy_BO):
        return (
            einsum("bo,io->bi", dy_BO, w_IO),
            einsum("bi,bo->io", x_BI, dy_BO),
            dy_BO.sum(axis=0),
        )

    def add(self, a_BI, b_BI):
        return a_BI + b_BI

    def relu(self, x_BI):
        return np.maximum(x_BI, 0.0)

    def relu_bwd(self, x_BI, dy_BI):
        return dy_BI * (x_BI > 0)

    def softmax(self, x_XTS, causal=False, scale=1.0):
        z_XTS = x_XTS * np.float32(scale)
        if causal:
            T, S = z_XTS.shape[1:]
            z_XTS[:, ~np.tri(T, S, dtype=bool)] = -np.inf
        z_XTS -= z_XTS.max(axis=-1, keepdims=True)
        np.exp(z_XTS, out=z_XTS)
        z_XTS /= z_XTS.sum(axis=-1, keepdims=True)
        return z_XTS

    def softmax_bwd(self, y_XTS, dy_XTS, scale=1.0):
        # A row-wise dot, not a product BLAS can help with: einsum's own C loop is the tool.
        dot_XT1 = np.einsum("xts,xts->xt", dy_XTS, y_XTS)[..., None]
        return np.float32(scale) * y_XTS * (dy_XTS - dot_XT1)

    def softmax_xent(self, logits_BC, labels_B):
        z_BC = logits_BC - logits_BC.max(axis=1, keepdims=True)
        logsumexp_B = np.log(np.exp(z_BC).sum(axis=1))
        B = len(labels_B)
        loss = float((logsumexp_B - z_BC[np.arange(B), labels_B]).sum()) / B
        z_BC -= logsumexp_B[:, None]
        return loss, np.exp(z_BC, out=z_BC)

    def softmax_xent_bwd(self, probs_BC, labels_B):
        B = len(labels_B)
        dlogits_BC = probs_BC / np.float32(B)
        dlogits_BC[np.arange(B), labels_B] -= np.float32(1.0 / B)
        return dlogits_BC

    def split_heads(self, x_RD, batch, heads, transpose=False):
        R, D = x_RD.shape
        T, E = R // batch, D // heads
        x_BTGE = x_RD.reshape(batch, T, heads, E)
        order = "btge->bget" if transpose else "btge->bgte"
        x_BGTE = np.ascontiguousarray(np.einsum(order, x_BTGE))
        return x_BGTE.reshape(batch * heads, *x_BGTE.shape[2:])

    def merge_heads(self, x_XTE, batch, heads, transposed=False):
        x_BGTE = x_XTE.reshape(batch, heads, *x_XTE.shape[1:])
        order = "bget->btge" if transposed else "bgte->btge"
        x_BTGE = np.ascontiguousarray(np.einsum(order, x_BGTE))
        T = x_BTGE.shape[1]
        return x_BTGE.reshape(batch * T, -1)

    def sgd(self, p, g, lr):
        p -= np.float32(lr) * g

    def momentum(self, p, g, v, lr, mu):
        v *= np.float32(mu)
        v += g
        p -= np.float32(lr) * v

    def adam(self, p, g, m, v, t, lr, beta1, beta2, eps):
        m *= np.float32(beta1)
        m += np.float32(1 - beta1) * g
        v *= np.float32(beta2)
        v += np.float32(1 - beta2) * (g * g)
        # Both bias corrections fold into one step size; eps is scaled to stay where it was.
        step = np.float32(lr * np.sqrt(1 - beta2**t) / (1 - beta1**t))
        p -= step * m / (np.sqrt(v) + np.float32(eps * np.sqrt(1 - beta2**t)))
