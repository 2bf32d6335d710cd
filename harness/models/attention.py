"""Causal multi-head self-attention: the q, k, v and output projections around the scores."""

from __future__ import annotations

import math

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
