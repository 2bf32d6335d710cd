"""The command line: help everywhere, clear errors, and bad input that leaves results intact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli
from harness.commands import COMMANDS
from harness.results import machine, machine_state, store
from tests.conftest import XOR_RUN


def harness(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_list_shows_impls_and_workloads():
    done = harness("list")
    assert done.returncode == 0
    assert "numpy" in done.stdout and "pure_python" in done.stdout
    assert "mnist_mlp" in done.stdout and "attention" in done.stdout


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--impl", "nope"], "unknown impl 'nope': expected one of"),
        (["--workload", "nope"], "unknown workload 'nope': expected one of matmul"),
        (["--phase", "sideways"], "unknown phase 'sideways': expected one of fwd, bwd, step"),
        (["--workload", "optim", "--phase", "fwd"], "no cells match"),
        (["--budget", "-1"], "--budget: expected a positive, finite number of seconds"),
    ],
)
def test_bad_input_is_refused_clearly_and_stored_results_survive(tmp_path, args, expected):
    writer = store.RunWriter("earlier", "box", tmp_path)
    writer.append({"run_id": "earlier", "impl": "numpy", "status": "ok"})
    before = sorted(p.name for p in tmp_path.rglob("*"))
    done = harness("run", "--results", str(tmp_path), "--no-report", *args)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert len(store.load(tmp_path)) == 1


def test_a_quick_run_stores_rows_and_prints_a_summary(tmp_path):
    done = harness(
        "run",
        "--quick",
        "--impl",
        "numpy,pure_python",
        "--workload",
        "xor",
        "--results",
        str(tmp_path),
        "--no-report",
    )
    assert done.returncode == 0, done.stderr
    assert "largest size done" in done.stdout
    table = store.load(tmp_path)
    assert len(table) == 6 and set(table["status"]) == {"ok"}
    assert table["commit"].notna().all() and (table["machine"] != "").all()


@pytest.mark.parametrize("queue,warned", [(1, False), (2, True), (5, True), (None, False)])
def test_a_busy_machine_is_warned_of_before_measuring(monkeypatch, queue, warned):
    """The run queue counts the reader: 1 is this process alone; on 2 cores, one other
    thread running already takes half the machine."""
    monkeypatch.setattr(machine_state.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(machine_state, "_run_queue", lambda: queue)
    warning = machine_state.busy_warning()
    assert (warning is not None) == warned
    if warned:
        assert f"({queue - 1} threads of other work running on 2 cores)" in warning
        assert "OMP_NUM_THREADS=1" in warning


def test_the_run_queue_is_read_from_this_machine():
    if not Path("/proc/loadavg").exists():
        pytest.skip("no /proc/loadavg here")
    assert machine_state._run_queue() >= 1  # at least the reader itself
    assert machine_state.others_running(samples=2, window_s=0.01) >= 0


def test_train_and_run_print_the_warning_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        machine_state, "busy_warning", lambda: "warning: this machine is busy (test)"
    )
    assert cli.main([*XOR_RUN, "--no-report", "--results", str(tmp_path)]) == 0
    assert capsys.readouterr().err.startswith("warning: this machine is busy (test)")
    pytest.importorskip("sklearn", reason="digits needs scikit-learn (the `data` extra)")
    assert cli.main(["train", "--epochs", "1", "--in-process", "--results", str(tmp_path)]) == 0
    assert "warning: this machine is busy (test)" in capsys.readouterr().err


def test_run_keeps_the_machines_ceilings_in_the_results_folder_it_was_given(tmp_path, monkeypatch):
    from harness.results import ceilings

    measured = {
        "machine": machine.machine_name(),
        "gemm_gflops_per_s": 100.0,
        "copy_gb_per_s": 10.0,
        "gemm_n": 64,
        "copy_bytes": 1 << 20,
    }
    monkeypatch.setattr(ceilings, "measure", lambda: dict(measured))
    monkeypatch.setattr("harness.report.summary.REPORTS", tmp_path / "reports")
    assert cli.main([*XOR_RUN, "--results", str(tmp_path / "mine")]) == 0
    assert ceilings.read(machine.machine_name(), tmp_path / "mine") == measured
