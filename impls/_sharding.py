"""What the sharded rungs (impls/sharded.py) share: the MPI job, the base impl and delegation.

Every rank runs the same program on its own block of each weight. A layout says which axis
`put` splits (split_axis; the shards and their placement are impls/_shards.py's) and shards
its products itself; every other op runs in a base impl (the NumPy rung by default): on whole
arrays, or block by block on shards that share one split (the optimizer updates, the
entry-by-entry ops). So each sharded rung runs every workload. The collectives are MPI's own
(impls/_collectives.py); a subclass sets `collectives_class` to the rings of impls/_ring.py,
and `overlap` to start the column layers' input-gradient all-reduces non-blocking
(ShardPlacement._linear_bwd_summed).

The base impl comes from a direct import of its module (an impl importing an impl: the
registry is the harness's, and impls import only the contract); `base_class` names it, and a
subclass or the constructor's `base` argument shards another rung. One BLAS thread per rank
(launch_prefix's environment, or a limit when P > 1): the parallelism here is the ranks, and
two thread pools per core would fight. In one plain process (P = 1, no mpiexec: the unit tests,
`run --in-process`) the rung leaves the process's threads alone.
"""

from __future__ import annotations

import shutil
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.contract import COLLECTIVES, OPS, Impl
from impls._collectives import NativeCollectives
from impls._shards import Shard, ShardPlacement, spans
from impls.numpy_impl import NumpyImpl

# What launch_prefix sets to 1 in every rank: OpenBLAS, MKL and OpenMP (the C rung) threads.
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
# Ops that act entry by entry: they run block by block on shards that share one split. Not
# mse and mse_bwd: a mean over every entry, of the whole array (they run on whole arrays).
ELEMENTWISE = (
    "add",
    "relu",
    "relu_bwd",
    "gelu",
    "gelu_bwd",
    "sigmoid",
    "sigmoid_bwd",
    "tanh",
    "tanh_bwd",
    "sgd",
    "momentum",
    "adam",
)
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


class ShardedImpl(ShardPlacement, Impl):
    """The MPI job, the base impl and the delegation shared by the layouts of impls/sharded.py
    (placement from ShardPlacement, collectives from `collectives_class`)."""

    device = "cpu"
    rung = 5
    base_class = NumpyImpl
    collectives_class = NativeCollectives
    overlap = False  # True: the column layers' backward overlaps its all-reduce (_shards.py)

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
        self.collectives = self.collectives_class(self.comm)
        # A base whose arrays are host ndarrays (NumPy, C) takes a fresh host result as it is.
        self.host_native = isinstance(self._native(np.zeros(1, np.float32)), np.ndarray)
        self._traffic = {"weight_bytes": 0}

    def info(self):
        # Threads read when asked: threadpoolctl scans the libraries, too slow per api.call.
        from threadpoolctl import threadpool_info

        return {
            "threads": max(
                (p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=0
            ),
            "base": self.base.name,
            "collectives": "ring" if self.collectives_class is not NativeCollectives else "mpi",
            "overlap": self.overlap,
        }

    def traffic(self):
        return {**self._traffic, **self.collectives.counters}

    def collective(self, name, x):
        """The contract's hook: `name` over the ranks on x, this rank's whole message (the
        collectives workload); the result in a buffer reused by the next call alike."""
        if name not in COLLECTIVES:
            raise ValueError(
                f"{self.name}.collective: unknown collective {name!r}, expected "
                f"one of {', '.join(COLLECTIVES)}"
            )
        x_flat = np.ascontiguousarray(self.base.get(x), dtype=np.float32).reshape(-1)
        sizes = [hi - lo for lo, hi in spans(x_flat.size, self.ranks)]
        out_flat = self._as_native(self.collectives.run(name, x_flat, sizes))
        return Shard(out_flat, 0, x_flat.shape) if name == "reducescatter" else out_flat

    def sync(self):
        self.base.sync()

    def device_peak_bytes(self, fn):
        return self.base.device_peak_bytes(fn)

    # -- every other op: in the base, on whole arrays or block by block -------------------
    def _blockwise(self, op, args, kwargs):
        """The op on this rank's blocks, laid out as its first array is (the one an update
        writes to). Beside a whole first array a shard is gathered. Beside a sharded one, a
        shard split otherwise (optimizer state placed before sharded-mlp relaid its param) is
        resharded in place, and a whole array (a gradient that a whole op made, the same on
        every rank) is cut to this rank's block."""
        lead = args[0]
        if not isinstance(lead, Shard):
            return getattr(self.base, op)(*(self._whole(a) for a in args), **kwargs)
        local = []
        for i, a in enumerate(args):
            if isinstance(a, Shard):
                self._reshard(a, lead.axis, lead.unit)
                local.append(a.local)
            elif i < len(OPS[op].arrays) and lead.axis is not None:
                local.append(self._local_block(a, lead.axis, OPS[op].arrays[i], lead.unit))
            else:  # a keyword given by position, or a whole array beside a whole lead
                local.append(a)
        out = getattr(self.base, op)(*local, **kwargs)
        return None if out is None else Shard(out, lead.axis, lead.shape, lead.unit)

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
