"""The NumPy rung: float32 ndarrays, every contraction an einsum in shape-suffix letters.

Products go through `einsum` (impls/_numpy_einsum.py), which plans each contraction once and
hands it to BLAS. Mixed in: the elementwise ops of any shape (impls/_numpy_elementwise.py) and
the image ops, the conv as im2col and one GEMM and the pool (impls/_numpy_images.py). Other
work stays in ufuncs, with `out=` where a temporary would only be thrown away, and every
constant is a float32 so that nothing is promoted to float64.
"""

from __future__ import annotations

import math

import numpy as np

from harness.contract import LN_EPS, Impl
from impls._numpy_einsum import einsum
from impls._numpy_elementwise import NumpyElementwise
from impls._numpy_images import NumpyImages


class NumpyImpl(NumpyElementwise, NumpyImages, Impl):
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

    def layernorm(self, x_RD, gamma_D, beta_D):
        # Two passes, the variance from the centred rows: no E[x^2] - E[x]^2 cancellation.
        mean_R = x_RD.mean(axis=1)  # a pairwise float32 sum along each row
        y_RD = x_RD - mean_R[:, None]
        # The rows' sums of squares, a row-wise dot (einsum's own SIMD loop, no temporary).
        var_R = np.einsum("rd,rd->r", y_RD, y_RD)
        var_R /= np.float32(x_RD.shape[1])
        var_R += np.float32(LN_EPS)
        rstd_R = np.divide(1, np.sqrt(var_R, out=var_R), out=var_R)
        y_RD *= rstd_R[:, None]
        y_RD *= gamma_D
        y_RD += beta_D
        return y_RD, mean_R, rstd_R

    def layernorm_bwd(self, x_RD, gamma_D, mean_R, rstd_R, dy_RD):
        # dx = rstd (dxhat - mean_D(dxhat) - xhat mean_D(dxhat xhat)) with dxhat = dy gamma;
        # both row means are products with gamma (BLAS): dxhat xhat = (dy xhat) gamma.
        D = np.float32(x_RD.shape[1])
        xhat_RD = x_RD - mean_R[:, None]
        xhat_RD *= rstd_R[:, None]
        dyxhat_RD = dy_RD * xhat_RD
        dgamma_D = dyxhat_RD.sum(axis=0)
        proj_R = einsum("rd,d->r", dyxhat_RD, gamma_D)
        proj_R /= D
        shift_R = einsum("rd,d->r", dy_RD, gamma_D)
        shift_R /= D
        dx_RD = np.multiply(dy_RD, gamma_D, out=dyxhat_RD)
        dx_RD -= shift_R[:, None]
        xhat_RD *= proj_R[:, None]
        dx_RD -= xhat_RD
        dx_RD *= rstd_R[:, None]
        return dx_RD, dgamma_D, dy_RD.sum(axis=0)

    def transpose(self, a_MK):
        return np.ascontiguousarray(a_MK.T)

    # Views, not copies: no op writes into an activation, so the image and its rows may share.
    def flatten(self, x_BQYZ):
        return x_BQYZ.reshape(len(x_BQYZ), -1)

    def unflatten(self, x_BI, channels, height, width):
        return x_BI.reshape(len(x_BI), channels, height, width)

    def embedding(self, tokens_R, w_VD):
        return np.take(w_VD, tokens_R, axis=0)

    def embedding_bwd(self, w_VD, tokens_R, dx_RD):
        # np.add.at on the flat table: NumPy's fast path for a 1-d scatter-add runs 5x faster
        # than add.at by rows (a general loop per row) and 4x faster than np.bincount, which
        # sums in float64 and then converts all of V*D (measured at R = 1024, D = 768, V = 1024).
        D = dx_RD.shape[1]
        dw_VD = np.zeros_like(w_VD)
        index_RD = tokens_R[:, None] * D + np.arange(D)
        np.add.at(dw_VD.reshape(-1), index_RD.reshape(-1), dx_RD.reshape(-1))
        return dw_VD

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
        d = g * g  # g^2, then the step's denominator
        d *= np.float32(1 - beta2)
        v *= np.float32(beta2)
        v += d
        # Both bias corrections fold into one step size; eps is scaled to stay where it was.
        root2 = math.sqrt(1 - beta2**t)
        np.sqrt(v, out=d)
        d += np.float32(eps * root2)
        np.divide(m, d, out=d)
        d *= np.float32(lr * root2 / (1 - beta1**t))
        p -= d
