"""A hand-written GPT-2 block training step in plain NumPy: the yardstick for the NumPy rung.

What a practitioner would write without a harness: forward, backward and Adam in one
function, float32 throughout, `@` on 4-d head views, in-place updates, nothing composed. The
block is harness/models/transformer.py's: pre-norm layernorm (eps contract.LN_EPS), causal
attention with separate q, k, v and output projections (scale 1/sqrt(E)), residual,
layernorm, MLP to H = 4D with the tanh-form gelu, residual. The NumPy rung's step over the
contract is measured against it, side by side in one run (benchmarks/network_targets.py).
"""

from __future__ import annotations

import math

import numpy as np

from harness.contract import LN_EPS

GELU_C = math.sqrt(2.0 / math.pi)


def _layernorm(x_RD, g_D, b_D):
    """-> (y_RD, xhat_RD, rstd_R1): rstd kept as a column for the backward."""
    mean_R1 = x_RD.mean(axis=1, keepdims=True)
    xc_RD = x_RD - mean_R1
    rstd_R1 = 1.0 / np.sqrt((xc_RD * xc_RD).mean(axis=1, keepdims=True) + LN_EPS)
    xhat_RD = xc_RD * rstd_R1
    return xhat_RD * g_D + b_D, xhat_RD, rstd_R1


def _layernorm_bwd(xhat_RD, rstd_R1, g_D, dy_RD):
    """-> (dx_RD, dg_D, db_D)"""
    dxhat_RD = dy_RD * g_D
    dx_RD = rstd_R1 * (
        dxhat_RD
        - dxhat_RD.mean(axis=1, keepdims=True)
        - xhat_RD * (dxhat_RD * xhat_RD).mean(axis=1, keepdims=True)
    )
    return dx_RD, (dy_RD * xhat_RD).sum(axis=0), dy_RD.sum(axis=0)


def make_block_step(x_RD, dy_RD, params, batch, heads, hyper):
    """-> step(): one Adam step of the block, as if dy_RD came from the layers above;
    params (float32, in models.BLOCK_PARAMS order) updated in place, Adam's m and v kept here.
    hyper: HYPER["adam"]'s lr, beta1, beta2 and eps."""
    R, D = x_RD.shape
    B, G, T, E = batch, heads, R // batch, D // heads
    scale = 1.0 / math.sqrt(E)
    future_TS = ~np.tri(T, T, dtype=bool)  # the keys after each query, masked out
    lr, beta1, beta2, eps = (hyper[k] for k in ("lr", "beta1", "beta2", "eps"))
    m_state = [np.zeros_like(p) for p in params]
    v_state = [np.zeros_like(p) for p in params]
    steps = iter(range(1, 1 << 62))

    def heads_of(a_RD):  # (R, D) -> (B, G, T, E), a view
        return a_RD.reshape(B, T, G, E).transpose(0, 2, 1, 3)

    def rows_of(a_BGTE):  # (B, G, T, E) -> (R, D), a copy
        return a_BGTE.transpose(0, 2, 1, 3).reshape(R, D)

    def step():
        (g1_D, b1_D, wq_DD, bq_D, wk_DD, bk_D, wv_DD, bv_D, wo_DD, bo_D) = params[:10]
        g2_D, b2_D, wfc_DH, bfc_H, wproj_HD, bproj_D = params[10:]
        # ---- forward
        h1_RD, xhat1_RD, rstd1_R1 = _layernorm(x_RD, g1_D, b1_D)
        q_BGTE = heads_of(h1_RD @ wq_DD + bq_D)
        k_BGSE = heads_of(h1_RD @ wk_DD + bk_D)
        v_BGSE = heads_of(h1_RD @ wv_DD + bv_D)
        s_BGTS = (q_BGTE @ k_BGSE.transpose(0, 1, 3, 2)) * scale
        s_BGTS[..., future_TS] = -np.inf
        p_BGTS = np.exp(s_BGTS - s_BGTS.max(axis=-1, keepdims=True))
        p_BGTS /= p_BGTS.sum(axis=-1, keepdims=True)
        o_RD = rows_of(p_BGTS @ v_BGSE)
        x2_RD = x_RD + (o_RD @ wo_DD + bo_D)
        h2_RD, xhat2_RD, rstd2_R1 = _layernorm(x2_RD, g2_D, b2_D)
        f_RH = h2_RD @ wfc_DH + bfc_H
        f2_RH = f_RH * f_RH  # kept for gelu's backward
        tanh_RH = np.tanh(GELU_C * f_RH * (1.0 + 0.044715 * f2_RH))
        gelu_RH = 0.5 * f_RH * (1.0 + tanh_RH)
        # ---- backward (y = x2 + gelu @ wproj + bproj; y itself is not needed)
        dgelu_RH = dy_RD @ wproj_HD.T
        dwproj_HD, dbproj_D = gelu_RH.T @ dy_RD, dy_RD.sum(axis=0)
        dtanh_RH = (1.0 - tanh_RH * tanh_RH) * GELU_C * (1.0 + 3 * 0.044715 * f2_RH)
        df_RH = dgelu_RH * (0.5 * (1.0 + tanh_RH) + 0.5 * f_RH * dtanh_RH)
        dwfc_DH, dbfc_H = h2_RD.T @ df_RH, df_RH.sum(axis=0)
        dln2_RD, dg2_D, db2_D = _layernorm_bwd(xhat2_RD, rstd2_R1, g2_D, df_RH @ wfc_DH.T)
        dx2_RD = dy_RD + dln2_RD  # the residual's two paths meet
        dwo_DD, dbo_D = o_RD.T @ dx2_RD, dx2_RD.sum(axis=0)
        do_BGTE = heads_of(dx2_RD @ wo_DD.T)
        dp_BGTS = do_BGTE @ v_BGSE.transpose(0, 1, 3, 2)
        dv_BGSE = p_BGTS.transpose(0, 1, 3, 2) @ do_BGTE
        # softmax's backward, times the score scale (masked entries have p = 0)
        ds_BGTS = scale * p_BGTS * (dp_BGTS - (dp_BGTS * p_BGTS).sum(axis=-1, keepdims=True))
        dq_RD = rows_of(ds_BGTS @ k_BGSE)
        dk_RD = rows_of(ds_BGTS.transpose(0, 1, 3, 2) @ q_BGTE)
        dv_RD = rows_of(dv_BGSE)
        dh1_RD = dq_RD @ wq_DD.T + dk_RD @ wk_DD.T + dv_RD @ wv_DD.T
        _, dg1_D, db1_D = _layernorm_bwd(xhat1_RD, rstd1_R1, g1_D, dh1_RD)
        grads = [
            dg1_D,
            db1_D,
            h1_RD.T @ dq_RD,
            dq_RD.sum(axis=0),
            h1_RD.T @ dk_RD,
            dk_RD.sum(axis=0),
            h1_RD.T @ dv_RD,
            dv_RD.sum(axis=0),
            dwo_DD,
            dbo_D,
            dg2_D,
            db2_D,
            dwfc_DH,
            dbfc_H,
            dwproj_HD,
            dbproj_D,
        ]
        # ---- Adam, in place
        t = next(steps)
        step_size, correction2 = lr / (1 - beta1**t), math.sqrt(1 - beta2**t)
        for p, g, m, v in zip(params, grads, m_state, v_state):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p -= step_size * m / (np.sqrt(v) / correction2 + eps)

    return step
