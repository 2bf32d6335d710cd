"""The sharded rungs: Megatron-style tensor parallelism over the ranks of an MPI job.

Every rank runs the same program on its own block of each weight; the products run in a base
impl (the NumPy rung by default), the collectives are MPI's own through mpi4py
(impls/_collectives.py); placement (impls/_shards.py) and every other op (impls/_sharding.py)
are shared. Three layouts:

- `sharded-col` (column-parallel): w_IO split on O. Forward: y_BOp = x_BI @ w_IOp + b_Op,
  all-gathered to y_BO. Backward: dx_BI = dy_BOp @ w_IOp^T summed by an all-reduce; dw_IOp and
  db_Op stay on their rank.
- `sharded-row` (row-parallel): w_IO split on I, x_BI sliced to x_BIp. Forward: the partial
  products x_BIp @ w_IpO all-reduced, then b_O added once. Backward: dx_BIp all-gathered to
  dx_BI; dw_IpO stays on its rank; db_O (b_O is whole on every rank) needs no collective.
- `sharded-mlp`: Megatron's pairing, column then row with the activation left split between
  them: one all-reduce forward and one backward per pair (a last, unpaired layer is
  column-parallel). It runs the MLP models and the transformer block whole (the contract's
  `fused` hooks; the block, attention split by heads, is impls/_megatron_block.py's); a
  product outside them (matmul, linear: the attention model's projections, a GPT's head) has
  no partner, so it is column-parallel too, as sharded-col's.

Each layout has a `-ring` rung, the same code over the hand-written rings of impls/_ring.py
(what MPI's algorithms buy, and bytes counted as sent), and sharded-col and sharded-mlp an
`-overlap` rung: the column layers' backward starts its input-gradient all-reduce
non-blocking and computes the weight gradient meanwhile (Megatron's trick; _shards.py).
`sharded-col-nccl` would all-reduce over NCCL between GPUs: it says why it cannot here.
"""

from __future__ import annotations

from impls._collectives import nccl_unavailable_reason
from impls._megatron_block import MegatronBlock
from impls._ring import RingCollectives
from impls._sharding import ShardedImpl
from impls._shards import Shard


class ColumnParallel(ShardedImpl):
    """w_IO split on O; output all-gathered, input gradient all-reduced."""

    name = "sharded-col"

    def split_axis(self, x_np, role):
        return {"weight": x_np.ndim - 1, "bias": 0}.get(role)

    def linear(self, x_BI, w_IO, b_O):
        w_IOp, b_Op = self._split(w_IO, 1, "w_IO"), self._split(b_O, 0, "b_O")
        y_BOp = self.base.linear(self._whole(x_BI), w_IOp.local, b_Op.local)
        return self._whole(Shard(y_BOp, 1, (x_BI.shape[0], w_IOp.shape[1])))

    def linear_bwd(self, x_BI, w_IO, dy_BO):
        w_IOp, dy_BOp = self._split(w_IO, 1, "w_IO"), self._local_block(dy_BO, 1, "dy_BO")
        dx_BI, dw_IOp, db_Op = self._linear_bwd_summed(self._whole(x_BI), w_IOp.local, dy_BOp)
        return (dx_BI, Shard(dw_IOp, 1, w_IOp.shape), Shard(db_Op, 0, (w_IOp.shape[1],)))

    def matmul(self, a_MK, b_KN):
        b_KNp = self._split(b_KN, 1, "b_KN")
        c_MNp = self.base.matmul(self._whole(a_MK), b_KNp.local)
        return self._whole(Shard(c_MNp, 1, (a_MK.shape[0], b_KNp.shape[1])))

    def matmul_bwd(self, a_MK, b_KN, dc_MN):
        b_KNp, dc_MNp = self._split(b_KN, 1, "b_KN"), self._local_block(dc_MN, 1, "dc_MN")
        da_MK, db_KNp = self._linear_bwd_summed(self._whole(a_MK), b_KNp.local, dc_MNp, bias=False)
        return da_MK, Shard(db_KNp, 1, b_KNp.shape)


class RowParallel(ShardedImpl):
    """w_IO split on I, input sliced; partial outputs all-reduced, then the bias added once."""

    name = "sharded-row"

    def split_axis(self, x_np, role):
        return 0 if role == "weight" else None

    def linear(self, x_BI, w_IO, b_O):
        w_IpO, x_BIp = self._split(w_IO, 0, "w_IO"), self._local_block(x_BI, 1, "x_BI")
        return self._summed(self.base.matmul(x_BIp, w_IpO.local), plus=self._whole(b_O))

    def linear_bwd(self, x_BI, w_IO, dy_BO):
        w_IpO, x_BIp = self._split(w_IO, 0, "w_IO"), self._local_block(x_BI, 1, "x_BI")
        dx_BIp, dw_IpO, db_O = self.base.linear_bwd(x_BIp, w_IpO.local, self._whole(dy_BO))
        return (
            self._whole(Shard(dx_BIp, 1, (x_BI.shape[0], w_IpO.shape[0]))),
            Shard(dw_IpO, 0, w_IpO.shape),
            db_O,
        )

    def matmul(self, a_MK, b_KN):
        b_KpN, a_MKp = self._split(b_KN, 0, "b_KN"), self._local_block(a_MK, 1, "a_MK")
        return self._summed(self.base.matmul(a_MKp, b_KpN.local))

    def matmul_bwd(self, a_MK, b_KN, dc_MN):
        b_KpN, a_MKp = self._split(b_KN, 0, "b_KN"), self._local_block(a_MK, 1, "a_MK")
        da_MKp, db_KpN = self.base.matmul_bwd(a_MKp, b_KpN.local, self._whole(dc_MN))
        return (
            self._whole(Shard(da_MKp, 1, (a_MK.shape[0], b_KpN.shape[0]))),
            Shard(db_KpN, 0, b_KpN.shape),
        )


class MegatronMLP(MegatronBlock, ColumnParallel):
    """Megatron's MLP: layers paired column -> row, the activation split between them; and
    Megatron's transformer block (MegatronBlock), so the GPT's blocks too.

    Layer l is column-parallel when l is even and row-parallel when odd, so each pair keeps
    h_BHp (and relu's input z_BHp) on its rank: the forward all-reduces once per pair, after
    the row layer; the backward once per pair, for the column layer's input gradient (the
    first layer's is skipped: the model does not use it). A last, unpaired layer is
    column-parallel and all-gathers the logits; so is a lone product outside the MLP model
    (ColumnParallel's matmul and linear, inherited with its placement).

    put cannot know a weight's layer: everything starts column-parallel, and the row layers
    are resharded once, the first time the model sees its params (untimed).
    """

    name = "sharded-mlp"
    fused = frozenset({"mlp", "block"})

    def _pair_up(self, params):
        for layer in range(1, len(params) // 2, 2):
            self._reshard(params[2 * layer], 0)  # w_HpO: rows split, as h_BHp is
            self._reshard(params[2 * layer + 1], None)  # b_O whole: added once, after the sum

    def mlp_forward(self, params, x_BI, labels_B):
        """-> (loss, probs_BC, cache), as models.mlp_forward."""
        self._pair_up(params)
        n_layers = len(params) // 2
        inputs, pre = [], []
        h = self._whole(x_BI)  # whole after a row layer, this rank's block after a column one
        for layer in range(n_layers):
            w, b = params[2 * layer], params[2 * layer + 1]
            inputs.append(h)
            if layer % 2 == 0:  # column: z_BHp = h_BI @ w_IHp + b_Hp, no communication
                z = self.base.linear(h, w.local, b.local)
                if layer == n_layers - 1:  # the logits, whole for the loss
                    z = self._whole(Shard(z, 1, (x_BI.shape[0], w.shape[1])))
            else:  # row: z_BO = sum over ranks of h_BHp @ w_HpO, then + b_O once
                z = self._summed(self.base.matmul(h, w.local), plus=b.local)
            pre.append(z)
            h = self.base.relu(z) if layer < n_layers - 1 else z
        loss, probs_BC = self.base.softmax_xent(h, labels_B)
        return loss, probs_BC, (inputs, pre, probs_BC)

    def mlp_backward(self, params, cache, labels_B):
        """-> grads in the order of params, each split as its param is."""
        inputs, pre, probs_BC = cache
        n_layers = len(params) // 2
        grads = [None] * len(params)
        dz = self.base.softmax_xent_bwd(probs_BC, labels_B)  # whole dlogits_BC
        for layer in reversed(range(n_layers)):
            w, b = params[2 * layer], params[2 * layer + 1]
            if layer % 2 == 0:  # column: dz_BHp -> dx_BI partial sums, all-reduced
                if layer == n_layers - 1:
                    dz = self._local_block(dz, 1, "dlogits_BC")
                if layer > 0:
                    dx, dw, db = self._linear_bwd_summed(inputs[layer], w.local, dz)
                else:
                    dx, dw, db = self.base.linear_bwd(inputs[layer], w.local, dz)
            else:  # row: dh_BHp = dz_BO @ w_HpO^T stays on its rank; db_O is whole
                dx, dw, db = self.base.linear_bwd(inputs[layer], w.local, dz)
            grads[2 * layer], grads[2 * layer + 1] = (
                Shard(dw, w.axis, w.shape),
                Shard(db, b.axis, b.shape),
            )
            if layer > 0:
                dz = self.base.relu_bwd(pre[layer - 1], dx)
        return grads


# ---- the same layouts over the rings of impls/_ring.py, and overlapped ----------------------


class ColumnParallelRing(ColumnParallel):
    """sharded-col over the hand-written rings: bytes counted as sent."""

    name = "sharded-col-ring"
    collectives_class = RingCollectives


class RowParallelRing(RowParallel):
    """sharded-row over the hand-written rings."""

    name = "sharded-row-ring"
    collectives_class = RingCollectives


class MegatronMLPRing(MegatronMLP):
    """sharded-mlp over the hand-written rings."""

    name = "sharded-mlp-ring"
    collectives_class = RingCollectives


class ColumnParallelOverlap(ColumnParallel):
    """sharded-col whose backward overlaps the dx all-reduce with the products."""

    name = "sharded-col-overlap"
    overlap = True


class MegatronMLPOverlap(MegatronMLP):
    """sharded-mlp whose column layers' backward (the block's wfc too) overlaps its
    all-reduce with the products."""

    name = "sharded-mlp-overlap"
    overlap = True


class ColumnParallelNccl(ColumnParallel):
    """sharded-col over GPUs, all-reducing over NCCL (CuPy's), one GPU per rank: where
    several GPUs and CuPy's NCCL exist; unavailable until then, saying which is missing."""

    name = "sharded-col-nccl"

    @classmethod
    def unavailable_reason(cls):
        return nccl_unavailable_reason()
