"""Placement for the sharded rungs (impls/sharded.py): this rank's blocks, and whole arrays back.

A layout says which axis `put` splits (split_axis); what `put` then holds is a Shard, this
rank's block of the array. The layouts' products and the delegated ops (impls/_sharding.py)
turn shards into whole arrays, whole arrays into this rank's block, and partial results into
their sum over ranks, with the conversions here; the collectives they use are impls/_ring.py's.

Letters: those of contract.DIMS; a lower-case `p` after a letter marks this rank's block of
that axis (w_IOp: all I rows, this rank's O_r ~ O/P columns). Blocks are np.array_split's:
sizes differ by at most one, so P need not divide anything, but P larger than the axis is
refused. A Shard may split its axis in whole units instead of single entries (sharded-mlp's
attention: a head's E columns, so that every rank holds whole heads); its blocks are then
np.array_split's of the units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from impls._ring import blocks


@dataclass
class Shard:
    """This rank's block of a tensor of `shape` split along `axis` (None: the whole tensor),
    in blocks of `unit` consecutive entries of that axis (a head's E columns; 1: entries).

    `local` is a base-native array. A Shard is mutable so that a layout can be changed in
    place (sharded-mlp) wherever the harness holds it.
    """

    local: object
    axis: int | None
    shape: tuple
    unit: int = 1


def spans(n: int, parts: int, unit: int = 1) -> list:
    """[(lo, hi)] of each rank's block of an axis of n entries split in whole units."""
    return [(lo * unit, hi * unit) for lo, hi in blocks(n // unit, parts)]


class ShardPlacement:
    """put, get and the shard <-> whole conversions, for a sharded impl with a `name`, whose
    constructor sets `base`, `rank`, `ranks` and the `_traffic` counters (weight_bytes), and
    with RingCollectives' allreduce and allgather."""

    def split_axis(self, x_np, role) -> int | None:
        """The axis this layout splits an array placed with `role` along, or None."""
        raise NotImplementedError

    def _block(self, n: int, what: str, unit: int = 1) -> tuple:
        """(lo, hi) of this rank's block of an axis of n entries in whole units, refused when
        there are fewer units than ranks."""
        units = n // unit
        if units < self.ranks:
            entries = "entries" if unit == 1 else f"heads of {unit} entries"
            raise ValueError(
                f"{self.name}: cannot split {what} over P={self.ranks} ranks: it has {units} "
                f"{entries} there and every rank needs at least one (use --ranks <= {units})"
            )
        return spans(n, self.ranks, unit)[self.rank]

    def _host_block(self, x_np: np.ndarray, axis: int, name: str, unit: int = 1) -> np.ndarray:
        """This rank's block of a host array along `axis`, contiguous for the products."""
        what = f"axis {axis} of {name} of shape {x_np.shape}"
        lo, hi = self._block(x_np.shape[axis], what, unit)
        return np.ascontiguousarray(x_np[(slice(None),) * axis + (slice(lo, hi),)])

    def put(self, x_np, role):
        axis = self.split_axis(x_np, role)
        local = self.base.put(
            x_np if axis is None else self._host_block(x_np, axis, f"the {role}"), role
        )
        if role in ("weight", "bias"):  # what this rank holds, whole or its block
            self._traffic["weight_bytes"] += self.base.get(local).nbytes
        return local if axis is None else Shard(local, axis, x_np.shape)

    def get(self, x):
        if isinstance(x, Shard):
            return self.base.get(self._whole(x))
        return self.base.get(x)

    # -- shards <-> whole arrays, in the base's native form ---------------------------------
    def _native(self, x_np):
        return self.base.put(x_np, "activation")

    def _whole(self, x):
        """A Shard gathered whole on every rank (an array that is not a Shard: itself)."""
        if not isinstance(x, Shard):
            return x
        if x.axis is None or self.ranks == 1:  # the one block is the whole
            return x.local
        n = x.shape[x.axis]
        local = np.ascontiguousarray(self.base.get(x.local))
        per_index = math.prod(x.shape) // n  # entries per index of the split axis
        bounds = spans(n, self.ranks, x.unit)
        whole_flat = self.allgather(local.reshape(-1), [(hi - lo) * per_index for lo, hi in bounds])
        parts, start = [], 0
        for lo, hi in bounds:
            part_shape = (*x.shape[: x.axis], hi - lo, *x.shape[x.axis + 1 :])
            parts.append(whole_flat[start : start + (hi - lo) * per_index].reshape(part_shape))
            start += (hi - lo) * per_index
        return self._native(np.concatenate(parts, axis=x.axis))

    def _local_block(self, x, axis: int, name: str, unit: int = 1):
        """This rank's block along `axis` of a whole array (the split input of a row layer)."""
        if self.ranks == 1:
            return self._whole(x)
        return self._native(self._host_block(self.base.get(self._whole(x)), axis, name, unit))

    def _split(self, x, axis: int, name: str) -> Shard:
        """x as split along `axis`: a weight placed as an activation is cut here, locally."""
        if isinstance(x, Shard) and (x.axis, x.unit) == (axis, 1):
            return x
        shape = self.base.get(self._whole(x)).shape
        return Shard(self._local_block(x, axis, name), axis, shape)

    def _summed(self, partial, plus=None):
        """The sum over ranks of each rank's partial array, then + plus (a whole bias) once."""
        total = np.ascontiguousarray(self.base.get(partial), dtype=np.float32)
        self.allreduce(total.reshape(-1))
        if plus is not None:
            total += self.base.get(plus)
        return self._native(total)

    def _reshard(self, x: Shard, axis: int | None, unit: int = 1, name: str = "") -> None:
        """Change x's split in place (sharded-mlp: put cannot know a weight's layer)."""
        if (x.axis, x.unit) == (axis, unit) or (x.axis is None and axis is None):
            return
        before = self.base.get(x.local).nbytes
        whole = self._whole(x)
        x.local = (
            whole
            if axis is None
            else self._local_block(whole, axis, name or f"a tensor of shape {x.shape}", unit)
        )
        x.axis, x.unit = axis, unit
        self._traffic["weight_bytes"] += self.base.get(x.local).nbytes - before
