"""Ring collectives for the sharded rungs (impls/sharded.py), over MPI Sendrecv.

They are written here, not taken from MPI, so that the bytes counted are the bytes sent: an
all-gather of S bytes sends (P-1)/P * S per rank, an all-reduce (reduce-scatter then
all-gather) 2(P-1)/P * S; uneven blocks change what one rank sends, never the mean over ranks.
Each chunk of an all-reduce is summed in one ring order and then copied, so every rank holds
the same bits. Buffers are raveled host float32 arrays: `_flat` marks them.
"""

from __future__ import annotations

import time

import numpy as np


def blocks(n: int, parts: int) -> list:
    """[(lo, hi)] of np.array_split(range(n), parts): sizes differ by at most one."""
    size, extra = divmod(n, parts)
    bounds = np.cumsum([0] + [size + (i < extra) for i in range(parts)])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


class RingCollectives:
    """allreduce and allgather on host float32 buffers, for a sharded impl whose constructor
    sets `comm`, `rank`, `ranks` and the `_traffic` counters (comm_s, <name>_calls and
    <name>_bytes per collective)."""

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
            self._send("allreduce", x_flat[slo:shi], incoming_flat[: rhi - rlo])
            x_flat[rlo:rhi] += incoming_flat[: rhi - rlo]
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
