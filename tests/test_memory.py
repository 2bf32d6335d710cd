"""Peak memory (harness/measure/memory.py): the resident working set sees what native code
mallocs, which tracemalloc does not; a C product reads its operands and result; no /proc,
or a refused reset, gives None with the reason, never a number."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import registry
from harness.execute import grid
from harness.execute.check import check
from harness.measure import memory
from harness.results import store
from impls.numpy_impl import NumpyImpl

MiB = 1 << 20
NATIVE_BYTES = 64 * MiB
# Two readings of the kernel's resident counters, each off by up to 32 pages a CPU.
SLACK = 2 * 32 * 4096 * (os.cpu_count() or 1)
ROOT = Path(__file__).resolve().parent.parent
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
pytestmark = pytest.mark.skipif(
    bool(memory.rss_unavailable_reason()), reason=f"peak RSS: {memory.rss_unavailable_reason()}"
)


class NativeMallocImpl(NumpyImpl):
    """numpy's matmul, plus 64 MiB that C mallocs, touches and frees inside each call, as a
    native library's workspace would be (joined through NNLADDER_IMPLS=tests.test_memory)."""

    name = "test-native-malloc"

    def matmul(self, a_MK, b_KN):
        workspace = libc.malloc(NATIVE_BYTES)
        ctypes.memset(workspace, 1, NATIVE_BYTES)  # resident only once touched
        libc.free(workspace)
        return super().matmul(a_MK, b_KN)


@pytest.fixture
def native(monkeypatch):
    monkeypatch.setenv("NNLADDER_IMPLS", "tests.test_memory")
    registry._discover.cache_clear()
    yield registry.create("test-native-malloc")
    registry._discover.cache_clear()


def matmul_cell(impl: str, n: int) -> grid.Cell:
    return grid.Cell(impl, "matmul", (("M", n), ("K", n), ("N", n)), "fwd")


def test_native_mallocs_count_in_the_resident_peak_and_not_in_tracemallocs(native):
    row, fn = check(native, matmul_cell("test-native-malloc", 64), None)
    assert row["status"] == "ok"
    assert NATIVE_BYTES - SLACK <= row["peak_rss_bytes"] < NATIVE_BYTES + 4 * MiB
    assert row["peak_mem_bytes"] < MiB  # tracemalloc sees the 16 KiB result, not the 64 MiB


@pytest.mark.parametrize("n", [256, 512])
def test_a_c_product_reads_its_operands_and_result(n):
    """The forward keeps a_MK and b_KN (dc_MN, placed for the backward, is dropped) and writes
    c_MN: 3 n^2 floats, with little room for anything else."""
    reason = registry.unavailable_reason("c-naive")
    if reason:
        pytest.skip(f"c-naive: {reason}")
    row, _ = check(registry.create("c-naive"), matmul_cell("c-naive", n), None)
    working_set = 3 * n * n * 4
    assert working_set - SLACK <= row["peak_rss_bytes"] < working_set + MiB + SLACK


def test_without_proc_the_peak_is_none_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "PROC", tmp_path)  # no status file
    memory.rss_unavailable_reason.cache_clear()
    try:
        assert memory.peak_rss_bytes(lambda: None, 0) == {
            "peak_rss_bytes": None,
            "peak_rss_note": f"no VmHWM in {tmp_path / 'status'} (not Linux?)",
        }
        assert memory.growth(lambda: 1) == (1, None)
    finally:
        memory.rss_unavailable_reason.cache_clear()


def test_a_refused_reset_is_none_with_the_reason(monkeypatch, tmp_path):
    (tmp_path / "status").write_text("VmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")
    (tmp_path / "clear_refs").mkdir()  # writing it fails as a sandbox's refusal would
    monkeypatch.setattr(memory, "PROC", tmp_path)
    memory.rss_unavailable_reason.cache_clear()
    try:
        columns = memory.peak_rss_bytes(lambda: None, 0)
    finally:
        memory.rss_unavailable_reason.cache_clear()
    assert columns["peak_rss_bytes"] is None
    assert columns["peak_rss_note"].startswith(f"{tmp_path / 'clear_refs'} refused the reset")


def test_sharded_ranks_report_each_peak_their_max_and_sum(tmp_path):
    reason = registry.unavailable_reason("sharded-col")
    if reason:
        pytest.skip(f"sharded-col: {reason}")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--impl",
            "sharded-col",
            "--workload",
            "matmul",
            "--phase",
            "fwd",
            "--quick",
            "--ranks",
            "2",
            "--time-per-cell",
            "0.01",
            "--no-report",
            "--budget",
            "60",
            "--results",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = store.load(tmp_path)
    ok = rows[rows.status == "ok"]
    assert len(ok) == len(rows) > 0, rows[["size", "status", "reason"]]
    for _, row in ok.iterrows():
        assert len(row.rank_peak_rss_bytes) == 2
        assert row.peak_rss_bytes == max(row.rank_peak_rss_bytes) > 0
        assert row.peak_rss_sum_bytes == sum(row.rank_peak_rss_bytes)
