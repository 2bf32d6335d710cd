"""A cell's life survives what users and native code do to it: a worker that never exits, a
launcher that fails at once, a constructor that raises, a wrong cell, Ctrl-C and SIGTERM, and
values on the command line that make no sense. Each case through the fault impls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import cli, registry
from harness.execute import child, grid, isolate, lifecycle
from harness.measure.budget import MAX_SLOPE, Budget
from harness.results import store

ROOT = Path(__file__).resolve().parent.parent
QUICK = lifecycle.Options(budget_s=60, time_per_cell_s=0.01, timeout_s=20, ranks=1)


def run_isolated(impls, options=QUICK, workloads=("matmul",)):
    cells = grid.plan(impls, list(workloads), ["fwd"], quick=True)
    rows = []
    isolate.run_all(cells, options, rows.append)
    assert len(rows) == len(cells)
    return rows


def test_a_worker_that_never_exits_is_ended_after_its_last_cell(faults):
    start = time.monotonic()
    rows = run_isolated(["fault-linger"])
    assert {r["status"] for r in rows} == {"ok"}
    assert time.monotonic() - start < QUICK.timeout_s  # not the timeout: the grace period


def test_a_launcher_that_fails_at_once_costs_its_impl_only(faults):
    rows = run_isolated(["fault-launch", "numpy"])
    failed = [r for r in rows if r["impl"] == "fault-launch"]
    assert all(
        r["status"] == "error"
        and "exited with code 3" in r["reason"]
        and "before its first cell" in r["reason"]
        for r in failed
    )
    assert {r["status"] for r in rows if r["impl"] == "numpy"} == {"ok"}


def test_a_constructor_that_raises_is_an_error_row_per_cell(faults):
    rows = run_isolated(["fault-init", "numpy"])
    failed = [r for r in rows if r["impl"] == "fault-init"]
    assert all(r["status"] == "error" and "no device left" in r["reason"] for r in failed)


def test_a_wrong_cell_does_not_teach_the_budget(faults):
    """The 16^3 cell is wrong after a 0.5 s call: a budget that learned that call (16 kFLOP/s)
    would predict 64^3 at ~290 s and 256^3 at hours, far over 60 s, and skip them; a busy
    machine's slow first calls stay far below it."""
    impl, budget = registry.create("fault-wrong-slow"), Budget(60.0)
    cells = grid.plan(["fault-wrong-slow"], ["matmul"], ["fwd"], quick=True)
    rows = [lifecycle.run_cell(impl, c, budget, lifecycle.Timed(0.01)) for c in cells]
    assert rows[0]["status"] == "wrong"
    assert {r["status"] for r in rows[1:]} == {"ok"}


def test_a_fitted_slope_is_bounded_by_what_the_work_can_explain():
    budget = Budget(1.0)
    budget.record("matmul", "fwd", 10**6, 1e-6)
    budget.record("matmul", "fwd", 2 * 10**6, 1e-4)  # 100x the time for 2x the work: noise
    predicted = budget.predict("matmul", "fwd", 4 * 10**6)
    assert predicted == pytest.approx(1e-4 * 2**MAX_SLOPE)


def test_child_timeout_and_finish_never_wait_for_ever():
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", "--"]
    with child.Child("harness.execute.worker", {}, prefix=sleeper) as worker:
        with pytest.raises(child.ChildTimeout):
            worker.next(0.2)
        start = time.monotonic()
        worker.finish(grace_s=0.2)
        assert time.monotonic() - start < 5 and worker.proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_ends_its_worker_and_keeps_its_finished_cells(tmp_path, signum, code):
    pidfile = tmp_path / "hanging.pid"
    env = {
        **os.environ,
        "NNLADDER_IMPLS": "tests.fault_impls",
        "NNLADDER_FAULT_PIDFILE": str(pidfile),
        "NNLADDER_MACHINE": "test-machine",
    }
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--impl",
            "numpy,fault-hang",
            "--workload",
            "matmul",
            "--phase",
            "fwd",
            "--quick",
            "--no-report",
            "--time-per-cell",
            "0.01",
            "--results",
            str(tmp_path / "results"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    hanging = int(pidfile.read_text())
    run.send_signal(signum)
    _, err = run.communicate(timeout=30)
    assert run.returncode == code, err
    assert "Traceback" not in err and f"stopped by {signum.name}" in err
    assert "cells done, kept in" in err
    with pytest.raises(ProcessLookupError):
        os.kill(hanging, 0)
    table = store.load(tmp_path / "results")
    numpy_rows = table[table["impl"] == "numpy"]
    assert len(numpy_rows) == len(grid.plan(["numpy"], ["matmul"], ["fwd"], quick=True))
    assert set(numpy_rows["status"]) <= {"ok", "over_budget"}
    assert list(table.loc[table["impl"] == "fault-hang", "size"]) == ["M=16 K=16 N=16"]


@pytest.mark.parametrize(
    "argv,says",
    [
        (["run", "--timeout", "inf"], "positive, finite number of seconds"),
        (["run", "--time-per-cell", "nan"], "positive, finite number of seconds"),
        (["run", "--budget", "-1"], "positive, finite number of seconds"),
    ],
)
def test_nonsense_seconds_are_refused_by_the_parser(argv, says, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2 and says in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,says",
    [
        (["run", "--ranks", "1000", "--impl", "sharded-col"], "--oversubscribe"),
        (["run", "--ranks", "0"], "--ranks must be 1 or more"),
        (["run", "--impl", ""], "names nothing"),
        (["run", "--impl", ",", "--workload", "xor"], "names nothing"),
        (["train", "--impl", ""], "names nothing"),
    ],
)
def test_nonsense_values_get_one_clear_line(argv, says, capsys, tmp_path):
    assert cli.main([*argv, "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and "Traceback" not in err
    assert not list(tmp_path.glob("*/*.jsonl"))  # refused before anything was written
