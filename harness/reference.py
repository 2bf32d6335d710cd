"""The float64 reference every impl is checked against.

It speaks the contract so that models compose over it exactly as over an impl, but it lives
in the harness and is never registered: it is the yardstick, not a rung. Written in the most
direct NumPy (`@`, explicit formulas), independent of the NumPy rung's einsum code.
"""

from __future__ import annotations

import numpy as np

from harness.contract import Impl


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

    def add(self, a_BI, b_BI):
        return a_BI + b_BI

    def relu(self, x_BI):
        return np.maximum(x_BI, 0.0)

    def relu_bwd(self, x_BI, dy_BI):
        return np.where(x_BI > 0, dy_BI, 0.0)

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
