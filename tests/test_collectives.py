"""The collectives workload, the alpha-beta fit and the hostfile check, in one process.

What needs real ranks (MPI's collectives against the rings, their bytes, the workload's rows
at P = 2..4) is in tests/mpi_sharded_checks.py; a run over a hostfile in tests/test_sharded.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from harness import registry
from harness.execute import mpi
from harness.execute.check import check
from harness.execute.grid import Cell, plan
from harness.workloads import collectives, get_workload
from impls._collectives import bus_bytes

WORK = get_workload("collectives")


def test_the_sizes_are_nccl_tests_powers_of_4_from_4_bytes_to_64_mib():
    sizes = {(s["collective"], WORK.bytes(s, "fwd")) for s in WORK.sizes}
    expected = {4**k for k in range(1, 14)}
    assert sizes == {(c, b) for c in collectives.COLLECTIVES for b in expected}
    assert max(b for _, b in sizes) == 64 << 20
    assert all(WORK.flops(s, "fwd") == 0 for s in WORK.sizes)


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [1, 3, 17, 64])
def test_what_the_ranks_contribute_makes_the_answer_x_on_every_p(ranks, n):
    """Sums of the ranks' contributions, and the gather of each rank's block, are x_N
    exactly: the one-process reference's answer holds for any P."""
    x_N = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    for name in ("allreduce", "reducescatter"):
        parts = [collectives._contribution(x_N, name, r, ranks) for r in range(ranks)]
        assert np.array_equal(np.sum(parts, axis=0, dtype=np.float32), x_N), name
        assert all(np.count_nonzero(p) <= -(-n // ranks) for p in parts), name
    blocks = np.array_split(collectives._contribution(x_N, "allgather", 0, ranks), ranks)
    assert np.array_equal(np.concatenate(blocks), x_N)


def test_a_one_process_impl_records_the_collective_unsupported():
    cell = Cell("numpy", "collectives", (("collective", "allreduce"), ("N", 16)), "fwd")
    row, fn = check(registry.create("numpy"), cell, None)
    assert (row["status"], fn) == ("unsupported", None)
    assert row["reason"] == "numpy does not implement collective"


def test_an_unknown_collective_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="collective='alltoall': expected one of allreduce"):
        WORK.setup(registry.create("numpy"), {"collective": "alltoall", "N": 4}, "fwd", {})
    with pytest.raises(ValueError, match="unknown collective 'bcast'"):
        bus_bytes("bcast", 2, 4)


def test_bus_bytes_are_nccl_tests_factors():
    assert bus_bytes("allreduce", 4, 1000) == 1500  # 2 (P-1) / P
    assert bus_bytes("allgather", 4, 1000) == bus_bytes("reducescatter", 4, 1000) == 750
    assert bus_bytes("allreduce", 1, 1000) == 0


def test_the_alpha_beta_fit_recovers_a_synthetic_machine():
    """t = 5 us + S / 8 GB/s with 3% noise, 4 B ... 64 MiB: both back within a few percent,
    the latency too (relative residuals: the small sizes count as much as the large)."""
    rng = np.random.default_rng(0)
    S = np.array([4**k for k in range(1, 14)], dtype=np.float64)
    t = (5e-6 + S / 8e9) * rng.uniform(0.97, 1.03, S.size)
    fit = collectives.fit_alpha_beta(S, t)
    assert fit["alpha_s"] == pytest.approx(5e-6, rel=0.05)
    assert fit["gb_per_s"] == pytest.approx(8.0, rel=0.05)
    assert fit["rms_rel_residual"] < 0.03 and fit["points"] == 13


def test_alpha_beta_groups_rows_by_impl_ranks_and_collective():
    rows = [
        {
            "workload": "collectives",
            "status": "ok",
            "impl": "sharded-col",
            "P": 2,
            "collective": c,
            "N": n,
            "t_median_s": 1e-6 * (2 if c == "allgather" else 1) + 4 * n / 1e9,
        }
        for c in ("allreduce", "allgather")
        for n in (1, 1024, 1 << 20)
    ]
    rows.append({**rows[0], "status": "error"})  # not ok: left out
    # a size timed in three more trials (collectives_targets' 1 MiB), one of them 10x slow:
    # one point at its median, which the slow trial does not move
    big = rows[2]
    rows += [big, {**big, "t_median_s": 10 * big["t_median_s"]}, big]
    fits = collectives.alpha_beta(rows)
    assert list(fits) == ["sharded-col"] and list(fits["sharded-col"]) == ["P=2"]
    by_collective = fits["sharded-col"]["P=2"]
    assert by_collective["allgather"]["alpha_s"] == pytest.approx(2e-6, rel=1e-3)
    assert by_collective["allreduce"]["gb_per_s"] == pytest.approx(1.0, rel=1e-3)
    assert by_collective["allreduce"]["points"] == by_collective["allgather"]["points"] == 3


def test_the_fit_refuses_too_few_or_non_positive_times():
    with pytest.raises(ValueError, match="at least 2; got 1 sizes"):
        collectives.fit_alpha_beta([4], [1e-6])
    with pytest.raises(ValueError, match="positive times"):
        collectives.fit_alpha_beta([4, 16], [1e-6, 0.0])


def test_the_quick_grid_has_every_collective_and_few_sizes():
    cells = plan(["sharded-col"], ["collectives"], quick=True)
    assert len(cells) == 3 * len(collectives.QUICK_ENTRIES)


def test_a_hostfile_is_checked_before_it_is_used(tmp_path):
    good = tmp_path / "hosts"
    good.write_text("# two slots here\nlocalhost:2\nnode-b  # a comment\n")
    assert mpi.check_hostfile(str(good)) == str(good)
    assert mpi.HOSTFILE_VAR not in os.environ  # checking sets nothing: run sets it for its mpiexec
    bad = tmp_path / "bad"
    bad.write_text("localhost\nnode b:x\n")
    with pytest.raises(ValueError, match="line 2: 'node b:x' is not a Hydra host line"):
        mpi.check_hostfile(str(bad))
    (tmp_path / "empty").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="names no host"):
        mpi.check_hostfile(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="cannot read the hostfile"):
        mpi.check_hostfile(str(tmp_path / "missing"))


def test_the_nccl_rung_says_why_it_cannot_run_here():
    reason = registry.unavailable_reason("sharded-col-nccl")
    assert reason, "sharded-col-nccl has no NCCL collectives to run on"
    try:
        import cupy  # noqa: F401
    except ImportError:
        assert reason.startswith("no GPU: CuPy is not installed")
