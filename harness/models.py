"""Models composed from contract ops, so every impl gets every model for free.

Each function takes `ops` (an impl, or the float64 reference) and impl-native arrays, and
returns impl-native arrays. A forward returns a cache that its backward consumes.
"""

from __future__ import annotations

import math

# Optimizer hyper-parameters shared by every model and workload.
HYPER = {
    "sgd": {"lr": 0.1},
    "momentum": {"lr": 0.05, "mu": 0.9},
    "adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
}
# How many state arrays each optimizer keeps per parameter (momentum: v; adam: m, v).
OPT_STATE = {"sgd": 0, "momentum": 1, "adam": 2}


def apply_update(ops, opt, params, grads, state, t, lr=None):
    """One optimizer step over a list of parameters, in place. `t` counts steps from 1.

    `lr` replaces HYPER's learning rate (a training run's --lr); None keeps it.
    """
    if opt not in HYPER:
        raise ValueError(f"unknown optimizer {opt!r}: expected one of {sorted(HYPER)}")
    hyper = {**HYPER[opt], **({} if lr is None else {"lr": lr})}
    for i, (p, g) in enumerate(zip(params, grads)):
        if opt == "sgd":
            ops.sgd(p, g, **hyper)
        elif opt == "momentum":
            ops.momentum(p, g, state[i][0], **hyper)
        else:
            ops.adam(p, g, state[i][0], state[i][1], t, **hyper)


# ---- MLP: linear -> relu -> ... -> linear -> softmax cross-entropy ------------------------
# params is a flat list [w_IO, b_O, w_IO, b_O, ...], one pair per layer.


def mlp_forward(ops, params, x_BI, labels_B):
    """-> (loss, probs_BC, cache). An impl that fuses the MLP (contract.Impl.fused) runs the
    whole model its own way (sharded-mlp pairs its layers, which single ops cannot say)."""
    if "mlp" in ops.fused:
        return ops.mlp_forward(params, x_BI, labels_B)
    n_layers = len(params) // 2
    inputs, pre = [], []
    h_BI = x_BI
    for layer in range(n_layers):
        w_IO, b_O = params[2 * layer], params[2 * layer + 1]
        inputs.append(h_BI)
        z_BO = ops.linear(h_BI, w_IO, b_O)
        pre.append(z_BO)
        h_BI = ops.relu(z_BO) if layer < n_layers - 1 else z_BO
    loss, probs_BC = ops.softmax_xent(h_BI, labels_B)
    return loss, probs_BC, (inputs, pre, probs_BC)


def mlp_backward(ops, params, cache, labels_B):
    """-> grads, in the order of params"""
    if "mlp" in ops.fused:
        return ops.mlp_backward(params, cache, labels_B)
    inputs, pre, probs_BC = cache
    n_layers = len(params) // 2
    grads = [None] * len(params)
    dz_BO = ops.softmax_xent_bwd(probs_BC, labels_B)
    for layer in reversed(range(n_layers)):
        dx_BI, grads[2 * layer], grads[2 * layer + 1] = ops.linear_bwd(
            inputs[layer], params[2 * layer], dz_BO
        )
        if layer > 0:
            dz_BO = ops.relu_bwd(pre[layer - 1], dx_BI)
    return grads


def mlp_step(ops, params, x_BI, labels_B, opt, state, t):
    """One training step in place; -> the loss before the update."""
    loss, _, cache = mlp_forward(ops, params, x_BI, labels_B)
    grads = mlp_backward(ops, params, cache, labels_B)
    apply_update(ops, opt, params, grads, state, t)
    return loss


# ---- causal multi-head self-attention block -----------------------------------------------
# params [wq_DD, bq_D, wk_DD, bk_D, wv_DD, bv_D, wo_DD, bo_D]; tokens as rows x_RD, R = B*T.


def attention_forward(ops, params, x_RD, batch, heads, dim):
    """-> (y_RD, cache); dim is D, so each head has E = D / heads features."""
    wq_DD, bq_D, wk_DD, bk_D, wv_DD, bv_D, wo_DD, bo_D = params
    q_XTE = ops.split_heads(ops.linear(x_RD, wq_DD, bq_D), batch, heads)
    kt_XES = ops.split_heads(ops.linear(x_RD, wk_DD, bk_D), batch, heads, transpose=True)
    v_XSE = ops.split_heads(ops.linear(x_RD, wv_DD, bv_D), batch, heads)
    scale = 1.0 / math.sqrt(dim // heads)
    p_XTS = ops.softmax(ops.bmm(q_XTE, kt_XES), causal=True, scale=scale)
    o_RD = ops.merge_heads(ops.bmm(p_XTS, v_XSE), batch, heads)
    y_RD = ops.linear(o_RD, wo_DD, bo_D)
    return y_RD, (x_RD, q_XTE, kt_XES, v_XSE, p_XTS, o_RD, scale)


def attention_backward(ops, params, cache, dy_RD, batch, heads):
    """-> (dx_RD, grads in the order of params)"""
    wq_DD, _, wk_DD, _, wv_DD, _, wo_DD, _ = params
    x_RD, q_XTE, kt_XES, v_XSE, p_XTS, o_RD, scale = cache
    do_RD, dwo_DD, dbo_D = ops.linear_bwd(o_RD, wo_DD, dy_RD)
    dp_XTS, dv_XSE = ops.bmm_bwd(p_XTS, v_XSE, ops.split_heads(do_RD, batch, heads))
    ds_XTS = ops.softmax_bwd(p_XTS, dp_XTS, scale=scale)
    dq_XTE, dkt_XES = ops.bmm_bwd(q_XTE, kt_XES, ds_XTS)
    dxq_RD, dwq_DD, dbq_D = ops.linear_bwd(x_RD, wq_DD, ops.merge_heads(dq_XTE, batch, heads))
    dxk_RD, dwk_DD, dbk_D = ops.linear_bwd(
        x_RD, wk_DD, ops.merge_heads(dkt_XES, batch, heads, transposed=True)
    )
    dxv_RD, dwv_DD, dbv_D = ops.linear_bwd(x_RD, wv_DD, ops.merge_heads(dv_XSE, batch, heads))
    dx_RD = ops.add(ops.add(dxq_RD, dxk_RD), dxv_RD)
    return dx_RD, [dwq_DD, dbq_D, dwk_DD, dbk_D, dwv_DD, dbv_D, dwo_DD, dbo_D]
