"""The sharded rungs on real MPI ranks: equivalence, byte counts, collectives, hosts, faults.

The checks that need several ranks live in tests/mpi_sharded_checks.py and run as one MPI job
per rank count (about a second each to start); these tests launch the jobs and read their
exit status and output. mpiexec comes from the mpich wheel (the `mpi` extra).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import registry
from harness.api import call

ROOT = Path(__file__).resolve().parent.parent
COL = registry.get_class("sharded-col")
pytestmark = pytest.mark.skipif(
    bool(COL.unavailable_reason()), reason=f"sharded rungs: {COL.unavailable_reason()}"
)


def mpiexec(ranks: int, *command, env=None, timeout=120):
    return subprocess.run(
        [*COL.launch_prefix(ranks), *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_shards_match_the_unsharded_base_and_bytes_match_the_ring_formulas(ranks):
    """Forward outputs and every gradient of linear and matmul (on every layout, over MPI's
    collectives, the rings and overlapped: sharded-mlp's lone products are column-parallel),
    three MLPs and the attention block (sizes no P in 2..4 divides) within 1e-5 of the NumPy
    rung; the elementwise ops on shards, the GPT on all three layouts and the Megatron
    transformer block (sharded-mlp, -ring, -overlap; heads split unevenly at P = 3 with 4
    heads; output, every gradient and sgd / momentum / Adam steps) within 1e-5 of the float64
    reference, with two all-reduces forward and two backward per block; ring bytes exactly the
    formulas and their mean nccl-tests' bus bytes, MPI's counted by them; MPI's sums and the
    rings' bitwise alike on every rank; rows with busbw = algbw x the bus factor, the
    collectives workload exact, the overlapped backward's window; each rank holds its block
    only; P above a split dimension (or above a block's heads) refused. P = 3, 4
    oversubscribe 2 cores."""
    done = mpiexec(ranks, sys.executable, "tests/mpi_sharded_checks.py")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"sharded checks ok: P={ranks}" in done.stdout


FAULTY = {"NNLADDER_IMPLS": "tests.mpi_fault_impls", "NNLADDER_TEST_FAIL_RANK": "1"}


def test_a_rank_failing_alone_in_the_check_ends_the_job_and_the_run_goes_on(tmp_path):
    """Through `python -m harness run`: rank 1 of 3 raises in the correctness check; the job
    ends (not hangs) with that rank's error in the cell's row, the next cell runs in a new
    job; a split the ranks cannot share is an ordinary error row on every rank."""
    start = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--impl",
            "sharded-col-faulty",
            "--workload",
            "xor,linear",
            "--phase",
            "fwd,bwd",
            "--quick",
            "--ranks",
            "3",
            "--no-report",
            "--timeout",
            "60",
            "--results",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **FAULTY},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - start < 60  # AGREE_S (5 s) and three MPI starts, not a timeout
    rows = pd.concat(pd.read_json(p, lines=True) for p in tmp_path.rglob("*.jsonl"))
    by_cell = {(r.workload, r.phase): r for r in rows.itertuples()}
    failed = by_cell[("linear", "fwd")]
    assert failed.status == "error"
    assert "rank 1 of 3: RuntimeError: injected fault on rank 1" in failed.reason
    assert "timeout" not in failed.reason
    assert by_cell[("linear", "bwd")].status == "ok"  # the run went on in a fresh job
    refused = by_cell[("xor", "fwd")]
    assert refused.status == "error"
    assert (
        "cannot split axis 1 of the weight of shape (4, 2) over P=3 ranks: it has 2 entries there"
        in refused.reason
        and "--ranks <= 2" in refused.reason
    )


def test_a_rank_failing_while_timed_aborts_a_user_launched_job_with_its_error(tmp_path):
    """`mpiexec -n 2 python -m harness run`: rank 1 raises inside the timed rounds (its third
    call), where no one catches it: the job ends non-zero with rank 1's traceback."""
    start = time.monotonic()
    done = mpiexec(
        2,
        sys.executable,
        "-m",
        "harness",
        "run",
        "--impl",
        "sharded-col-faulty",
        "--workload",
        "linear",
        "--phase",
        "fwd",
        "--quick",
        "--no-report",
        "--results",
        str(tmp_path),
        env={**FAULTY, "NNLADDER_TEST_FAIL_CALL": "3"},
        timeout=60,
    )
    assert done.returncode != 0
    assert time.monotonic() - start < 30
    assert "RuntimeError: injected fault on rank 1 at call 3" in done.stderr
    assert "rank 1: Traceback" in done.stderr


def test_a_user_launched_job_stores_one_table_from_rank_0(tmp_path):
    """`mpiexec -n 2 python -m harness run --impl sharded-row`: rank 0 alone writes the rows,
    which carry the ranks, the slowest-rank time split and the per-rank memory."""
    done = mpiexec(
        2,
        sys.executable,
        "-m",
        "harness",
        "run",
        "--impl",
        "sharded-row",
        "--workload",
        "linear",
        "--quick",
        "--no-report",
        "--results",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    files = list(tmp_path.rglob("*.jsonl"))
    assert len(files) == 1 and done.stdout.count("stored 2 rows") == 1
    rows = pd.read_json(files[0], lines=True)
    assert list(rows.status) == ["ok", "ok"] and set(rows.P) == {2}
    assert all(len(r) == 2 for r in rows.rank_peak_mem_bytes)
    assert (rows.t_comm_s > 0).all() and (rows.t_compute_s > 0).all()
    assert (rows.threads == 1).all()


def test_thousands_of_calls_in_one_process_share_one_communicator():
    """Each api.call makes a new instance; MPI has a few thousand communicators to give, so
    the instances share one duplicate of COMM_WORLD instead of each making its own."""
    one_BI = np.ones((1, 1), np.float32)
    for _ in range(3000):
        c_BI = call("sharded-col", "add", one_BI, one_BI)
    assert c_BI.tolist() == [[2.0]]
    assert registry.create("sharded-col").comm is registry.create("sharded-mlp").comm


def test_a_run_over_a_hostfile_records_the_hosts_and_fits_alpha_beta(tmp_path):
    """`run --ranks 2 --hosts FILE` with localhost twice: mpiexec starts the ranks there, the
    rows name each rank's host and the hostfile; a one-process impl's collectives are
    unsupported; the ok rows give an alpha-beta fit per collective."""
    from harness.workloads import collectives

    hostfile = tmp_path / "hosts"
    hostfile.write_text("localhost\nlocalhost\n")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "harness", "run", "--impl", "sharded-col,numpy"),
            *("--workload", "collectives", "--quick", "--ranks", "2", "--no-report"),
            *("--hosts", str(hostfile), "--results", str(tmp_path / "results")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = pd.concat(pd.read_json(p, lines=True) for p in tmp_path.rglob("*.jsonl"))
    ranked = rows[rows.impl == "sharded-col"]
    assert (ranked.status == "ok").all() and (ranked.rel_err == 0).all(), ranked.reason
    assert all(len(h) == 2 and len(set(h)) == 1 for h in ranked.rank_hosts)
    assert set(ranked.hostfile) == {str(hostfile)} and set(ranked.hosts) == {1}
    assert set(rows[rows.impl == "numpy"].status) == {"unsupported"}
    fits = collectives.alpha_beta(rows.to_dict("records"))["sharded-col"]["P=2"]
    assert set(fits) == set(collectives.COLLECTIVES)
    assert all(f["alpha_s"] > 0 and f["points"] == 3 for f in fits.values()), fits
