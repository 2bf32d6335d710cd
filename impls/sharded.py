"""The sharded rungs: Megatron-style tensor parallelism over the ranks of an MPI job.

Every rank runs the same program on its own block of each weight; the products run in a base
impl (the NumPy rung by default), the collectives here, through mpi4py. Three layouts:

- `sharded-col` (column-parallel): w_IO split on O. Forward: y_BOp = x_BI @ w_IOp + b_Op,
  all-gathered to y_BO. Backward: dx_BI = dy_BOp @ w_IOp^T summed by an all-reduce; dw_IOp and
  db_Op stay on their rank.
- `sharded-row` (row-parallel): w_IO split on I, x_BI sliced to x_BIp. Forward: the partial
  products x_BIp @ w_IpO all-reduced, then b_O added once. Backward: dx_BIp all-gathered to
  dx_BI; dw_IpO stays on its rank; db_O (b_O is whole on every rank) needs no collective.
- `sharded-mlp`: Megatron's pairing, column then row with the activation left split between
  them: one all-reduce forward and one backward per pair (a last, unpaired layer is
  column-parallel). It runs the MLP models whole (the contract's `fused` hook); a lone
  linear has no partner, so it is left to sharded-col and sharded-row.

Every other op runs in the base impl: on whole arrays, or block by block on shards that share
one split (the optimizer updates, elementwise). So each sharded rung runs every workload.

Letters: those of contract.DIMS; a lower-case `p` after a letter marks this rank's block of
that axis (w_IOp: all I rows, this rank's O_r ~ O/P columns). Blocks are np.array_split's:
sizes differ by at most one, so P need not divide anything, but P larger than the axis is
refused. Tensors sent over the wire are raveled: `_flat` marks them.

Collectives are rings of MPI Sendrecv written here, not MPI's own, so that the bytes counted
are the bytes sent: an all-gather of S bytes sends (P-1)/P * S per rank, an all-reduce
(reduce-scatter then all-gather) 2(P-1)/P * S; uneven blocks change what one rank sends,
never the mean over ranks. Each chunk of an all-reduce is summed in one ring order and then
copied, so every rank holds the same bits.

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
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.contract import OPS, Impl
from impls.numpy_impl import NumpyImpl

# What launch_prefix sets to 1 in every rank: OpenBLAS, MKL and OpenMP (the C rung) threads.
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
# Ops that act entry by entry: they run block by block on shards that share one split.
ELEMENTWISE = ("add", "relu", "relu_bwd", "sgd", "momentum", "adam")
# The products the layouts below shard themselves.
SHARDED = ("matmul", "matmul_bwd", "linear", "linear_bwd")
# Every other op of the contract needs whole arrays (shards are gathered for it first).
WHOLE = tuple(op for op in OPS if op not in ELEMENTWISE + SHARDED)


def mpiexec() -> str | None:
    """The mpiexec of the mpich wheel (installed next to this Python), else one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def blocks(n: int, parts: int) -> list:
    """[(lo, hi)] of np.array_split(range(n), parts): sizes differ by at most one."""
    size, extra = divmod(n, parts)
    bounds = np.cumsum([0] + [size + (i < extra) for i in range(parts)])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


@dataclass
class Shard:
    """This rank's block of a tensor of `shape` split along `axis` (None: the whole tensor).

    `local` is a base-native array. A Shard is mutable so that a layout can be changed in
    place (sharded-mlp) wherever the harness holds it.
    """

    local: object
    axis: int | None
    shape: tuple


class ShardedImpl(Impl):
    """Placement, collectives and delegation shared by the three layouts below."""

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
        from mpi4py import MPI
        from threadpoolctl import threadpool_info, threadpool_limits

        self.base = base or self.base_class()
        self.device = self.base.device
        # A communicator of its own: the harness's barriers and broadcasts on COMM_WORLD can
        # never be matched with an op's collectives.
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank, self.ranks = self.comm.rank, self.comm.size
        if self.ranks > 1:  # a job launched without launch_prefix's variables: same rule
            self._blas_limit = threadpool_limits(1)  # kept alive: the limit lasts with it
        self.threads = max((p["num_threads"] for p in threadpool_info()
                            if p["user_api"] == "blas"), default=0)
        self._traffic = {"comm_s": 0.0, "weight_bytes": 0, "allreduce_calls": 0,
                         "allreduce_bytes": 0, "allgather_calls": 0, "allgather_bytes": 0}

    def info(self):
        return {"threads": self.threads, "base": self.base.name}

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
                f"entries there and every rank needs at least one (use --ranks <= {n})")
        return blocks(n, self.ranks)[self.rank]

    def _host_block(self, x_np: np.ndarray, axis: int, name: str) -> np.ndarray:
        """This rank's block of a host array along `axis`, contiguous for the products."""
        lo, hi = self._block(x_np.shape[axis], f"axis {axis} of {name} of shape {x_np.shape}")
        return np.ascontiguousarray(x_np[(slice(None),) * axis + (slice(lo, hi),)])

    def put(self, x_np, role):
        axis = self.split_axis(x_np, role)
        local = self.base.put(x_np if axis is None else
                              self._host_block(x_np, axis, f"the {role}"), role)
        if role in ("weight", "bias"):  # what this rank holds, whole or its block
            self._traffic["weight_bytes"] += self.base.get(local).nbytes
        return local if axis is None else Shard(local, axis, x_np.shape)

    def get(self, x):
        if isinstance(x, Shard):
            return self.base.get(self._whole(x))
        return self.base.get(x)

    # -- collectives: rings of Sendrecv on host float32 buffers ----------------------------
    def _send(self, name, send_flat, recv_flat):
        """One ring step: send to the next rank, receive from the previous one; counted."""
        right, left = (self.rank + 1) % self.ranks, (self.rank - 1) % self.ranks
        self.comm.Sendrecv(send_flat, dest=right, recvbuf=recv_flat, source=left)
        self._traffic[f"{name}_bytes"] += send_flat.nbytes

    def _ring_gather(self, name, whole_flat, owned):
        """Complete whole_flat, in which each rank already holds its span owned[rank]."""
        P, r = self.ranks, self.rank
        for step in range(P - 1):  # pass along the span received in the step before
            (slo, shi), (rlo, rhi) = owned[(r - step) % P], owned[(r - step - 1) % P]
            self._send(name, whole_flat[slo:shi], whole_flat[rlo:rhi])

    def allreduce(self, x_flat: np.ndarray) -> None:
        """Sum x_flat (contiguous) over the ranks, in place: reduce-scatter then all-gather."""
        if self.ranks == 1:
            return
        start = time.perf_counter()
        P, r = self.ranks, self.rank
        spans = blocks(x_flat.size, P)  # empty spans when there are fewer entries than ranks
        incoming_flat = np.empty(spans[0][1] - spans[0][0], dtype=x_flat.dtype)
        for step in range(P - 1):
            (slo, shi), (rlo, rhi) = spans[(r - step) % P], spans[(r - step - 1) % P]
            self._send("allreduce", x_flat[slo:shi], incoming_flat[:rhi - rlo])
            x_flat[rlo:rhi] += incoming_flat[:rhi - rlo]
        # Rank r now holds the whole sum of span r + 1: it owns that span in the all-gather.
        self._ring_gather("allreduce", x_flat, spans[1:] + spans[:1])
        self._traffic["allreduce_calls"] += 1
        self._traffic["comm_s"] += time.perf_counter() - start

    def allgather(self, local_flat: np.ndarray, sizes: list) -> np.ndarray:
        """The ranks' blocks (rank q's has sizes[q] entries) concatenated in rank order."""
        ends = np.cumsum(sizes).tolist()
        owned = list(zip([0, *ends[:-1]], ends, strict=True))
        whole_flat = np.empty(ends[-1], dtype=local_flat.dtype)
        lo, hi = owned[self.rank]
        whole_flat[lo:hi] = local_flat
        if self.ranks > 1:
            start = time.perf_counter()
            self._ring_gather("allgather", whole_flat, owned)
            self._traffic["allgather_calls"] += 1
            self._traffic["comm_s"] += time.perf_counter() - start
        return whole_flat

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
        whole_flat = self.allgather(local.reshape(-1),
                                    [(hi - lo) * per_index for lo, hi in blocks(n, self.ranks)])
        parts, start = [], 0
        for lo, hi in blocks(n, self.ranks):
            part_shape = (*x.shape[:x.axis], hi - lo, *x.shape[x.axis + 1:])
            parts.append(whole_flat[start:start + (hi - lo) * per_index].reshape(part_shape))
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
        x.local = whole if axis is None else \
            self._local_block(whole, axis, f"a tensor of shape {x.shape}")
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
            raise TypeError(f"{self.name}.{op}: got a whole array beside a shard; an "
                            f"elementwise op needs all its arrays split alike")
        out = getattr(self.base, op)(*(a.local if isinstance(a, Shard) else a for a in args),
                                     **kwargs)
        return None if out is None else Shard(out, lead.axis, lead.shape)

    def _on_whole(self, op, args, kwargs):
        return getattr(self.base, op)(*(self._whole(a) for a in args), **kwargs)


def _delegate(op, how):
    def method(self, *args, **kwargs):
        return how(self, op, args, kwargs)
    method.__name__ = method.__qualname__ = op
    method.__doc__ = f"The base impl's {op}" + (", block by block on shards."
                                                if how is ShardedImpl._blockwise else
                                                ", on whole arrays (shards gathered first).")
    return method


for _op in ELEMENTWISE:
    setattr(ShardedImpl, _op, _delegate(_op, ShardedImpl._blockwise))
for _op in WHOLE:
    setattr(ShardedImpl, _op, _delegate(_op, ShardedImpl._on_whole))


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
        dx_BI, dw_IOp, db_Op = self.base.linear_bwd(self._whole(x_BI), w_IOp.local, dy_BOp)
        return (self._summed(dx_BI), Shard(dw_IOp, 1, w_IOp.shape),
                Shard(db_Op, 0, (w_IOp.shape[1],)))

    def matmul(self, a_MK, b_KN):
        b_KNp = self._split(b_KN, 1, "b_KN")
        c_MNp = self.base.matmul(self._whole(a_MK), b_KNp.local)
        return self._whole(Shard(c_MNp, 1, (a_MK.shape[0], b_KNp.shape[1])))

    def matmul_bwd(self, a_MK, b_KN, dc_MN):
        b_KNp, dc_MNp = self._split(b_KN, 1, "b_KN"), self._local_block(dc_MN, 1, "dc_MN")
        da_MK, db_KNp = self.base.matmul_bwd(self._whole(a_MK), b_KNp.local, dc_MNp)
        return self._summed(da_MK), Shard(db_KNp, 1, b_KNp.shape)


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
        return (self._whole(Shard(dx_BIp, 1, (x_BI.shape[0], w_IpO.shape[0]))),
                Shard(dw_IpO, 0, w_IpO.shape), db_O)

    def matmul(self, a_MK, b_KN):
        b_KpN, a_MKp = self._split(b_KN, 0, "b_KN"), self._local_block(a_MK, 1, "a_MK")
        return self._summed(self.base.matmul(a_MKp, b_KpN.local))

    def matmul_bwd(self, a_MK, b_KN, dc_MN):
        b_KpN, a_MKp = self._split(b_KN, 0, "b_KN"), self._local_block(a_MK, 1, "a_MK")
        da_MKp, db_KpN = self.base.matmul_bwd(a_MKp, b_KpN.local, self._whole(dc_MN))
        return (self._whole(Shard(da_MKp, 1, (a_MK.shape[0], b_KpN.shape[0]))),
                Shard(db_KpN, 0, b_KpN.shape))


class MegatronMLP(ShardedImpl):
    """Megatron's MLP: layers paired column -> row, the activation split between them.

    Layer l is column-parallel when l is even and row-parallel when odd, so each pair keeps
    h_BHp (and relu's input z_BHp) on its rank: the forward all-reduces once per pair, after
    the row layer; the backward once per pair, for the column layer's input gradient (the
    first layer's is skipped: the model does not use it). A last, unpaired layer is
    column-parallel and all-gathers the logits.
    """

    name = "sharded-mlp"
    fused = frozenset({"mlp"})

    def split_axis(self, x_np, role):
        # put cannot know a weight's layer: everything starts column-parallel, and the row
        # layers are resharded once, the first time the model sees its params (untimed).
        return {"weight": x_np.ndim - 1, "bias": 0}.get(role)

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
                dx, dw, db = self.base.linear_bwd(inputs[layer], w.local, dz)
                if layer > 0:
                    dx = self._summed(dx)
            else:  # row: dh_BHp = dz_BO @ w_HpO^T stays on its rank; db_O is whole
                dx, dw, db = self.base.linear_bwd(inputs[layer], w.local, dz)
            grads[2 * layer], grads[2 * layer + 1] = \
                Shard(dw, w.axis, w.shape), Shard(db, b.axis, b.shape)
            if layer > 0:
                dz = self.base.relu_bwd(pre[layer - 1], dx)
        return grads
