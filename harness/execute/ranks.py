"""A cell on every rank of an MPI job, in step: timed by the slowest rank, agreed on by all.

Every rank runs the same cells in the same order; each op's collectives pair up across ranks
only if every rank makes the same decisions. So, for each cell:

- its time is the slowest rank's: a barrier starts each round, and the round's time is the
  maximum over ranks, so loop counts and the number of rounds (decided from those maxima)
  are the same on every rank;
- budget decisions are rank 0's, broadcast after every cell;
- a rank whose cell failed while the others did not (they would wait in a collective for
  ever) aborts the whole job with its error after mpi.AGREE_S; a failure every rank shares
  (P larger than a split dimension) is an ordinary `error` row.

An impl runs on ranks when its class says so (contract.Impl.runs_on_ranks); its `traffic()`
counters give the compute / communication split, the bytes each rank sent per collective and
nccl-tests' bandwidths (algbw = S / t, busbw = algbw x its bus factor), and the overlap of a
non-blocking backward. Rows name the host of every rank (`run --hosts FILE`: mpi.py).
The cell's life is lifecycle.run_cell's; `OnRanks` plugs the steps above into its hooks, and
`follow` is that life on the ranks other than 0 of `mpiexec ... harness run`. The job itself
(which rank, the spec, barriers, aborts) is execute/mpi.py's.
"""

from __future__ import annotations

import os
import statistics
import time

from harness.execute import lifecycle, mpi
from harness.measure.timing import Stats, calibrate


class DistStats(Stats):
    """Stats of the slowest rank per round, with the compute / communication split and the
    traffic per call: `comm_s` are the seconds that slowest rank spent in collectives, waiting
    for the others included (so load imbalance shows up as communication)."""

    def __init__(self, samples_s, loops, comm_s, traffic):
        super().__init__(tuple(samples_s), loops)
        object.__setattr__(self, "comm_s", tuple(comm_s))
        object.__setattr__(self, "traffic", traffic)

    def as_dict(self) -> dict:
        # Compute is what the median time leaves after the median communication time.
        comm = statistics.median(self.comm_s)
        return {
            **super().as_dict(),
            "t_comm_s": comm,
            "t_compute_s": self.median - comm,
            **self.traffic,
        }


def _per_call_traffic(before: list, after: list, calls: int, seconds: dict) -> dict:
    """Counters of every rank before and after the timed rounds -> per-call columns.

    For each collective: its calls per phase call, the bytes a rank sent per phase call on
    average over ranks (nccl-tests' bus bytes: 2(P-1)/P * S for an all-reduce, (P-1)/P * S
    for an all-gather or a reduce-scatter of S bytes) and the most any rank sent (uneven
    splits); where the impl counts them, S per phase call (size_bytes), its seconds and
    algbw = S / t and busbw in GB/s. `seconds`: each "<name>_s" counter per phase call, the
    median over rounds of the mean over ranks (nccl-tests' default average). For a
    non-blocking backward, the bytes it all-reduced started before more compute and the
    fraction of them done before its final wait (and no bandwidths for its all-reduces).
    """

    def per_call(key: str) -> list:
        return [(a[key] - b[key]) / calls for b, a in zip(before, after, strict=True)]

    columns = {}
    names = sorted(k[: -len("_calls")] for k in after[0] if k.endswith("_calls"))
    for name in names:
        sent = per_call(f"{name}_bytes")
        columns[f"comm_{name}_calls"] = per_call(f"{name}_calls")[0]
        columns[f"comm_{name}_bytes"] = statistics.mean(sent)
        columns[f"comm_{name}_bytes_max"] = max(sent)
        if f"{name}_s" not in seconds:  # an impl that counts calls and bytes alone
            continue
        columns[f"comm_{name}_size_bytes"] = per_call(f"{name}_size_bytes")[0]
        columns[f"comm_{name}_s"] = seconds[f"{name}_s"]
        if seconds[f"{name}_s"] > 0:
            for bw, key in (("algbw", "size_bytes"), ("busbw", "bus_bytes")):
                per_s = per_call(f"{name}_{key}")[0] / seconds[f"{name}_s"]
                columns[f"comm_{name}_{bw}_gb_per_s"] = per_s / 1e9
    overlapped = statistics.mean(per_call("overlap_bytes")) if "overlap_bytes" in after[0] else 0
    if overlapped > 0:  # all-reduces started before the compute that followed them
        columns["comm_overlap_bytes"] = overlapped
        columns["comm_overlap_early_fraction"] = (
            statistics.mean(per_call("overlap_early_bytes")) / overlapped
        )
        # their seconds are those spent inside MPI (start, polls, wait), not how long each
        # took: S over them is no bandwidth
        for bw in ("algbw", "busbw"):
            columns.pop(f"comm_allreduce_{bw}_gb_per_s", None)
    return columns


def measure(
    fn, impl, time_per_cell_s: float = 0.5, min_rounds: int = 5, max_rounds: int = 1000
) -> DistStats:
    """measure/timing.measure for all ranks together (fn already warmed up by the check).

    A barrier lines the ranks up before each round; the round's sample is the largest
    time over ranks. Loops grow and rounds repeat on those maxima, identical on every rank,
    so every rank runs exactly the same calls and no collective is left unmatched.
    """
    world = mpi.world()

    def one_round(loops):
        world.Barrier()
        before = impl.traffic()
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        impl.sync()
        elapsed = time.perf_counter() - start
        spent = {k: v - before[k] for k, v in impl.traffic().items() if k.endswith("_s")}
        ranks = world.allgather((elapsed, spent))
        slowest, slowest_spent = max(ranks, key=lambda r: r[0])
        mean = {k: statistics.mean(r[1][k] for r in ranks) / loops for k in spent}
        return slowest, slowest_spent["comm_s"], mean  # the slowest rank and its comm

    loops, _ = calibrate(lambda loops: one_round(loops)[0])
    before = world.allgather(impl.traffic())
    samples, comms, rounds, spent = [], [], [], 0.0
    while len(samples) < max_rounds and (len(samples) < min_rounds or spent < time_per_cell_s):
        elapsed, comm, seconds = one_round(loops)
        samples.append(elapsed / loops)
        comms.append(comm / loops)
        rounds.append(seconds)
        spent += elapsed
    after = world.allgather(impl.traffic())
    seconds = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    traffic = _per_call_traffic(before, after, loops * len(samples), seconds)
    return DistStats(samples, loops, comms, traffic)


def _agree(world, row: dict) -> None:
    """Return when every rank reached this point with the same status; abort the job when
    this rank failed alone (the others are stuck in a collective) or when the ranks disagree."""
    alone = (
        f"rank {world.rank} of {world.size}: {row.get('reason')} (the other ranks did "
        f"not fail within {mpi.AGREE_S:g} s: aborting the job)"
    )
    mpi.line_up((lambda: mpi.abort(world, alone)) if row["status"] == "error" else None)
    statuses = world.allgather(f"{row['status']}: {row.get('reason', '')}")
    if len(set(statuses)) > 1:
        mpi.abort(
            world,
            f"ranks disagree on {row['impl']} {row['workload']} {row['size']} "
            f"{row['phase']}: " + "; ".join(f"rank {r}: {s}" for r, s in enumerate(statuses)),
        )


class OnRanks(lifecycle.Timed):
    """A cell run by every rank of the job together: the row that comes back on rank 0 holds
    the slowest rank's time and each rank's weights and peak memory."""

    # A rank that fails while timed leaves the others in a collective: its exception reaches
    # mpi.abort_on_uncaught's hook, which ends the whole job with that rank's traceback.
    records_failures = False
    hosts: tuple = ()  # the machine of each rank (MPI's processor names)

    def before(self, impl):
        mpi.line_up()
        if not self.pids:  # the job's processes and the host each runs on
            self.pids = tuple(mpi.world().allgather(os.getpid()))
            self.hosts = tuple(mpi.world().allgather(mpi.host()))
        self.held_before = impl.traffic()["weight_bytes"]

    def after_check(self, impl, row):
        world = mpi.world()
        # P is a size parameter: the same cell on 2 and on 4 ranks are two sizes.
        row = {**row, "P": world.size, "size": f"{row['size']} P={world.size}"}
        _agree(world, row)
        hostfile = os.environ.get(mpi.HOSTFILE_VAR)
        return {
            **row,
            "rank_hosts": list(self.hosts),
            "hosts": len(set(self.hosts)),
            **({"hostfile": hostfile} if hostfile else {}),
        }

    def measure(self, impl, fn, row):
        return measure(fn, impl, self.time_per_cell_s).as_dict()

    def after_measure(self, impl, row):
        world = mpi.world()
        # Each rank's own peaks are those of its shard's work: a process sees itself only.
        ranks_peak, ranks_rss = zip(
            *world.allgather((row["peak_mem_bytes"], row["peak_rss_bytes"]))
        )
        ranks_weight = world.allgather(impl.traffic()["weight_bytes"] - self.held_before)
        unread = None in ranks_rss  # a rank that could not read its peak: no max, no sum
        return {
            **row,
            "rank_peak_mem_bytes": list(ranks_peak),
            "peak_mem_bytes": max(ranks_peak),
            "rank_peak_rss_bytes": list(ranks_rss),
            "peak_rss_bytes": None if unread else max(ranks_rss),
            "peak_rss_sum_bytes": None if unread else sum(ranks_rss),
            "rank_weight_bytes": ranks_weight,
            "weight_bytes": max(ranks_weight),
        }

    def after_cell(self, budget):
        if budget:  # every rank decides the next cell's budget as rank 0 does
            budget.history = mpi.world().bcast(budget.history, root=0)


def follow(cells: list, options: lifecycle.Options) -> int:
    """Ranks other than 0 of `mpiexec -n P python -m harness run`: run the ranked impls'
    cells in step with rank 0 (which runs, stores and prints everything) and stay out of the
    single-process impls, which rank 0 runs alone."""
    from harness import registry
    from harness.execute.grid import by_impl

    mpi.abort_on_uncaught()
    for name, impl_cells in by_impl(cells).items():
        if registry.get_class(name).runs_on_ranks:
            lifecycle.run_impl(name, impl_cells, options, on_row=lambda row: None)
    return 0
