"""MPI's own collectives for the sharded rungs (impls/sharded.py), counted as nccl-tests counts.

The sharded rungs call mpi4py's buffer collectives: Allreduce in place, Allgather (Allgatherv
when the blocks are uneven), Reduce_scatter, and Iallreduce for the overlapped backward. The
hand-written rings (impls/_ring.py, the `-ring` rungs) share the counters, so a report shows
what MPI's algorithms buy.

Bytes and bandwidth are nccl-tests' (doc/PERFORMANCE.md): S is the message size per rank
(the all-reduce's buffer, the all-gather's output, the reduce-scatter's input), algbw = S / t
and busbw = algbw * 2(P-1)/P for an all-reduce, (P-1)/P for an all-gather or a
reduce-scatter, the bytes a rank must send per byte of S, so busbw reads against a link's
bandwidth whatever P. MPI does not say what it sent: a native call counts those bytes as
sent; a ring counts what it sends, whose mean over ranks is the same. Buffers are raveled host
float32 arrays (`_flat`); blocks are np.array_split's (impls/_shards.py `spans`).
"""

from __future__ import annotations

import time

import numpy as np

from harness.contract import COLLECTIVES

# Per collective: calls, bytes sent by this rank, S summed (size_bytes), nccl-tests' bus
# bytes summed (bus_bytes) and seconds inside MPI (s), waiting for the other ranks included.
FIELDS = ("calls", "bytes", "size_bytes", "bus_bytes", "s")
# Tests of every pending all-reduce at each poll: a message's handshake and its copies each
# need the partner in MPI too, so one pass left every 1 MiB slab to the final wait; measured
# on 2 cores, 8 passes got ~3/4 of a column backward's bytes done before it (a pass with
# nothing to do costs ~1 us).
POLL_ROUNDS = 8


def bus_bytes(name: str, ranks: int, size_bytes: int) -> float:
    """nccl-tests' bus bytes of S = size_bytes: S * busbw / algbw, the bytes a rank sends at
    the least (exact where P divides them)."""
    if name not in COLLECTIVES:
        raise ValueError(f"unknown collective {name!r}: expected one of {', '.join(COLLECTIVES)}")
    return (2 if name == "allreduce" else 1) * (ranks - 1) * size_bytes / ranks


def offsets(sizes: list) -> list:
    """[(lo, hi)] of consecutive blocks of these sizes."""
    ends = np.cumsum(sizes).tolist()
    return list(zip([0, *ends[:-1]], ends, strict=True))


def blocks(n: int, parts: int) -> list:
    """[(lo, hi)] of np.array_split(range(n), parts): sizes differ by at most one."""
    size, extra = divmod(n, parts)
    return offsets([size + (i < extra) for i in range(parts)])


def nccl_unavailable_reason() -> str:
    """Why the sharded rungs cannot all-reduce over NCCL here: that needs CuPy built with NCCL
    and a GPU per rank, and collectives on device buffers, which these (host float32
    buffers) are not: a reason always, the first one that holds."""
    try:
        import cupy
        from cupy.cuda import nccl
    except ImportError as error:
        return f"no GPU: CuPy is not installed ({error}), and NCCL comes with it"
    if not getattr(nccl, "available", False):
        return "CuPy was built without NCCL (cupy.cuda.nccl.available is False)"
    try:
        gpus = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as error:
        return f"no GPU: CUDA found none ({error})"
    if gpus < 2:
        return f"NCCL all-reduces between GPUs, one per rank: this machine has {gpus}"
    return (
        "NCCL collectives on device buffers are not written: the sharded rungs' collectives "
        "(impls/_collectives.py) take host float32 buffers"
    )


class Collectives:
    """Counters and the bookkeeping every kind of collective shares, over an mpi4py comm.

    counters: comm_s (every collective's seconds), <name>_<field> for FIELDS, and for the
    overlapped backward the bytes its all-reduces summed and those done before its final wait
    (InFlight)."""

    def __init__(self, comm):
        self.comm, self.rank, self.ranks = comm, comm.rank, comm.size
        self.counters = {"comm_s": 0.0, "overlap_bytes": 0, "overlap_early_bytes": 0}
        self.counters.update({f"{n}_{f}": 0 for n in COLLECTIVES for f in FIELDS})
        self._buffers: dict = {}  # kept between calls, one per (use, entries, dtype)

    def _record(self, name: str, size_bytes: int, seconds: float, sent=None) -> None:
        """One call of `name` on S = size_bytes; sent: bytes counted (None: nccl-tests')."""
        bus = bus_bytes(name, self.ranks, size_bytes)
        c = self.counters
        c[f"{name}_calls"] += 1
        c[f"{name}_bytes"] += bus if sent is None else sent
        c[f"{name}_size_bytes"] += size_bytes
        c[f"{name}_bus_bytes"] += bus
        c[f"{name}_s"] += seconds
        c["comm_s"] += seconds

    def buffer(self, use: str, n: int, dtype=np.float32) -> np.ndarray:
        """A buffer of n entries, the same one for every call that asks for `use` on n (the
        workload's outputs, nccl-tests' recvbuff; a ring's scratch): timed calls allocate
        nothing (a fresh 64 MiB buffer would pay for its page faults inside the timed call)."""
        key = (use, n, np.dtype(dtype))
        if key not in self._buffers:
            self._buffers[key] = np.zeros(n, dtype=dtype)
        return self._buffers[key]

    def run(self, name: str, x_flat: np.ndarray, sizes: list) -> np.ndarray:
        """The collectives workload's call, out of place: x_flat is the whole message on this
        rank (S = x_flat.nbytes); an all-gather sends this rank's block of it (sizes[rank]
        entries) and returns the whole; a reduce-scatter returns this rank's block of the sum."""
        if name == "allreduce":
            return self.allreduce_into(x_flat, self.buffer(name, x_flat.size))
        lo, hi = offsets(sizes)[self.rank]
        if name == "allgather":
            return self.allgather(x_flat[lo:hi], sizes, self.buffer(name, x_flat.size))
        # name is "reducescatter": the contract's hook (ShardedImpl.collective) refused others
        return self.reduce_scatter(x_flat, sizes, self.buffer(name, hi - lo))


class NativeCollectives(Collectives):
    """mpi4py's buffer collectives: MPI picks the algorithm by message size and P."""

    def allreduce(self, x_flat: np.ndarray) -> None:
        """Sum x_flat over the ranks, in place."""
        self.allreduce_into(x_flat, x_flat)

    def allreduce_into(self, send_flat, recv_flat) -> np.ndarray:
        """recv_flat = the sum over ranks of send_flat (in place when they are one)."""
        from mpi4py import MPI

        if self.ranks > 1:
            start = time.perf_counter()
            source = MPI.IN_PLACE if send_flat is recv_flat else send_flat
            self.comm.Allreduce(source, recv_flat, op=MPI.SUM)
            self._record("allreduce", recv_flat.nbytes, time.perf_counter() - start)
        elif send_flat is not recv_flat:
            recv_flat[:] = send_flat
        return recv_flat

    def allgather(self, local_flat: np.ndarray, sizes: list, whole_flat=None) -> np.ndarray:
        """The ranks' blocks (rank q's has sizes[q] entries) concatenated in rank order."""
        whole_flat = np.empty(sum(sizes), local_flat.dtype) if whole_flat is None else whole_flat
        if self.ranks == 1:
            whole_flat[:] = local_flat
            return whole_flat
        start = time.perf_counter()
        if len(set(sizes)) == 1:
            self.comm.Allgather(local_flat, whole_flat)
        else:  # uneven blocks: each rank's count and where it lands
            starts = [lo for lo, _ in offsets(sizes)]
            self.comm.Allgatherv(local_flat, [whole_flat, (sizes, starts)])
        self._record("allgather", whole_flat.nbytes, time.perf_counter() - start)
        return whole_flat

    def reduce_scatter(self, x_flat: np.ndarray, sizes: list, block_flat=None) -> np.ndarray:
        """This rank's block (sizes[rank] entries) of the sum over ranks of x_flat."""
        from mpi4py import MPI

        block_flat = np.empty(sizes[self.rank], x_flat.dtype) if block_flat is None else block_flat
        if self.ranks == 1:
            block_flat[:] = x_flat
            return block_flat
        start = time.perf_counter()
        self.comm.Reduce_scatter(x_flat, block_flat, recvcounts=sizes, op=MPI.SUM)
        self._record("reducescatter", x_flat.nbytes, time.perf_counter() - start)
        return block_flat

    def in_flight(self) -> InFlight:
        return InFlight(self)


class InFlight:
    """Non-blocking all-reduces started while compute goes on (the overlapped backward).

    Without an asynchronous progress thread MPICH moves a message only inside an MPI call,
    so the compute between starts calls poll() (MPI_Test on each) to let them advance; wait()
    finishes the rest. The counters say how many bytes were all-reduced so (overlap_bytes)
    and how many of them were done at a poll, before the final wait (overlap_early_bytes).
    Those moved inside poll(), on this rank's time, not behind its compute: what overlap hid
    is the comm time saved against the same backward without it, not this count."""

    def __init__(self, collectives: NativeCollectives):
        self.of, self.pending = collectives, []  # [(request, bytes)] not yet seen done

    def start(self, x_flat: np.ndarray) -> None:
        """Begin summing x_flat over the ranks in place: read it only after wait()."""
        from mpi4py import MPI

        if self.of.ranks == 1:
            return
        start = time.perf_counter()
        request = self.of.comm.Iallreduce(MPI.IN_PLACE, x_flat, op=MPI.SUM)
        self.of._record("allreduce", x_flat.nbytes, time.perf_counter() - start)
        self.pending.append((request, x_flat.nbytes))
        self.of.counters["overlap_bytes"] += x_flat.nbytes

    def poll(self) -> None:
        """Let the started all-reduces advance (the seconds spent here are comm time)."""
        start = time.perf_counter()
        for _ in range(POLL_ROUNDS):
            waiting = []
            for request, nbytes in self.pending:
                if request.Test():
                    self.of.counters["overlap_early_bytes"] += nbytes
                else:
                    waiting.append((request, nbytes))
            self.pending = waiting
        self._spent(time.perf_counter() - start)

    def wait(self) -> None:
        """Finish every started all-reduce: what is left is exposed."""
        from mpi4py import MPI

        start = time.perf_counter()
        MPI.Request.Waitall([request for request, _ in self.pending])
        self.pending = []
        self._spent(time.perf_counter() - start)

    def _spent(self, seconds: float) -> None:
        """Seconds inside MPI for the started all-reduces: their comm time."""
        self.of.counters["allreduce_s"] += seconds
        self.of.counters["comm_s"] += seconds
