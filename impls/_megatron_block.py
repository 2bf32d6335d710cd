"""Megatron-LM's transformer block for sharded-mlp (impls/sharded.py): the contract's fused
block_forward and block_backward (Shoeybi et al., "Megatron-LM", 2019, section 3).

Activations between the two halves of the block are whole on every rank (replicated): the
layernorms, residuals and biases added after a sum run on every rank alike. Each half is a
column -> row pair with its activation split between them:

- attention: wq, wk, wv column-split by whole heads (a head's E columns stay together), so each
  rank runs the causal attention of its G_r heads with no communication; wo row-split by the
  same heads; one all-reduce after the wo product ("g"), then bo once.
- MLP: wfc column-split (f_RHp and gelu on this rank's H_r hidden features), wproj row-split;
  one all-reduce after the wproj product, then bproj once.

The backward is the conjugate ("f"): one all-reduce of each half's input gradient (the
partial products of this rank's heads or hidden features), nothing for the rest; the MLP
half's overlapped with wfc's products where the impl overlaps (_shards.py). So a block
all-reduces twice forward and twice backward and gathers nothing. Heads that P does not divide
split unevenly in whole heads (G_r differ by at most one); P above the heads is refused.

put cannot know a weight's place in a block: every param starts as sharded-mlp places it
(column-parallel), and the first call lays out the block's params once (resharded in place,
untimed: the harness's correctness check makes it). Gradients are laid out as their params:
a split weight's a Shard of this rank's block, a replicated param's a whole array.
"""

from __future__ import annotations

import math

from impls._shards import Shard

# Each param's layout, in the contract's order of a block's params (models.BLOCK_PARAMS):
# name -> (axis, by heads); axis None: whole on every rank; by heads: in blocks of E entries.
BLOCK_LAYOUT = {
    "g1_D": (None, False),
    "b1_D": (None, False),
    "wq_DD": (1, True),  # wq_DDp: the columns of this rank's heads
    "bq_D": (0, True),
    "wk_DD": (1, True),
    "bk_D": (0, True),
    "wv_DD": (1, True),
    "bv_D": (0, True),
    "wo_DD": (0, True),  # wo_DpD: the rows that read this rank's heads
    "bo_D": (None, False),  # added once, after the sum
    "g2_D": (None, False),
    "b2_D": (None, False),
    "wfc_DH": (1, False),  # wfc_DHp
    "bfc_H": (0, False),
    "wproj_HD": (0, False),  # wproj_HpD
    "bproj_D": (None, False),
}


class MegatronBlock:
    """block_forward and block_backward, for a ShardedImpl (base, _summed, _linear_bwd_summed,
    _reshard, _whole)."""

    def _block_params(self, params, heads: int, dim: int) -> list:
        """The block's params laid out as BLOCK_LAYOUT says (in place, the first time)."""
        if len(params) != len(BLOCK_LAYOUT):
            raise ValueError(
                f"{self.name}.block_forward: params holds {len(params)} arrays, expected "
                f"{len(BLOCK_LAYOUT)} (models.BLOCK_PARAMS)"
            )
        if heads < 1 or dim % heads:
            raise ValueError(
                f"{self.name}.block_forward: dim D={dim} must be a whole multiple of heads "
                f"G={heads} (D = G*E)"
            )
        laid_out = []
        for p, (name, (axis, by_heads)) in zip(params, BLOCK_LAYOUT.items(), strict=True):
            if not isinstance(p, Shard):
                raise TypeError(
                    f"{self.name}.block_forward: {name} is a whole array; the block's params "
                    f"must be placed by this impl's put as weights or biases"
                )
            self._reshard(p, axis, dim // heads if by_heads else 1, name)
            laid_out.append(p)
        return laid_out

    def block_forward(self, params, x_RD, batch, heads, dim):
        """-> (y_RD, cache): y_RD whole on every rank, as models.block_forward's."""
        laid_out = self._block_params(params, heads, dim)
        base, E = self.base, dim // heads
        local = [s.local for s in laid_out]
        g1_D, b1_D, wq_DDp, bq_Dp, wk_DDp, bk_Dp, wv_DDp, bv_Dp, wo_DpD, bo_D = local[:10]
        g2_D, b2_D, wfc_DHp, bfc_Hp, wproj_HpD, bproj_D = local[10:]
        heads_p = base.get(wq_DDp).shape[1] // E  # G_r: this rank's heads
        x_RD = self._whole(x_RD)
        h1_RD, mean1_R, rstd1_R = base.layernorm(x_RD, g1_D, b1_D)
        # attention on this rank's heads alone: X_p = B*G_r
        q_XpTE = base.split_heads(base.linear(h1_RD, wq_DDp, bq_Dp), batch, heads_p)
        kt_XpES = base.split_heads(
            base.linear(h1_RD, wk_DDp, bk_Dp), batch, heads_p, transpose=True
        )
        v_XpSE = base.split_heads(base.linear(h1_RD, wv_DDp, bv_Dp), batch, heads_p)
        scale = 1.0 / math.sqrt(E)  # as models.attention_forward's
        p_XpTS = base.softmax(base.bmm(q_XpTE, kt_XpES), causal=True, scale=scale)
        o_RDp = base.merge_heads(base.bmm(p_XpTS, v_XpSE), batch, heads_p)
        a_RD = self._summed(base.matmul(o_RDp, wo_DpD), plus=bo_D)  # all-reduce 1 of 2
        x2_RD = base.add(x_RD, a_RD)
        h2_RD, mean2_R, rstd2_R = base.layernorm(x2_RD, g2_D, b2_D)
        f_RHp = base.linear(h2_RD, wfc_DHp, bfc_Hp)
        g_RHp = base.gelu(f_RHp)
        m_RD = self._summed(base.matmul(g_RHp, wproj_HpD), plus=bproj_D)  # all-reduce 2 of 2
        y_RD = base.add(x2_RD, m_RD)
        attention = (q_XpTE, kt_XpES, v_XpSE, p_XpTS, o_RDp, scale, heads_p)
        mlp = (x2_RD, h2_RD, mean2_R, rstd2_R, f_RHp, g_RHp)
        return y_RD, (laid_out, x_RD, h1_RD, mean1_R, rstd1_R, attention, mlp)

    def block_backward(self, params, cache, dy_RD, batch, heads):
        """-> (dx_RD, grads in the order of params): dx_RD whole, grads laid out as params."""
        base = self.base
        laid_out, x_RD, h1_RD, mean1_R, rstd1_R, attention, mlp = cache  # params, as laid out
        local = [s.local for s in laid_out]
        g1_D, _, wq_DDp, _, wk_DDp, _, wv_DDp, _, wo_DpD, _, g2_D, _, wfc_DHp, _, wproj_HpD, _ = (
            local
        )
        q_XpTE, kt_XpES, v_XpSE, p_XpTS, o_RDp, scale, heads_p = attention
        x2_RD, h2_RD, mean2_R, rstd2_R, f_RHp, g_RHp = mlp
        dy_RD = self._whole(dy_RD)
        # MLP: dg_RHp and the weights' gradients on this rank; dh2 summed (all-reduce 1 of 2)
        dg_RHp, dwproj_HpD, dbproj_D = base.linear_bwd(g_RHp, wproj_HpD, dy_RD)
        dh2_RD, dwfc_DHp, dbfc_Hp = self._linear_bwd_summed(
            h2_RD, wfc_DHp, base.gelu_bwd(f_RHp, dg_RHp)
        )
        dln2_RD, dg2_D, db2_D = base.layernorm_bwd(x2_RD, g2_D, mean2_R, rstd2_R, dh2_RD)
        dx2_RD = base.add(dy_RD, dln2_RD)  # the residual's two paths meet
        # attention: this rank's heads, then dh1 summed over them all (all-reduce 2 of 2)
        do_RDp, dwo_DpD, dbo_D = base.linear_bwd(o_RDp, wo_DpD, dx2_RD)
        dp_XpTS, dv_XpSE = base.bmm_bwd(p_XpTS, v_XpSE, base.split_heads(do_RDp, batch, heads_p))
        ds_XpTS = base.softmax_bwd(p_XpTS, dp_XpTS, scale=scale)
        dq_XpTE, dkt_XpES = base.bmm_bwd(q_XpTE, kt_XpES, ds_XpTS)
        dxq_RD, dwq_DDp, dbq_Dp = base.linear_bwd(
            h1_RD, wq_DDp, base.merge_heads(dq_XpTE, batch, heads_p)
        )
        dxk_RD, dwk_DDp, dbk_Dp = base.linear_bwd(
            h1_RD, wk_DDp, base.merge_heads(dkt_XpES, batch, heads_p, transposed=True)
        )
        dxv_RD, dwv_DDp, dbv_Dp = base.linear_bwd(
            h1_RD, wv_DDp, base.merge_heads(dv_XpSE, batch, heads_p)
        )
        # dxq_RD, dxk_RD, dxv_RD: this rank's heads' parts of dh1, summed once over ranks
        dh1_RD = self._summed(base.add(base.add(dxq_RD, dxk_RD), dxv_RD))
        dln1_RD, dg1_D, db1_D = base.layernorm_bwd(x_RD, g1_D, mean1_R, rstd1_R, dh1_RD)
        local_grads = [dg1_D, db1_D, dwq_DDp, dbq_Dp, dwk_DDp, dbk_Dp, dwv_DDp, dbv_Dp]
        local_grads += [dwo_DpD, dbo_D, dg2_D, db2_D, dwfc_DHp, dbfc_Hp, dwproj_HpD, dbproj_D]
        grads = [
            g if s.axis is None else Shard(g, s.axis, s.shape, s.unit)
            for g, s in zip(local_grads, laid_out, strict=True)
        ]
        return base.add(dx2_RD, dln1_RD), grads
