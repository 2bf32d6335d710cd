"""benchmarks/network_targets.py and its contenders at tiny sizes: the plain-NumPy block step
and PyTorch's block step and conv compute what the workloads do, and the script runs.

Updates are compared without bk_D: the key bias's gradient is zero by symmetry (a shift of
every key's score leaves the softmax unchanged), so what float32 leaves of it is rounding
noise, which Adam's first steps scale to about +-lr; its update is only bounded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import network_targets
from benchmarks.c_targets import C_RUNGS
from benchmarks.plain_numpy_block import make_block_step
from harness import models
from harness.measure.gate import rel_err
from harness.models import HYPER
from harness.reference import Reference
from harness.workloads import WORKLOADS, Placed
from harness.workloads.base import optimizer_state

ROOT = Path(__file__).resolve().parent.parent
BLOCK = {"B": 2, "T": 8, "D": 16, "G": 2, "opt": "adam"}
CONV = network_targets.conv_size("2,3,5,4")
KEY_BIAS = models.BLOCK_PARAMS.index("bk_D")
STEPS = 2


def _host(workload, size):
    return WORKLOADS[workload].inputs(size, np.random.default_rng(0))


def _reference_updates(host):
    """The float64 reference's parameters after STEPS Adam steps of the block, minus before."""
    ref = Reference()
    placed = Placed(ref, host)
    params = [placed[k] for k in models.BLOCK_PARAMS]
    before = [p.copy() for p in params]
    state = optimizer_state(ref, placed, models.BLOCK_PARAMS, "adam")
    B, G, D = BLOCK["B"], BLOCK["G"], BLOCK["D"]
    for t in range(1, STEPS + 1):
        models.block_step(ref, params, placed["x_RD"], placed["dy_RD"], B, G, D, "adam", state, t)
    return [p - b for p, b in zip(params, before)]


def _assert_same_updates(updates, expected):
    lr = HYPER["adam"]["lr"]
    for i, (name, got, want) in enumerate(zip(models.BLOCK_PARAMS, updates, expected)):
        if i == KEY_BIAS:
            assert np.abs(got).max() <= STEPS * lr * 1.01, name
            continue
        err = np.linalg.norm(got - want) / np.linalg.norm(want)
        assert err <= 1e-4, f"{name}: update rel err {err:.3g}"


def test_the_plain_numpy_block_step_makes_the_reference_update():
    host = _host("transformer_block", BLOCK)
    params = [host[k][0].copy() for k in models.BLOCK_PARAMS]
    step = make_block_step(
        host["x_RD"][0], host["dy_RD"][0], params, BLOCK["B"], BLOCK["G"], HYPER["adam"]
    )
    for _ in range(STEPS):
        step()
    assert all(p.dtype == np.float32 for p in params)
    updates = [p - host[k][0] for p, k in zip(params, models.BLOCK_PARAMS)]
    _assert_same_updates(updates, _reference_updates(host))


def test_the_torch_block_step_makes_the_reference_update():
    torch = pytest.importorskip("torch", reason="PyTorch is a benchmark-only dependency")
    from benchmarks.torch_networks import make_torch_block_step

    host = _host("transformer_block", BLOCK)
    step = make_torch_block_step(torch, host, BLOCK["B"], BLOCK["G"])
    for _ in range(STEPS):
        step()
    updates = [t.detach().numpy() - host[k][0] for t, k in zip(step.params, models.BLOCK_PARAMS)]
    _assert_same_updates(updates, _reference_updates(host))


def test_the_torch_conv_is_the_reference_conv():
    torch = pytest.importorskip("torch", reason="PyTorch is a benchmark-only dependency")
    from benchmarks.torch_networks import make_torch_conv

    host = _host("conv2d", CONV)
    y_BFUW = make_torch_conv(torch, host, CONV["stride"], CONV["padding"])().numpy()
    args = (host[k][0].astype(np.float64) for k in ("x_BQYZ", "w_FQJL", "b_F"))
    y64_BFUW = Reference().conv2d(*args, stride=1, padding=1)
    assert rel_err([y_BFUW], [y64_BFUW]) <= 1e-5


def test_a_contender_unlike_the_reference_is_refused():
    from benchmarks.torch_networks import _same_as_reference

    y_RD = np.ones((3, 4))
    _same_as_reference("block's output", y_RD * (1 + 1e-6), y_RD)
    with pytest.raises(ValueError, match="does not compute the workload's block's output"):
        _same_as_reference("block's output", y_RD * 1.01, y_RD)


def test_the_script_explains_itself():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.network_targets", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--block B,T,D,G" in done.stdout and "--no-torch" in done.stdout


def test_a_tiny_run_gates_times_and_stores_every_contender(tmp_path, capsys):
    tiny = ["--block", "2,8,16,2", "--conv", "2,3,5,4", "--threads", "1"]
    timing = ["--time-per-cell", "0.01", "--rounds", "1", "--settle", "0"]
    assert network_targets.main([*tiny, *timing, "--no-torch", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "numpy / plain-NumPy time" in out and "torch.conv2d time / c time" in out
    rows = [
        json.loads(line)
        for path in tmp_path.rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    done = {(r["impl"], r["workload"]): r["status"] for r in rows}
    for name in (*C_RUNGS, "numpy"):  # a rung's row whatever its status (unavailable too)
        assert (name, "transformer_block") in done and (name, "conv2d") in done
    assert done[("plain-numpy", "transformer_block")] == "ok"
    assert done[("numpy", "conv2d")] == "ok"
    assert all(r["threads"] == 1 for r in rows)
    assert all(r["status"] != "ok" or r["t_median_s"] > 0 for r in rows)
