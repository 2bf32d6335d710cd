"""The pure-Python rung: lists of floats, no NumPy inside an op (only at put and get).

Vectors are lists, matrices lists of rows, batches of matrices lists of matrices. The idioms
are the fastest plain CPython has: a dot product is `sum(map(mul, row, col))` (the loop runs
in C; `math.sumprod` does the same one step faster on Python >= 3.12, used where present),
a matrix is transposed once with `zip(*rows)` so both operands of every dot are contiguous
rows, and elementwise work is a comprehension over `zip`. Arithmetic is Python's float
(double); outputs are rounded to float32 at get().
"""

from __future__ import annotations

import math
from operator import mul

import numpy as np

from harness.contract import Impl

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


def _matmul(a_MK, b_KN):
    bt_NK = _columns(b_KN)
    return [[dot(row_K, col_K) for col_K in bt_NK] for row_K in a_MK]


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


class PurePythonImpl(Impl):
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
        da_MK = [[dot(dc_N, b_N) for b_N in b_KN] for dc_N in dc_MN]  # dc @ b^T: rows of b
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

    def add(self, a_BI, b_BI):
        return [[x + y for x, y in zip(a_I, b_I)] for a_I, b_I in zip(a_BI, b_BI)]

    def relu(self, x_BI):
        return [[v if v > 0.0 else 0.0 for v in x_I] for x_I in x_BI]

    def relu_bwd(self, x_BI, dy_BI):
        return [
            [d if v > 0.0 else 0.0 for v, d in zip(x_I, dy_I)] for x_I, dy_I in zip(x_BI, dy_BI)
        ]

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
