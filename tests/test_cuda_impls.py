"""The CUDA impls: unavailable with a reason where there is no GPU, right and timed where there is.

Without CuPy, a driver or a GPU (CI), the impls must still be registered, say why they cannot
run, and break nothing else; the GPU tests below skip with that reason. On a GPU they run
every workload's quick sizes through the runner (the correctness gate, device peak memory,
CUDA-event timing) and every product rung on odd sizes. The kernels' indexing is tested
without a GPU in test_cuda_emu.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import registry
from harness.contract import OPS, Impl
from harness.execute import grid, lifecycle
from harness.execute.check import check
from harness.measure.gate import rel_err
from harness.measure.timing import Stats
from harness.reference import Reference
from impls._cuda_base import cuda_unavailable_reason
from tests import op_cases

CUDA_IMPLS = {"cuda-naive": 3, "cuda-tiled": 4, "cuda-cublas": 4}
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
        "import sys, impls.cuda_naive, impls.cuda_tiled, impls.cuda_cublas, "
        "harness.registry as r; r.names(); print('cupy' in sys.modules)"
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
    for kernel in ("tiled", "blocktile", "vectorized", "warptile"):
        impl = registry.get_class("cuda-tiled")(kernel=kernel)
        a_MK = impl.put(rng.standard_normal((37, 44)).astype(np.float32), "activation")
        b_KN = impl.put(rng.standard_normal((44, 132)).astype(np.float32), "weight")
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
def test_cuda_event_timing_and_device_peak():
    from harness.measure import timing_cuda

    impl = registry.create("cuda-tiled")
    a = impl.put(np.ones((512, 512), np.float32), "activation")
    stats = timing_cuda.measure(lambda: impl.matmul(a, a), impl.sync, time_per_cell_s=0.05)
    assert isinstance(stats, Stats) and stats.rounds >= 5 and stats.min > 0
    assert impl.device_peak_bytes(lambda: impl.matmul(a, a)) >= 512 * 512 * 4
