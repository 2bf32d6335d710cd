"""The CUDA impls: unavailable with a reason where there is no GPU, right and timed where there is.

Without CuPy, a driver or a GPU (CI), the impls must still be registered, say why they cannot
run, and break nothing else; the GPU tests below skip with that reason. Rung 05's tiles are
checked, stored and read back without a GPU too. On a GPU they run every workload's quick
sizes through the runner (the correctness gate, device peak memory, CUDA-event timing),
every product rung and every tiling of the warptile sweep on odd sizes, and a product in
each GPU timing mode. The kernels' indexing is tested without a GPU in test_cuda_emu.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from harness import registry
from harness.contract import OPS, Impl
from harness.execute import grid, lifecycle
from harness.execute.check import check
from harness.measure import gpu_options
from harness.measure.gate import rel_err
from harness.measure.timing import Stats
from harness.reference import Reference
from impls import _cuda_base, _cuda_warptile, cuda_tiled
from impls._cuda_base import cuda_unavailable_reason
from impls._cuda_warptile import DEFAULT, GRID, WarptileConfig
from tests import op_cases

CUDA_IMPLS = {"cuda-uncoalesced": 3, "cuda-naive": 3, "cuda-tiled": 4, "cuda-cublas": 4}
REASON = cuda_unavailable_reason()
needs_gpu = pytest.mark.skipif(REASON is not None, reason=f"no GPU to run on: {REASON}")


def test_cuda_impls_are_registered_as_cuda_rungs():
    for name, rung in CUDA_IMPLS.items():
        cls = registry.get_class(name)
        assert (cls.device, cls.rung) == ("cuda", rung)


def test_cuda_impls_define_every_contract_op():
    for name in CUDA_IMPLS:
        cls = registry.get_class(name)
        missing = [op for op in OPS if getattr(cls, op) is getattr(Impl, op)]
        assert not missing, f"{name} lacks {missing}"


def test_importing_the_cuda_impls_does_not_import_cupy():
    code = (
        "import sys, impls.cuda_uncoalesced, impls.cuda_naive, impls.cuda_tiled, "
        "impls.cuda_cublas, harness.registry as r; r.names(); print('cupy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.skipif(REASON is None, reason="a GPU is available here: nothing to refuse")
def test_without_a_gpu_each_impl_says_why_and_nothing_else_fails():
    for name in CUDA_IMPLS:
        assert registry.unavailable_reason(name) == REASON
        with pytest.raises(RuntimeError, match="unavailable here"):
            registry.create(name)
    cells = grid.plan(impls=list(CUDA_IMPLS), workloads=["matmul"], quick=True)
    rows = [grid.failed(c, "unavailable", REASON) for c in cells]
    assert {row["status"] for row in rows} == {"unavailable"}
    assert registry.create("numpy").name == "numpy"  # the CPU rungs are untouched


def test_cublas_row_refuses_tf32(monkeypatch):
    monkeypatch.setenv("CUPY_TF32", "1")
    assert "TF32" in registry.get_class("cuda-cublas").unavailable_reason()


# ---- rung 05's tiles, without a GPU ---------------------------------------------------------


def test_a_tiling_that_breaks_a_kernel_rule_is_refused_by_name():
    assert all(tiles.checked() is tiles for tiles in GRID) and len(set(GRID)) == len(GRID)
    with pytest.raises(ValueError, match=r"\(wm / tm\) x \(wn / wniter / tn\) == 32 lanes"):
        WarptileConfig(tm=4).checked()
    with pytest.raises(ValueError, match=r"within 48 KiB"):
        WarptileConfig(bk=32).checked()
    with pytest.raises(ValueError, match=r"exactly the fields"):
        WarptileConfig.parse({"bm": 128})
    assert DEFAULT.defines[0] == "-DWT_BM=128" and len(DEFAULT.defines) == 8


class FakeBackend:
    """What CudaTiled asks of CupyBackend when it is made: the files and their -D options."""

    xp = np

    def __init__(self, files, defines):
        self.files, self.defines = files, defines


def test_the_tiled_rung_builds_with_the_tiles_stored_for_its_gpu(tmp_path, monkeypatch):
    choices = tmp_path / "warptile.json"
    monkeypatch.setattr(_cuda_warptile, "CHOICES", choices)
    monkeypatch.setattr(_cuda_base, "CupyBackend", FakeBackend)
    monkeypatch.setattr(cuda_tiled, "gpu_name", lambda: "NVIDIA H200")
    assert cuda_tiled.CudaTiled().warptile == DEFAULT  # nothing stored yet
    _cuda_warptile.record("NVIDIA H100 80GB HBM3", GRID[3], {"gflops_per_s": 1.0})
    _cuda_warptile.record("NVIDIA H200", GRID[2], {"gflops_per_s": 2.0})
    impl = cuda_tiled.CudaTiled(kernel="warptile")
    assert impl.warptile == GRID[2] and impl.backend.defines == {"05_warptile.cu": GRID[2].defines}
    assert impl.info() == {
        "kernel": "warptile",
        "gemm_rung": "05_warptile",
        "warptile": GRID[2].label,
    }
    assert set(json.loads(choices.read_text())) == {"NVIDIA H100 80GB HBM3", "NVIDIA H200"}
    assert cuda_tiled.CudaTiled(warptile=GRID[5]).warptile == GRID[5]  # asked for: no lookup
    assert cuda_tiled.CudaTiled(backend=types.SimpleNamespace(xp=np)).warptile == DEFAULT
    assert cuda_tiled.CudaTiled().info()["gemm_rung"] is None  # best per shape: no one rung
    choices.write_text('{"NVIDIA H200": {"config": {"bm": 128}}}')
    with pytest.raises(ValueError, match=r"warptile.json: expected \{GPU name"):
        cuda_tiled.CudaTiled()


class NumpyTiled:
    """A stand-in for cuda-tiled in the sweep: GRID[1] fails to build, GRID[2] is wrong."""

    device = "cuda"

    def __init__(self, kernel, warptile):
        if warptile == GRID[1]:
            raise RuntimeError("NVRTC: compilation failed")
        self.warptile = warptile

    def put(self, x, role):
        return x

    def get(self, x):
        return x

    def bmm(self, a, b):
        return a @ b + (1.0 if self.warptile == GRID[2] else 0.0)


def test_the_sweep_gates_every_tiling_before_timing_and_stores_the_fastest(tmp_path, monkeypatch):
    from benchmarks import warptile_sweep

    speeds = {tiles: 1000.0 + i for i, tiles in enumerate(GRID)}  # the last is the fastest
    timed = []

    def run_cell(impl, cell, budget, measurement):
        timed.append(impl.warptile)
        return {**grid.describe(cell), "status": "ok", "warptile": impl.warptile.label,
                "gflops_per_s": speeds[impl.warptile], "t_median_s": 1e-3}  # fmt: skip

    monkeypatch.setattr(registry, "unavailable_reason", lambda name: None)
    monkeypatch.setattr(registry, "get_class", lambda name: NumpyTiled)
    monkeypatch.setattr(warptile_sweep.lifecycle, "run_cell", run_cell)
    monkeypatch.setattr(_cuda_base, "gpu_name", lambda: "NVIDIA H200")
    monkeypatch.setenv(gpu_options.MODE_VAR, "events")  # put back after the test
    choices = tmp_path / "warptile.json"
    assert warptile_sweep.main(["--results", str(tmp_path), "--choices", str(choices)]) == 0
    assert timed == [t for t in GRID if t not in GRID[1:3]]  # only the right ones are timed
    stored = json.loads(choices.read_text())["NVIDIA H200"]
    assert WarptileConfig.parse(stored["config"]) == GRID[-1]
    assert stored["tried"][GRID[1].label] == "error" and stored["tried"][GRID[2].label] == "wrong"
    assert _cuda_warptile.chosen("NVIDIA H200", choices) == GRID[-1]


# ---- on a GPU ------------------------------------------------------------------------------


def exercise_every_kernel() -> None:
    """Every kernel at least once, on small odd sizes: what compute-sanitizer watches below."""
    import cupy

    # Without the pool every array is its own cudaMalloc, so memcheck sees its true end: a
    # pooled array sits inside a larger block, where a read past its end goes unreported.
    cupy.cuda.set_allocator(None)
    workloads = ["xor", "attention", "optim", "pointwise", "layernorm", "embedding", "cnn"]
    for name in CUDA_IMPLS:
        impl = registry.create(name)
        for cell in grid.plan(impls=[name], workloads=workloads, quick=True):
            row, _ = check(impl, cell, budget=None)
            assert row["status"] == "ok", f"{cell.key()}: {row['reason']}"
        # every op once at an odd shape: kernels no workload above reaches (transpose, strides)
        for op in OPS:
            for case in op_cases.make(op, np.random.default_rng(1), (13, 5, 33)):
                op_cases.run(impl, op, case)
    rng = np.random.default_rng(0)
    tilings = [("warptile", tiles) for tiles in GRID]  # every tiling the sweep may choose
    for kernel, tiles in [("tiled", None), ("blocktile", None), ("vectorized", None), *tilings]:
        impl = registry.get_class("cuda-tiled")(kernel=kernel, warptile=tiles)
        a_MK = impl.put(rng.standard_normal((37, 44)).astype(np.float32), "activation")
        b_KN = impl.put(rng.standard_normal((44, 260)).astype(np.float32), "weight")
        impl.matmul(a_MK, b_KN)
    impl.sync()


@needs_gpu
@pytest.mark.skipif(
    shutil.which("compute-sanitizer") is None,
    reason="compute-sanitizer (CUDA toolkit) is not installed",
)
@pytest.mark.parametrize("tool", ["memcheck", "racecheck"])
def test_compute_sanitizer_finds_nothing(tool):
    code = "import tests.test_cuda_impls as t; t.exercise_every_kernel()"
    done = subprocess.run(
        ["compute-sanitizer", f"--tool={tool}", "--error-exitcode=9", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


@needs_gpu
@pytest.mark.parametrize("name", list(CUDA_IMPLS))
def test_every_quick_cell_passes_the_gate_and_is_timed(name):
    impl = registry.create(name)
    for cell in grid.plan(impls=[name], quick=True):
        row = lifecycle.run_cell(impl, cell, None, lifecycle.Timed(0.02))
        assert row["status"] == "ok", f"{cell.key()}: {row['reason']}"
        assert row["t_median_s"] > 0 and row["rounds"] >= 5
        assert row["peak_mem_bytes"] >= 0


@needs_gpu
@pytest.mark.parametrize("kernel", ["tiled", "blocktile", "vectorized", "warptile"])
def test_every_tiled_rung_matches_reference_on_odd_and_large_sizes(kernel):
    impl, ref = registry.get_class("cuda-tiled")(kernel=kernel), Reference()
    rng = np.random.default_rng(0)
    # The float4 rungs take K and N multiples of 4; the others any odd size.
    sizes = (
        [(127, 132, 252), (1000, 1000, 1000)]
        if kernel in ("vectorized", "warptile")
        else [(127, 129, 255), (1000, 999, 1001)]
    )
    for M, K, N in sizes:
        a_MK = rng.standard_normal((M, K)).astype(np.float32)
        b_KN = rng.standard_normal((K, N)).astype(np.float32)
        c_MN = impl.get(impl.matmul(impl.put(a_MK, "activation"), impl.put(b_KN, "weight")))
        assert rel_err([c_MN], [ref.matmul(a_MK, b_KN)]) < 1e-5, (kernel, M, K, N)


@needs_gpu
@pytest.mark.parametrize("tiles", GRID, ids=lambda tiles: tiles.label)
def test_every_tiling_of_the_warptile_sweep_matches_reference(tiles):
    impl, ref = registry.get_class("cuda-tiled")(kernel="warptile", warptile=tiles), Reference()
    rng = np.random.default_rng(1)
    for M, K, N in [(127, 132, 252), (300, 516, 1028)]:
        a_MK = rng.standard_normal((M, K)).astype(np.float32)
        b_KN = rng.standard_normal((K, N)).astype(np.float32)
        c_MN = impl.get(impl.matmul(impl.put(a_MK, "activation"), impl.put(b_KN, "weight")))
        assert rel_err([c_MN], [ref.matmul(a_MK, b_KN)]) < 1e-5, (tiles.label, M, K, N)


@needs_gpu
@pytest.mark.parametrize("mode", ["events", "graph", "kernel"])
def test_each_gpu_timing_mode_times_a_product_and_says_which(mode):
    from harness.measure import gpu_options, timing_cuda

    if mode == "kernel" and (reason := gpu_options.kernel_timing_unavailable()):
        pytest.skip(reason)
    impl = registry.create("cuda-tiled")
    a = impl.put(np.ones((1024, 1024), np.float32), "activation")
    stats = timing_cuda.measure(lambda: impl.matmul(a, a), impl.sync, 0.05, mode=mode)
    row = stats.as_dict()
    assert row["gpu_timing"] == mode and stats.rounds >= 5 and stats.min > 0
    if mode == "kernel":  # events minus kernels: the sanitizers beside it may make it < 0
        assert np.isfinite(row["launch_overhead_s"])


@needs_gpu
def test_a_step_that_reads_its_loss_on_the_host_is_timed_by_events_in_graph_mode():
    from harness.measure import timing_cuda

    impl = registry.create("cuda-tiled")
    cell = grid.plan(impls=["cuda-tiled"], workloads=["mnist_mlp"], phases=["step"], quick=True)[0]
    _, fn = check(impl, cell, budget=None)
    row = timing_cuda.measure(fn, impl.sync, 0.05, mode="graph").as_dict()
    assert row["gpu_timing"] == "events" and "graph capture failed" in row["gpu_timing_note"]


@needs_gpu
def test_cuda_event_timing_and_device_peak():
    from harness.measure import timing_cuda

    impl = registry.create("cuda-tiled")
    a = impl.put(np.ones((512, 512), np.float32), "activation")
    stats = timing_cuda.measure(lambda: impl.matmul(a, a), impl.sync, time_per_cell_s=0.05)
    assert isinstance(stats, Stats) and stats.rounds >= 5 and stats.min > 0
    assert impl.device_peak_bytes(lambda: impl.matmul(a, a)) >= 512 * 512 * 4
