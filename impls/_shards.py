"""Placement for the sharded rungs (impls/sharded.py): this rank's blocks, and whole arrays back.

A layout says which axis `put` splits (split_axis); what `put` then holds is a Shard, this
rank's block of the array. The layouts' products and the delegated ops (impls/_sharding.py)
turn shards into whole arrays, whole arrays into this rank's block, and partial results into
their sum over ranks, with the conversions here, through the impl's `collectives`
(impls/_collectives.py, or impls/_ring.py's rings). A column layer's backward sums its input
gradient here too, overlapped with its products when the impl says so (_linear_bwd_summed).

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

from impls._collectives import blocks

# Slabs of input features an overlapped backward runs its products in: each slab's input
# gradient starts its all-reduce as soon as it is there and the next slabs' products run
# while it is in flight, so only the last slab's stays exposed (1 / OVERLAP_SLABS of the
# comm at best); more slabs expose less and poll more often, but make each product smaller
# (8: 256 x 512 x 2048 products at B = 256, I = O = 4096, P = 2, still BLAS-sized).
OVERLAP_SLABS = 8


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
    """put, get and the shard <-> whole conversions, for a sharded impl with a `name` and
    `overlap`, whose constructor sets `base`, `host_native`, `rank`, `ranks`, `collectives`
    (allreduce, allgather, in_flight) and the `_traffic` counters (weight_bytes)."""

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

    def _as_native(self, fresh_np):
        """A host array that nothing writes through again, in the base's form: itself where
        that is host ndarrays (no copy), else placed."""
        return fresh_np if self.host_native else self._native(fresh_np)

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
        sizes = [(hi - lo) * per_index for lo, hi in bounds]
        whole_flat = self.collectives.allgather(local.reshape(-1), sizes)
        parts, start = [], 0
        for lo, hi in bounds:
            part_shape = (*x.shape[: x.axis], hi - lo, *x.shape[x.axis + 1 :])
            parts.append(whole_flat[start : start + (hi - lo) * per_index].reshape(part_shape))
            start += (hi - lo) * per_index
        return self._as_native(np.concatenate(parts, axis=x.axis))

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
        self.collectives.allreduce(total.reshape(-1))
        if plus is not None:
            total += self.base.get(plus)
        return self._as_native(total)

    def _linear_bwd_summed(self, x_BI, w_IO, dy_BO, bias: bool = True):
        """The base's linear_bwd (matmul_bwd without bias) of a column layer, whose dx_BI is
        this rank's partial sum: -> (dx_BI summed over ranks, dw_IO, db_O if bias)."""
        products = self.base.linear_bwd if bias else self.base.matmul_bwd
        if not self.overlap or self.ranks == 1:
            dx_BI, *rest = products(x_BI, w_IO, dy_BO)
            return (self._summed(dx_BI), *rest)
        # Megatron's overlap, pipelined over slabs of I: a slab's products give its columns
        # of dx_BI and its rows of dw_IO, and the all-reduce of one slab's dx runs while the
        # next slabs compute. MPI moves it only inside MPI calls: polled between slabs.
        x_host, w_host = self.base.get(x_BI), self.base.get(w_IO)
        I = x_host.shape[1]
        pending, dx_slabs, rest = self.collectives.in_flight(), [], []
        dw_IO = np.empty(w_host.shape, np.float32)
        for lo, hi in blocks(I, min(OVERLAP_SLABS, I)):
            dx_BIs, dw_IsO, *rest = products(  # rest: db_O, the same for every slab
                self._as_native(np.ascontiguousarray(x_host[:, lo:hi])),
                self._as_native(w_host[lo:hi]),  # a view of the weight: the base only reads it
                dy_BO,
            )
            dx_slabs.append(np.ascontiguousarray(self.base.get(dx_BIs), dtype=np.float32))
            pending.start(dx_slabs[-1].reshape(-1))
            dw_IO[lo:hi] = self.base.get(dw_IsO)
            if hi < I:  # more products to run: let the started all-reduces advance meanwhile
                pending.poll()
        pending.wait()
        return (self._as_native(np.concatenate(dx_slabs, axis=1)), self._as_native(dw_IO), *rest)

    def _reshard(
        self, x: Shard, axis: int | None, unit: int = 1, name: str = "", held: bool = True
    ) -> None:
        """Change x's split in place (sharded-mlp: put cannot know a weight's layer; held:
        x is a param, whose bytes weight_bytes counts, not an activation)."""
        if (x.axis, x.unit) == (axis, unit) or (x.axis is None and axis is None):
            return
        n = x.shape[axis] if axis is not None and x.axis == axis else 0
        if n and spans(n, self.ranks, x.unit) == spans(n, self.ranks, unit):
            x.unit = unit  # the same blocks in other units (P divides them): nothing moves
            return
        before = self.base.get(x.local).nbytes
        whole = self._whole(x)
        x.local = (
            whole
            if axis is None
            else self._local_block(whole, axis, name or f"a tensor of shape {x.shape}", unit)
        )
        x.axis, x.unit = axis, unit
        if held:
            self._traffic["weight_bytes"] += self.base.get(x.local).nbytes - before
