"""The data-parallel rung: the batch split over the ranks of an MPI job, the gradients summed.

`data-parallel` holds every weight whole on every rank and splits every activation and label
along its axis 0, the batch (np.array_split's blocks: P need not divide B; P above B is
refused). Each op runs in the base impl (the NumPy rung) on this rank's block, and what an op
sums over the batch (a weight's gradient: dw_IO, db_O, dgamma_D, dw_VD, a conv's dw_FQJL) is
all-reduced right away, MPI's own collectives (impls/_collectives.py), so every rank holds the
whole-batch gradient and takes the same optimizer step: the whole-batch step, within float32's
rounding (the sums run in another order). A mean over the batch (softmax_xent's and mse's
loss) is each rank's mean times its share of the rows, summed; their gradients are each rank's
times its share. So every model runs op by op, unchanged: the MLP, the CNN, the transformer
block and the GPT (split_heads and merge_heads give each rank whole sequences: the rows are
re-split in whole sequences first, a gather where P does not divide B).

Which arrays are the batch's is read off the contract's op table: an array or an output whose
shape suffix starts with B (batch), R (token rows), X (batch x heads) or M (a plain matmul's
rows), or an elementwise op's `*`. The updates and transpose run on whole arrays.
"""

from __future__ import annotations

import numpy as np

from harness.contract import OPS
from impls._sharding import ShardedImpl
from impls._shards import Shard

BATCH_LETTERS = "BRXM*"
# The gradients of a mean over the batch (softmax_xent's, mse's): rescaled by this rank's share.
MEAN_GRADS = ("softmax_xent_bwd", "mse_bwd")
# Ops on whole arrays: an update writes into its whole parameter; a transpose is of a weight.
WHOLE_ONLY = ("transpose", "sgd", "momentum", "adam")


def outputs(op: str) -> list:
    """For each output of op: "batch" (split as the batch is), "sum" (a sum over the batch,
    all-reduced) or "loss" (a mean over the batch, a float)."""
    names = OPS[op].returns.split(" (")[0].split(", ")
    return ["loss" if "_" not in n else "batch" if _is_batch(n) else "sum" for n in names]


def _is_batch(name: str) -> bool:
    """Whether axis 0 of the array or output of this suffixed name is the batch."""
    return name.rsplit("_", 1)[-1][0] in BATCH_LETTERS


class DataParallel(ShardedImpl):
    """The batch split over the ranks; weights whole; weight gradients all-reduced."""

    name = "data-parallel"

    def split_axis(self, x_np, role):
        # One rank holds the whole batch: nothing to split (nor to refuse, an empty array).
        return 0 if role in ("activation", "label") and self.ranks > 1 else None

    def _rows(self, x: Shard) -> int:
        """The rows of the batch this rank holds."""
        return self.base.get(x.local).shape[0]

    def collective(self, name, x):
        """Left out: this rung places the collectives workload's vector split, as a batch;
        the bare collectives are timed on the sharded rungs (the same MPI calls)."""
        raise NotImplementedError("collective")

    def _batched(self, op, args, kwargs):
        """op on this rank's block of the batch, its outputs split, summed or rescaled."""
        arrays = OPS[op].arrays
        kwargs = {**dict(zip(OPS[op].params, args[len(arrays) :])), **kwargs}  # by name
        args = args[: len(arrays)]
        batch = [_is_batch(n) for n in arrays]
        shards = [a for a, b in zip(args, batch, strict=True) if b and isinstance(a, Shard)]
        if not shards or op in WHOLE_ONLY:
            return getattr(self.base, op)(*(self._whole(a) for a in args), **kwargs)
        lead = shards[0]
        if "batch" in kwargs:  # split_heads, merge_heads: whole sequences on every rank
            self._reshard(lead, 0, lead.shape[0] // kwargs["batch"], f"the {op} input", held=False)
            kwargs["batch"] = self._rows(lead) // lead.unit
        local = []
        for name, a, of_batch in zip(arrays, args, batch, strict=True):
            if not of_batch:  # a weight: whole on every rank (gathered if placed split)
                local.append(self._whole(a))
            elif isinstance(a, Shard):
                self._reshard(a, 0, lead.unit, name, held=False)
                local.append(a.local)
            else:  # the batch, whole: this rank's block of it
                local.append(self._local_block(a, 0, name, lead.unit))
        out = getattr(self.base, op)(*local, **kwargs)
        kinds = outputs(op)
        results = [
            self._settle(op, kind, o, lead)
            for kind, o in zip(kinds, (out,) if len(kinds) == 1 else out, strict=True)
        ]
        return results[0] if len(kinds) == 1 else tuple(results)

    def _settle(self, op, kind, out, lead):
        """One output of a batched op: loss summed over ranks, a gradient all-reduced, a
        batch block wrapped as the Shard of the whole batch."""
        share = self._rows(lead) / lead.shape[0]  # this rank's rows of the batch
        if kind == "loss":  # each rank's mean, weighted by its rows: their sum is the mean
            total = np.array([out * share])
            self.collectives.allreduce(total)
            return float(total[0])
        if kind == "sum":
            return self._summed(out)
        if op in MEAN_GRADS:  # a mean's gradient over this block: 1 / its rows, not the batch's
            out = self._as_native(self.base.get(out) * np.float32(share))
        rows = self.base.get(out).shape[0]  # split_heads: B_r*G rows from B_r*T
        scale = rows / self._rows(lead)
        whole = (round(lead.shape[0] * scale), *self.base.get(out).shape[1:])
        return Shard(out, 0, whole, round(lead.unit * scale))


def _op(op):
    def method(self, *args, **kwargs):
        return self._batched(op, args, kwargs)

    method.__name__ = method.__qualname__ = op
    method.__doc__ = f"The base impl's {op} on this rank's block of the batch."
    return method


for _name in OPS:
    setattr(DataParallel, _name, _op(_name))
