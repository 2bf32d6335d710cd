"""The float64 reference every impl is checked against.

It speaks the contract so that models compose over it exactly as over an impl, but it lives
in the harness and is never registered: it is the yardstick, not a rung. Written in the most
direct NumPy (`@`, explicit formulas), independent of the NumPy rung's einsum code.
"""

from __future__ import annotations

import math

import numpy as np

from harness.contract import LN_EPS, POOL, Impl

GELU_C = math.sqrt(2.0 / math.pi)  # gelu's tanh form: tanh(GELU_C (x + 0.044715 x^3))


class Reference(Impl):
    name = "reference"

    def put(self, x_np, role):
        return x_np.astype(np.int64 if role == "label" else np.float64)

    def get(self, x):
        return np.asarray(x)

    def matmul(self, a_MK, b_KN):
        return a_MK @ b_KN

    def matmul_bwd(self, a_MK, b_KN, dc_MN):
        return dc_MN @ b_KN.T, a_MK.T @ dc_MN

    def bmm(self, a_XMK, b_XKN):
        return a_XMK @ b_XKN

    def bmm_bwd(self, a_XMK, b_XKN, dc_XMN):
        return dc_XMN @ b_XKN.transpose(0, 2, 1), a_XMK.transpose(0, 2, 1) @ dc_XMN

    def linear(self, x_BI, w_IO, b_O):
        return x_BI @ w_IO + b_O

    def linear_bwd(self, x_BI, w_IO, dy_BO):
        return dy_BO @ w_IO.T, x_BI.T @ dy_BO, dy_BO.sum(axis=0)

    def add(self, a, b):
        return a + b

    def relu(self, x):
        return np.maximum(x, 0.0)

    def relu_bwd(self, x, dy):
        return np.where(x > 0, dy, 0.0)

    def gelu(self, x):
        return 0.5 * x * (1.0 + np.tanh(GELU_C * (x + 0.044715 * x**3)))

    def gelu_bwd(self, x, dy):
        t = np.tanh(GELU_C * (x + 0.044715 * x**3))
        dt_dx = (1.0 - t * t) * GELU_C * (1.0 + 3 * 0.044715 * x * x)
        return dy * (0.5 * (1.0 + t) + 0.5 * x * dt_dx)

    def sigmoid(self, x):
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # the same function, with no overflow

    def sigmoid_bwd(self, y, dy):
        return dy * y * (1.0 - y)

    def tanh(self, x):
        return np.tanh(x)

    def tanh_bwd(self, y, dy):
        return dy * (1.0 - y * y)

    def mse(self, y, target):
        return float(np.mean((y - target) ** 2))

    def mse_bwd(self, y, target):
        return 2.0 * (y - target) / y.size

    def layernorm(self, x_RD, gamma_D, beta_D):
        mean_R = x_RD.mean(axis=1)
        rstd_R = 1.0 / np.sqrt(((x_RD - mean_R[:, None]) ** 2).mean(axis=1) + LN_EPS)
        xhat_RD = (x_RD - mean_R[:, None]) * rstd_R[:, None]
        return xhat_RD * gamma_D + beta_D, mean_R, rstd_R

    def layernorm_bwd(self, x_RD, gamma_D, mean_R, rstd_R, dy_RD):
        xhat_RD = (x_RD - mean_R[:, None]) * rstd_R[:, None]
        dxhat_RD = dy_RD * gamma_D
        # d xhat / d x removes the row's mean and its projection on xhat, then scales by rstd
        dx_RD = rstd_R[:, None] * (
            dxhat_RD
            - dxhat_RD.mean(axis=1, keepdims=True)
            - xhat_RD * (dxhat_RD * xhat_RD).mean(axis=1, keepdims=True)
        )
        return dx_RD, (dy_RD * xhat_RD).sum(axis=0), dy_RD.sum(axis=0)

    def transpose(self, a_MK):
        return a_MK.T.copy()

    def flatten(self, x_BQYZ):
        return x_BQYZ.reshape(len(x_BQYZ), -1).copy()

    def unflatten(self, x_BI, channels, height, width):
        return x_BI.reshape(len(x_BI), channels, height, width).copy()

    def embedding(self, tokens_R, w_VD):
        return w_VD[tokens_R]

    def embedding_bwd(self, w_VD, tokens_R, dx_RD):
        dw_VD = np.zeros_like(w_VD)
        np.add.at(dw_VD, tokens_R, dx_RD)
        return dw_VD

    # The convolution as its definition: a sum over every kernel offset (j, l) of a strided
    # slice of the padded image, no im2col (the rungs' way), so it checks them independently.
    @staticmethod
    def _padded(x_BQYZ, padding):
        return np.pad(x_BQYZ, ((0, 0), (0, 0), (padding, padding), (padding, padding)))

    def conv2d(self, x_BQYZ, w_FQJL, b_F, stride, padding):
        xp_BQYZ = self._padded(x_BQYZ, padding)
        F, Q, J, L = w_FQJL.shape
        U = (xp_BQYZ.shape[2] - J) // stride + 1
        W = (xp_BQYZ.shape[3] - L) // stride + 1
        y_BFUW = np.zeros((x_BQYZ.shape[0], F, U, W)) + b_F[:, None, None]
        for j in range(J):
            for l in range(L):
                patch_BQUW = xp_BQYZ[:, :, j : j + stride * U : stride, l : l + stride * W : stride]
                y_BFUW += np.tensordot(patch_BQUW, w_FQJL[:, :, j, l], ([1], [1])).transpose(
                    0, 3, 1, 2
                )
        return y_BFUW

    def conv2d_bwd(self, x_BQYZ, w_FQJL, dy_BFUW, stride, padding):
        xp_BQYZ = self._padded(x_BQYZ, padding)
        dxp_BQYZ = np.zeros_like(xp_BQYZ)
        dw_FQJL = np.zeros_like(w_FQJL)
        F, Q, J, L = w_FQJL.shape
        U, W = dy_BFUW.shape[2:]
        for j in range(J):
            for l in range(L):
                rows, cols = slice(j, j + stride * U, stride), slice(l, l + stride * W, stride)
                dw_FQJL[:, :, j, l] = np.tensordot(
                    dy_BFUW, xp_BQYZ[:, :, rows, cols], ([0, 2, 3], [0, 2, 3])
                )
                dxp_BQYZ[:, :, rows, cols] += np.tensordot(
                    dy_BFUW, w_FQJL[:, :, j, l], ([1], [0])
                ).transpose(0, 3, 1, 2)
        Y, Z = x_BQYZ.shape[2:]
        dx_BQYZ = dxp_BQYZ[:, :, padding : padding + Y, padding : padding + Z]
        return dx_BQYZ, dw_FQJL, dy_BFUW.sum(axis=(0, 2, 3))

    @staticmethod
    def _windows(x_BQYZ):
        """-> the pool's windows as x_BQUW(POOL*POOL), row-major within each window."""
        B, Q, Y, Z = x_BQYZ.shape
        U, W = Y // POOL, Z // POOL
        x_BQUjWl = x_BQYZ[:, :, : U * POOL, : W * POOL].reshape(B, Q, U, POOL, W, POOL)
        return x_BQUjWl.transpose(0, 1, 2, 4, 3, 5).reshape(B, Q, U, W, POOL * POOL)

    def maxpool2d(self, x_BQYZ):
        return self._windows(x_BQYZ).max(axis=-1)

    def maxpool2d_bwd(self, x_BQYZ, dy_BQUW):
        B, Q, Y, Z = x_BQYZ.shape
        U, W = dy_BQUW.shape[2:]
        first_BQUW = self._windows(x_BQYZ).argmax(axis=-1)  # argmax: the first max on a tie
        dwin_BQUWk = np.zeros((B, Q, U, W, POOL * POOL))
        np.put_along_axis(dwin_BQUWk, first_BQUW[..., None], dy_BQUW[..., None], axis=-1)
        dx_BQYZ = np.zeros(x_BQYZ.shape)
        dx_BQYZ[:, :, : U * POOL, : W * POOL] = (
            dwin_BQUWk.reshape(B, Q, U, W, POOL, POOL)
            .transpose(0, 1, 2, 4, 3, 5)
            .reshape(B, Q, U * POOL, W * POOL)
        )
        return dx_BQYZ

    def softmax(self, x_XTS, causal=False, scale=1.0):
        z_XTS = scale * x_XTS
        if causal:
            T, S = z_XTS.shape[1:]
            z_XTS = np.where(np.tri(T, S, dtype=bool), z_XTS, -np.inf)
        e_XTS = np.exp(z_XTS - z_XTS.max(axis=-1, keepdims=True))
        return e_XTS / e_XTS.sum(axis=-1, keepdims=True)

    def softmax_bwd(self, y_XTS, dy_XTS, scale=1.0):
        return scale * y_XTS * (dy_XTS - (dy_XTS * y_XTS).sum(axis=-1, keepdims=True))

    def softmax_xent(self, logits_BC, labels_B):
        z_BC = logits_BC - logits_BC.max(axis=1, keepdims=True)
        logsumexp_B = np.log(np.exp(z_BC).sum(axis=1))
        rows_B = np.arange(len(labels_B))
        loss = float(np.mean(logsumexp_B - z_BC[rows_B, labels_B]))
        return loss, np.exp(z_BC - logsumexp_B[:, None])

    def softmax_xent_bwd(self, probs_BC, labels_B):
        dlogits_BC = probs_BC.copy()
        dlogits_BC[np.arange(len(labels_B)), labels_B] -= 1.0
        return dlogits_BC / len(labels_B)

    def split_heads(self, x_RD, batch, heads, transpose=False):
        R, D = x_RD.shape
        T, E = R // batch, D // heads
        x_XTE = x_RD.reshape(batch, T, heads, E).transpose(0, 2, 1, 3).reshape(-1, T, E)
        return x_XTE.transpose(0, 2, 1).copy() if transpose else x_XTE.copy()

    def merge_heads(self, x_XTE, batch, heads, transposed=False):
        if transposed:
            x_XTE = x_XTE.transpose(0, 2, 1)
        X, T, E = x_XTE.shape
        return x_XTE.reshape(batch, heads, T, E).transpose(0, 2, 1, 3).reshape(-1, heads * E)

    def collective(self, name, x):
        """One rank: the sum, the gathered blocks and this rank's block are all x itself."""
        return x.copy()

    def sgd(self, p, g, lr):
        p -= lr * g

    def momentum(self, p, g, v, lr, mu):
        v *= mu
        v += g
        p -= lr * v

    def adam(self, p, g, m, v, t, lr, beta1, beta2, eps):
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p -= lr * m_hat / (np.sqrt(v_hat) + eps)
