"""The pure-Python rung: lists of floats, no NumPy inside an op (only at put and get).

Vectors are lists, matrices lists of rows, batches of matrices lists of matrices, images lists
of those (impls/_pure_python_lists.py). The idioms are the fastest plain CPython has: a dot
product is `sum(map(mul, row, col))` (the loop runs in C; `math.sumprod` does the same one
step faster on Python >= 3.12, used where present), a matrix is transposed once with
`zip(*rows)` so both operands of every dot are contiguous rows, and elementwise work is a
`map` over the innermost lists of any number of axes. Conv, pool and flatten are
impls/_pure_python_images.py's, mixed in. Arithmetic is Python's float (double); outputs are
rounded to float32 at get().
"""

from __future__ import annotations

import math
from operator import add

import numpy as np

from harness.contract import LN_EPS, Impl
from impls._pure_python_images import ImageOps
from impls._pure_python_lists import (
    _columns,
    _innermost,
    _lists,
    _map,
    _matmul,
    _matmul_nt,
    _size,
    _transpose,
    dot,
)

GELU_C = math.sqrt(2.0 / math.pi)  # gelu's tanh form: tanh(GELU_C (x + 0.044715 x^3))


class PurePythonImpl(ImageOps, Impl):
    name = "pure_python"
    device = "cpu"
    rung = 0

    def info(self) -> dict:
        """One thread: the interpreter's (the rows' machine-wide BLAS count does not apply)."""
        return {"threads": 1}

    def put(self, x_np, role):
        if role == "label":
            return [int(v) for v in x_np]
        return _lists(x_np)

    def get(self, x):
        if x and isinstance(x[0], int):
            return np.array(x, dtype=np.int64)
        return np.array(x, dtype=np.float32)

    def matmul(self, a_MK, b_KN):
        return _matmul(a_MK, b_KN)

    def matmul_bwd(self, a_MK, b_KN, dc_MN):
        da_MK = _matmul_nt(dc_MN, b_KN)  # dc @ b^T: b's rows are b^T's columns
        db_KN = _matmul(_transpose(a_MK), dc_MN)
        return da_MK, db_KN

    def bmm(self, a_XMK, b_XKN):
        return [_matmul(a_MK, b_KN) for a_MK, b_KN in zip(a_XMK, b_XKN)]

    def bmm_bwd(self, a_XMK, b_XKN, dc_XMN):
        grads = [self.matmul_bwd(a, b, dc) for a, b, dc in zip(a_XMK, b_XKN, dc_XMN)]
        return [da for da, _ in grads], [db for _, db in grads]

    def linear(self, x_BI, w_IO, b_O):
        wt_OI = _columns(w_IO)
        return [[dot(x_I, w_I) + bias for w_I, bias in zip(wt_OI, b_O)] for x_I in x_BI]

    def linear_bwd(self, x_BI, w_IO, dy_BO):
        dx_BI = [[dot(dy_O, w_O) for w_O in w_IO] for dy_O in dy_BO]
        dw_IO = _matmul(_transpose(x_BI), dy_BO)
        db_O = [sum(col_B) for col_B in zip(*dy_BO)]
        return dx_BI, dw_IO, db_O

    # Elementwise ops map over the innermost lists, whatever the number of axes.
    def add(self, a, b):
        return _map(add, a, b)

    def relu(self, x):
        return _map(lambda v: v if v > 0.0 else 0.0, x)

    def relu_bwd(self, x, dy):
        return _map(lambda v, d: d if v > 0.0 else 0.0, x, dy)

    def gelu(self, x):
        return _map(lambda v: 0.5 * v * (1.0 + math.tanh(GELU_C * (v + 0.044715 * v**3))), x)

    def gelu_bwd(self, x, dy):
        def dgelu(v, d):
            t = math.tanh(GELU_C * (v + 0.044715 * v**3))
            dt_dv = (1.0 - t * t) * GELU_C * (1.0 + 3 * 0.044715 * v * v)
            return d * (0.5 * (1.0 + t) + 0.5 * v * dt_dv)

        return _map(dgelu, x, dy)

    def sigmoid(self, x):
        # the same function as 1 / (1 + exp(-x)), but exp(-x) overflows for x below -709
        return _map(lambda v: 0.5 * (1.0 + math.tanh(0.5 * v)), x)

    def sigmoid_bwd(self, y, dy):
        return _map(lambda s, d: d * s * (1.0 - s), y, dy)

    def tanh(self, x):
        return _map(math.tanh, x)

    def tanh_bwd(self, y, dy):
        return _map(lambda t, d: d * (1.0 - t * t), y, dy)

    def mse(self, y, target):
        total = sum(
            (v - t) ** 2
            for y_row, t_row in zip(_innermost(y), _innermost(target))
            for v, t in zip(y_row, t_row)
        )
        return total / _size(y)

    def mse_bwd(self, y, target):
        n = _size(y)
        return _map(lambda v, t: 2.0 * (v - t) / n, y, target)

    def layernorm(self, x_RD, gamma_D, beta_D):
        y_RD, mean_R, rstd_R = [], [], []
        for x_D in x_RD:
            mean = sum(x_D) / len(x_D)
            rstd = 1.0 / math.sqrt(sum((v - mean) ** 2 for v in x_D) / len(x_D) + LN_EPS)
            y_RD.append([(v - mean) * rstd * g + b for v, g, b in zip(x_D, gamma_D, beta_D)])
            mean_R.append(mean)
            rstd_R.append(rstd)
        return y_RD, mean_R, rstd_R

    def layernorm_bwd(self, x_RD, gamma_D, mean_R, rstd_R, dy_RD):
        D = len(gamma_D)
        dx_RD, dgamma_D, dbeta_D = [], [0.0] * D, [0.0] * D
        for x_D, mean, rstd, dy_D in zip(x_RD, mean_R, rstd_R, dy_RD):
            xhat_D = [(v - mean) * rstd for v in x_D]
            dxhat_D = [d * g for d, g in zip(dy_D, gamma_D)]
            # d xhat / d x removes the row's mean and its projection on xhat, then scales
            shift, slope = sum(dxhat_D) / D, dot(dxhat_D, xhat_D) / D
            dx_RD.append([rstd * (d - shift - h * slope) for d, h in zip(dxhat_D, xhat_D)])
            dgamma_D = [s + d * h for s, d, h in zip(dgamma_D, dy_D, xhat_D)]
            dbeta_D = list(map(add, dbeta_D, dy_D))
        return dx_RD, dgamma_D, dbeta_D

    def transpose(self, a_MK):
        return _transpose(a_MK)

    def embedding(self, tokens_R, w_VD):
        return [list(w_VD[v]) for v in tokens_R]  # copies: the output owns its rows

    def embedding_bwd(self, w_VD, tokens_R, dx_RD):
        dw_VD = [[0.0] * len(w_D) for w_D in w_VD]
        for v, dx_D in zip(tokens_R, dx_RD):
            dw_VD[v] = list(map(add, dw_VD[v], dx_D))
        return dw_VD

    def softmax(self, x_XTS, causal=False, scale=1.0):
        out_XTS = []
        for x_TS in x_XTS:
            out_TS = []
            for t, x_S in enumerate(x_TS):
                # Causal: positions after t are masked; they get probability exactly 0.
                live_S = [scale * v for v in (x_S[: t + 1] if causal else x_S)]
                top = max(live_S)
                e_S = [math.exp(v - top) for v in live_S]
                total = sum(e_S)
                out_TS.append([v / total for v in e_S] + [0.0] * (len(x_S) - len(e_S)))
            out_XTS.append(out_TS)
        return out_XTS

    def softmax_bwd(self, y_XTS, dy_XTS, scale=1.0):
        return [
            [
                [scale * y * (d - inner) for y, d in zip(y_S, dy_S)]
                for y_S, dy_S, inner in (
                    (y_S, dy_S, dot(y_S, dy_S)) for y_S, dy_S in zip(y_TS, dy_TS)
                )
            ]
            for y_TS, dy_TS in zip(y_XTS, dy_XTS)
        ]

    def softmax_xent(self, logits_BC, labels_B):
        total, probs_BC = 0.0, []
        for z_C, label in zip(logits_BC, labels_B):
            top = max(z_C)
            e_C = [math.exp(v - top) for v in z_C]
            norm = sum(e_C)
            total += math.log(norm) - (z_C[label] - top)
            probs_BC.append([v / norm for v in e_C])
        return total / len(labels_B), probs_BC

    def softmax_xent_bwd(self, probs_BC, labels_B):
        inv_B = 1.0 / len(labels_B)
        dlogits_BC = [[p * inv_B for p in p_C] for p_C in probs_BC]
        for d_C, label in zip(dlogits_BC, labels_B):
            d_C[label] -= inv_B
        return dlogits_BC

    def split_heads(self, x_RD, batch, heads, transpose=False):
        T, E = len(x_RD) // batch, len(x_RD[0]) // heads
        out = []
        for b in range(batch):
            rows_TD = x_RD[b * T : (b + 1) * T]
            for g in range(heads):
                x_TE = [row_D[g * E : (g + 1) * E] for row_D in rows_TD]
                out.append(_transpose(x_TE) if transpose else x_TE)
        return out

    def merge_heads(self, x_XTE, batch, heads, transposed=False):
        if transposed:
            x_XTE = [_transpose(x_ET) for x_ET in x_XTE]
        T = len(x_XTE[0])
        rows_RD = []
        for b in range(batch):
            heads_GTE = x_XTE[b * heads : (b + 1) * heads]
            for t in range(T):
                rows_RD.append([v for x_TE in heads_GTE for v in x_TE[t]])
        return rows_RD

    # Optimizer updates mutate the caller's lists row by row (slice assignment), so the
    # params the model holds see the new values.
    def sgd(self, p, g, lr):
        for p_row, g_row in zip(_innermost(p), _innermost(g)):
            p_row[:] = [pi - lr * gi for pi, gi in zip(p_row, g_row)]

    def momentum(self, p, g, v, lr, mu):
        for p_row, g_row, v_row in zip(_innermost(p), _innermost(g), _innermost(v)):
            v_row[:] = [mu * vi + gi for vi, gi in zip(v_row, g_row)]
            p_row[:] = [pi - lr * vi for pi, vi in zip(p_row, v_row)]

    def adam(self, p, g, m, v, t, lr, beta1, beta2, eps):
        c1, c2 = 1.0 - beta1**t, 1.0 - beta2**t
        for p_row, g_row, m_row, v_row in zip(
            _innermost(p), _innermost(g), _innermost(m), _innermost(v)
        ):
            m_row[:] = [beta1 * mi + (1.0 - beta1) * gi for mi, gi in zip(m_row, g_row)]
            v_row[:] = [beta2 * vi + (1.0 - beta2) * gi * gi for vi, gi in zip(v_row, g_row)]
            p_row[:] = [
                pi - lr * (mi / c1) / (math.sqrt(vi / c2) + eps)
                for pi, mi, vi in zip(p_row, m_row, v_row)
            ]
