"""GPT-2's pre-norm transformer block and a small GPT of L such blocks.

The block: x -> ln1 -> causal multi-head attention -> + x -> ln2 -> fc to H = 4D -> gelu ->
projection to D -> + the residual. Tokens are rows, x_RD with R = B*T. The GPT: a token
embedding and a positional embedding (both through the embedding op: positions are the
ids 0..T-1 of every sequence), L blocks, a final layernorm and the head tied to the token
table (logits = h @ wte^T, through transpose), then the mean cross-entropy of the next token.
"""

from __future__ import annotations

from harness.models.attention import attention_backward, attention_forward
from harness.models.update import apply_update

# The block's parameters, in the order of every list of them (in a GPT, block l's are named
# h{l}_ before these: h0_wq_DD).
BLOCK_PARAMS = (
    "g1_D",
    "b1_D",
    "wq_DD",
    "bq_D",
    "wk_DD",
    "bk_D",
    "wv_DD",
    "bv_D",
    "wo_DD",
    "bo_D",
    "g2_D",
    "b2_D",
    "wfc_DH",
    "bfc_H",
    "wproj_HD",
    "bproj_D",
)


def block_forward(ops, params, x_RD, batch, heads, dim):
    """-> (y_RD, cache); dim is D."""
    if "block" in ops.fused:
        return ops.block_forward(params, x_RD, batch, heads, dim)
    g1_D, b1_D, *attn, g2_D, b2_D, wfc_DH, bfc_H, wproj_HD, bproj_D = params
    h1_RD, mean1_R, rstd1_R = ops.layernorm(x_RD, g1_D, b1_D)
    a_RD, attn_cache = attention_forward(ops, attn[:8], h1_RD, batch, heads, dim)
    x2_RD = ops.add(x_RD, a_RD)
    h2_RD, mean2_R, rstd2_R = ops.layernorm(x2_RD, g2_D, b2_D)
    f_RH = ops.linear(h2_RD, wfc_DH, bfc_H)
    g_RH = ops.gelu(f_RH)
    y_RD = ops.add(x2_RD, ops.linear(g_RH, wproj_HD, bproj_D))
    return y_RD, (x_RD, mean1_R, rstd1_R, attn_cache, x2_RD, h2_RD, mean2_R, rstd2_R, f_RH, g_RH)


def block_backward(ops, params, cache, dy_RD, batch, heads):
    """-> (dx_RD, grads in the order of params)"""
    if "block" in ops.fused:
        return ops.block_backward(params, cache, dy_RD, batch, heads)
    g1_D, _, *attn, g2_D, _, wfc_DH, _, wproj_HD, _ = params
    x_RD, mean1_R, rstd1_R, attn_cache, x2_RD, h2_RD, mean2_R, rstd2_R, f_RH, g_RH = cache
    dg_RH, dwproj_HD, dbproj_D = ops.linear_bwd(g_RH, wproj_HD, dy_RD)
    dh2_RD, dwfc_DH, dbfc_H = ops.linear_bwd(h2_RD, wfc_DH, ops.gelu_bwd(f_RH, dg_RH))
    dln2_RD, dg2_D, db2_D = ops.layernorm_bwd(x2_RD, g2_D, mean2_R, rstd2_R, dh2_RD)
    dx2_RD = ops.add(dy_RD, dln2_RD)  # the residual's two paths meet
    dh1_RD, attn_grads = attention_backward(ops, attn[:8], attn_cache, dx2_RD, batch, heads)
    dln1_RD, dg1_D, db1_D = ops.layernorm_bwd(x_RD, g1_D, mean1_R, rstd1_R, dh1_RD)
    grads = [dg1_D, db1_D, *attn_grads, dg2_D, db2_D, dwfc_DH, dbfc_H, dwproj_HD, dbproj_D]
    return ops.add(dx2_RD, dln1_RD), grads


def block_step(ops, params, x_RD, dy_RD, batch, heads, dim, opt, state, t):
    """One update of the block alone, as if dy_RD came from the layers above; in place."""
    _, cache = block_forward(ops, params, x_RD, batch, heads, dim)
    _, grads = block_backward(ops, params, cache, dy_RD, batch, heads)
    apply_update(ops, opt, params, grads, state, t)


# ---- GPT ----------------------------------------------------------------------------------


def gpt_params(layers: int) -> list:
    """The GPT's parameter names, in order: wte_VD, wpe_TD, each block's (h0_g1_D, ...), the
    final layernorm's gf_D, bf_D."""
    blocks = [f"h{layer}_{name}" for layer in range(layers) for name in BLOCK_PARAMS]
    return ["wte_VD", "wpe_TD", *blocks, "gf_D", "bf_D"]


def gpt_forward(ops, params, tokens_R, positions_R, labels_R, batch, heads, dim):
    """-> (loss, cache): the mean cross-entropy of labels_R (each token's successor)."""
    wte_VD, wpe_TD, *blocks, gf_D, bf_D = params
    x_RD = ops.add(ops.embedding(tokens_R, wte_VD), ops.embedding(positions_R, wpe_TD))
    caches = []
    for at in range(0, len(blocks), len(BLOCK_PARAMS)):
        x_RD, cache = block_forward(
            ops, blocks[at : at + len(BLOCK_PARAMS)], x_RD, batch, heads, dim
        )
        caches.append(cache)
    h_RD, mean_R, rstd_R = ops.layernorm(x_RD, gf_D, bf_D)
    wte_DV = ops.transpose(wte_VD)  # the head is tied to the token table
    loss, probs_RV = ops.softmax_xent(ops.matmul(h_RD, wte_DV), labels_R)
    return loss, (tokens_R, positions_R, caches, x_RD, mean_R, rstd_R, h_RD, wte_DV, probs_RV)


def gpt_backward(ops, params, cache, labels_R, batch, heads):
    """-> grads in the order of params"""
    wte_VD, wpe_TD, *blocks, gf_D, _ = params
    tokens_R, positions_R, caches, x_RD, mean_R, rstd_R, h_RD, wte_DV, probs_RV = cache
    dlogits_RV = ops.softmax_xent_bwd(probs_RV, labels_R)
    dh_RD, dwte_DV = ops.matmul_bwd(h_RD, wte_DV, dlogits_RV)
    dx_RD, dgf_D, dbf_D = ops.layernorm_bwd(x_RD, gf_D, mean_R, rstd_R, dh_RD)
    n = len(BLOCK_PARAMS)
    block_grads = []
    for at, cache_b in reversed(list(zip(range(0, len(blocks), n), caches))):
        dx_RD, grads = block_backward(ops, blocks[at : at + n], cache_b, dx_RD, batch, heads)
        block_grads = grads + block_grads
    # the token table's gradient: its embedding's scatter-add plus the tied head's
    dwte_VD = ops.add(ops.embedding_bwd(wte_VD, tokens_R, dx_RD), ops.transpose(dwte_DV))
    dwpe_TD = ops.embedding_bwd(wpe_TD, positions_R, dx_RD)
    return [dwte_VD, dwpe_TD, *block_grads, dgf_D, dbf_D]


def gpt_step(ops, params, tokens_R, positions_R, labels_R, batch, heads, dim, opt, state, t):
    """One training step in place; -> the loss before the update."""
    loss, cache = gpt_forward(ops, params, tokens_R, positions_R, labels_R, batch, heads, dim)
    grads = gpt_backward(ops, params, cache, labels_R, batch, heads)
    apply_update(ops, opt, params, grads, state, t)
    return loss
