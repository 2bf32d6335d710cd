"""Ring collectives for the `-ring` sharded rungs (impls/sharded.py), over MPI Sendrecv.

They are written here, not taken from MPI, so that the bytes counted are the bytes sent: an
all-gather or a reduce-scatter of S bytes sends (P-1)/P * S per rank, an all-reduce
(reduce-scatter then all-gather) 2(P-1)/P * S, nccl-tests' bus bytes; uneven blocks change
what one rank sends, never the mean over ranks. Each chunk of a sum is summed in one ring
order and then copied, so every rank holds the same bits. Beside MPI's own (impls/
_collectives.py, the default rungs) they show what MPI's algorithms buy.
"""

from __future__ import annotations

import time

import numpy as np

from impls._collectives import Collectives, blocks, offsets


class RingCollectives(Collectives):
    """allreduce, allgather and reduce_scatter on host float32 buffers, each step counted."""

    def _send(self, send_flat, recv_flat) -> None:
        """One ring step: send to the next rank, receive from the previous one; counted."""
        right, left = (self.rank + 1) % self.ranks, (self.rank - 1) % self.ranks
        self.comm.Sendrecv(send_flat, dest=right, recvbuf=recv_flat, source=left)
        self._sent += send_flat.nbytes

    def _ring_reduce(self, x_flat, spans, offset: int) -> None:
        """Reduce-scatter in place: then rank r holds the whole sum of span (r + offset) % P."""
        P, r = self.ranks, self.rank
        incoming_flat = self.buffer("ring incoming", max(hi - lo for lo, hi in spans), x_flat.dtype)
        for step in range(P - 1):  # pass on the span summed one rank further each step
            (slo, shi), (rlo, rhi) = (spans[(r + offset - k - step) % P] for k in (1, 2))
            self._send(x_flat[slo:shi], incoming_flat[: rhi - rlo])
            x_flat[rlo:rhi] += incoming_flat[: rhi - rlo]

    def _ring_gather(self, whole_flat, owned) -> None:
        """Complete whole_flat, in which each rank already holds its span owned[rank]."""
        P, r = self.ranks, self.rank
        for step in range(P - 1):  # pass along the span received in the step before
            (slo, shi), (rlo, rhi) = owned[(r - step) % P], owned[(r - step - 1) % P]
            self._send(whole_flat[slo:shi], whole_flat[rlo:rhi])

    def _timed(self, name: str, size_bytes: int, ring) -> None:
        """Run ring() and record it with the bytes its steps sent."""
        self._sent, start = 0, time.perf_counter()
        ring()
        self._record(name, size_bytes, time.perf_counter() - start, sent=self._sent)

    def allreduce(self, x_flat: np.ndarray) -> None:
        """Sum x_flat (contiguous) over the ranks, in place: reduce-scatter then all-gather."""
        if self.ranks == 1:
            return
        spans = blocks(x_flat.size, self.ranks)  # empty when there are fewer entries than P

        def ring():
            self._ring_reduce(x_flat, spans, offset=1)
            # Rank r holds the whole sum of span r + 1: it owns that span in the all-gather.
            self._ring_gather(x_flat, spans[1:] + spans[:1])

        self._timed("allreduce", x_flat.nbytes, ring)

    def allreduce_into(self, send_flat, recv_flat) -> np.ndarray:
        """Out of place: a local copy (not comm time), then the ring in place."""
        recv_flat[:] = send_flat
        self.allreduce(recv_flat)
        return recv_flat

    def allgather(self, local_flat: np.ndarray, sizes: list, whole_flat=None) -> np.ndarray:
        """The ranks' blocks (rank q's has sizes[q] entries) concatenated in rank order."""
        owned = offsets(sizes)
        whole_flat = np.empty(owned[-1][1], local_flat.dtype) if whole_flat is None else whole_flat
        lo, hi = owned[self.rank]
        whole_flat[lo:hi] = local_flat
        if self.ranks > 1:
            self._timed(
                "allgather", whole_flat.nbytes, lambda: self._ring_gather(whole_flat, owned)
            )
        return whole_flat

    def reduce_scatter(self, x_flat: np.ndarray, sizes: list, block_flat=None) -> np.ndarray:
        """This rank's block (sizes[rank] entries) of the sum over ranks of x_flat; x_flat is
        left as it was (the ring sums in a copy, in a buffer kept between calls)."""
        spans = offsets(sizes)
        lo, hi = spans[self.rank]
        block_flat = np.empty(hi - lo, x_flat.dtype) if block_flat is None else block_flat
        if self.ranks == 1:
            block_flat[:] = x_flat
            return block_flat
        work_flat = self.buffer("ring work", x_flat.size, x_flat.dtype)
        work_flat[:] = x_flat

        def ring():
            self._ring_reduce(work_flat, spans, offset=0)
            block_flat[:] = work_flat[lo:hi]

        self._timed("reducescatter", x_flat.nbytes, ring)
        return block_flat
