"""What the sharded rungs (impls/sharded.py) share: placement, shards and delegation.

Every rank runs the same program on its own block of each weight. A layout says which axis
`put` splits (split_axis) and shards its products itself; every other op runs in a base impl
(the NumPy rung by default): on whole arrays, or block by block on shards that share one split
(the optimizer updates, elementwise). So each sharded rung runs every workload.

Letters: those of contract.DIMS; a lower-case `p` after a letter marks this rank's block of
that axis (w_IOp: all I rows, this rank's O_r ~ O/P columns). Blocks are np.array_split's:
sizes differ by at most one, so P need not divide anything, but P larger than the axis is
refused. The collectives are impls/_ring.py's.

The base impl comes from a direct import of its module (an impl importing an impl: the
registry is the harness's, and impls import only the contract); `base_class` names it, and a
subclass or the constructor's `base` argument shards another rung. One BLAS thread per rank
(launch_prefix's environment, or a limit when P > 1): the parallelism here is the ranks, and
two thread pools per core would fight. In one plain process (P = 1, no mpiexec: the unit tests,
`run --in-process`) the rung leaves the process's threads alone.
"""

from __future__ import annotations

import math
import shutil
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.contract import OPS, Impl
from impls._ring import RingCollectives, blocks
from impls.numpy_impl import NumpyImpl

# What launch_prefix sets to 1 in every rank: OpenBLAS, MKL and OpenMP (the C rung) threads.
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
# Ops that act entry by entry: they run block by block on shards that share one split.
ELEMENTWISE = ("add", "relu", "relu_bwd", "sgd", "momentum", "adam")
# The products each layout (impls/sharded.py) shards itself.
SHARDED = ("matmul", "matmul_bwd", "linear", "linear_bwd")
# Every other op of the contract needs whole arrays (shards are gathered for it first).
WHOLE = tuple(op for op in OPS if op not in ELEMENTWISE + SHARDED)


def mpiexec() -> str | None:
    """The mpiexec of the mpich wheel (installed next to this Python), else one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


@lru_cache(maxsize=1)
def ops_comm():
    """The communicator of every sharded instance in this process: a duplicate of COMM_WORLD,
    so the harness's barriers and broadcasts there never match an op's collectives. One per
    process, not one per instance: MPI has a few thousand communicators to give, and a caller
    creating an instance per call (harness.api.call) ran out of them. Instances can share it
    because every rank makes the same calls in the same order, so messages still pair up."""
    from mpi4py import MPI

    return MPI.COMM_WORLD.Dup()


@dataclass
class Shard:
    """This rank's block of a tensor of `shape` split along `axis` (None: the whole tensor).

    `local` is a base-native array. A Shard is mutable so that a layout can be changed in
    place (sharded-mlp) wherever the harness holds it.
    """

    local: object
    axis: int | None
    shape: tuple


class ShardedImpl(RingCollectives, Impl):
    """Placement, collectives and delegation shared by the layouts of impls/sharded.py."""

    device = "cpu"
    rung = 5
    base_class = NumpyImpl

    @classmethod
    def unavailable_reason(cls):
        try:
            import mpi4py  # noqa: F401
        except ImportError:
            return "mpi4py is not installed: pip install 'nnladder[mpi]' (mpi4py and mpich)"
        if mpiexec() is None:
            return "no mpiexec found beside Python or on PATH: pip install mpich"
        return cls.base_class.unavailable_reason()

    runs_on_ranks = True

    @classmethod
    def launch_prefix(cls, ranks: int) -> list:
        """The worker's command prefix: one rank per process of `mpiexec -n P`."""
        if not isinstance(ranks, int) or ranks < 1:
            raise ValueError(f"--ranks must be a whole number >= 1, got {ranks!r}")
        # One BLAS / OpenMP thread per rank from the start: the parallelism is the ranks.
        one_thread = [arg for var in BLAS_THREAD_VARS for arg in ("-genv", var, "1")]
        return [mpiexec(), "-n", str(ranks), *one_thread]

    def __init__(self, base: Impl | None = None):
        from threadpoolctl import threadpool_limits

        self.base = base or self.base_class()
        self.device = self.base.device
        self.comm = ops_comm()
        self.rank, self.ranks = self.comm.rank, self.comm.size
        if self.ranks > 1:  # a job launched without launch_prefix's variables: same rule
            self._blas_limit = threadpool_limits(1)  # kept alive: the limit lasts with it
        self._traffic = {
            "comm_s": 0.0,
            "weight_bytes": 0,
            "allreduce_calls": 0,
            "allreduce_bytes": 0,
            "allgather_calls": 0,
            "allgather_bytes": 0,
        }

    def info(self):
        # Threads read when asked: threadpoolctl scans the libraries, too slow per api.call.
        from threadpoolctl import threadpool_info

        return {
            "threads": max(
                (p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=0
            ),
            "base": self.base.name,
        }

    def traffic(self):
        return dict(self._traffic)

    def sync(self):
        self.base.sync()

    def device_peak_bytes(self, fn):
        return self.base.device_peak_bytes(fn)

    # -- placement ------------------------------------------------------------------------
    def split_axis(self, x_np, role) -> int | None:
        """The axis this layout splits an array placed with `role` along, or None."""
        raise NotImplementedError

    def _block(self, n: int, what: str) -> tuple:
        """(lo, hi) of this rank's block of an axis of n entries, refused when n < P."""
        if n < self.ranks:
            raise ValueError(
                f"{self.name}: cannot split {what} over P={self.ranks} ranks: it has {n} "
                f"entries there and every rank needs at least one (use --ranks <= {n})"
            )
        return blocks(n, self.ranks)[self.rank]

    def _host_block(self, x_np: np.ndarray, axis: int, name: str) -> np.ndarray:
        """This rank's block of a host array along `axis`, contiguous for the products."""
        lo, hi = self._block(x_np.shape[axis], f"axis {axis} of {name} of shape {x_np.shape}")
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
        whole_flat = self.allgather(
            local.reshape(-1), [(hi - lo) * per_index for lo, hi in blocks(n, self.ranks)]
        )
        parts, start = [], 0
        for lo, hi in blocks(n, self.ranks):
            part_shape = (*x.shape[: x.axis], hi - lo, *x.shape[x.axis + 1 :])
            parts.append(whole_flat[start : start + (hi - lo) * per_index].reshape(part_shape))
            start += (hi - lo) * per_index
        return self._native(np.concatenate(parts, axis=x.axis))

    def _local_block(self, x, axis: int, name: str):
        """This rank's block along `axis` of a whole array (the split input of a row layer)."""
        if self.ranks == 1:
            return self._whole(x)
        return self._native(self._host_block(self.base.get(self._whole(x)), axis, name))

    def _split(self, x, axis: int, name: str) -> Shard:
        """x as split along `axis`: a weight placed as an activation is cut here, locally."""
        if isinstance(x, Shard) and x.axis == axis:
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

    def _reshard(self, x: Shard, axis: int | None) -> None:
        """Change x's split in place (sharded-mlp: put cannot know a weight's layer)."""
        if x.axis == axis:
            return
        before = self.base.get(x.local).nbytes
        whole = self._whole(x)
        x.local = (
            whole
            if axis is None
            else self._local_block(whole, axis, f"a tensor of shape {x.shape}")
        )
        x.axis = axis
        self._traffic["weight_bytes"] += self.base.get(x.local).nbytes - before

    # -- every other op: in the base, on whole arrays or block by block -------------------
    def _blockwise(self, op, args, kwargs):
        shards = [a for a in args if isinstance(a, Shard)]
        if not shards:
            return getattr(self.base, op)(*args, **kwargs)
        lead = shards[0]
        for other in shards[1:]:  # optimizer state placed before sharded-mlp relaid its param
            self._reshard(other, lead.axis)
        if any(not isinstance(a, Shard) and hasattr(a, "shape") for a in args):
            raise TypeError(
                f"{self.name}.{op}: got a whole array beside a shard; an "
                f"elementwise op needs all its arrays split alike"
            )
        out = getattr(self.base, op)(
            *(a.local if isinstance(a, Shard) else a for a in args), **kwargs
        )
        return None if out is None else Shard(out, lead.axis, lead.shape)

    def _on_whole(self, op, args, kwargs):
        return getattr(self.base, op)(*(self._whole(a) for a in args), **kwargs)


def _delegate(op, how):
    def method(self, *args, **kwargs):
        return how(self, op, args, kwargs)

    method.__name__ = method.__qualname__ = op
    method.__doc__ = f"The base impl's {op}" + (
        ", block by block on shards."
        if how is ShardedImpl._blockwise
        else ", on whole arrays (shards gathered first)."
    )
    return method


for _op in ELEMENTWISE:
    setattr(ShardedImpl, _op, _delegate(_op, ShardedImpl._blockwise))
for _op in WHOLE:
    setattr(ShardedImpl, _op, _delegate(_op, ShardedImpl._on_whole))
