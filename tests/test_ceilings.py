"""The ceilings' measurements (harness/results/ceilings.py, kernels/c/peaks.c): the C FMA and
bandwidth probes return sane rates quickly and refuse bad arguments by name; cache sizes
parse from a sysfs tree or fall back with a note; a whole hierarchy has every level and
figure, stores and loads back; no CuPy, no GPU figures."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from harness.measure import roofs
from harness.results import ceilings, ceilings_cpu, ceilings_cuda, machine
from impls import c_ext

needs_build = pytest.mark.skipif(
    c_ext.CImpl.unavailable_reason() is not None, reason=str(c_ext.CImpl.unavailable_reason())
)
KiB, MiB = 1 << 10, 1 << 20


def fake_sysfs(root, entries):
    """entries: (level, type, size, shared_cpu_list) per index, as sysfs writes them."""
    for i, (level, kind, size, shared) in enumerate(entries):
        index = root / f"index{i}"
        index.mkdir(parents=True)
        for name, text in (
            ("level", level),
            ("type", kind),
            ("size", size),
            ("shared_cpu_list", shared),
        ):
            (index / name).write_text(f"{text}\n")
    return root


def test_cache_sizes_parse_from_sysfs(tmp_path):
    root = fake_sysfs(
        tmp_path / "cache",
        [
            ("1", "Data", "48K", "0,8"),
            ("1", "Instruction", "32K", "0,8"),
            ("2", "Unified", "2048K", "0,8"),
            ("3", "Unified", "36M", "0-15"),
        ],
    )
    assert roofs.caches(root) == (
        {"L1": (48 * KiB, 2), "L2": (2 * MiB, 2), "L3": (36 * MiB, 16)},
        str(root),
    )


def test_an_unreadable_index_is_skipped_and_an_unreadable_tree_falls_back(tmp_path, monkeypatch):
    root = fake_sysfs(tmp_path / "cache", [("1", "Data", "32K", "0"), ("2", "Unified", "x", "0")])
    assert roofs.caches(root)[0] == {"L1": (32 * KiB, 1)}
    found, source = roofs.caches(tmp_path / "none")
    assert "unreadable" in source and {"L1", "L2"} <= set(found)
    monkeypatch.setattr(roofs.os, "sysconf_names", {}, raising=False)
    assert roofs.caches(tmp_path / "none") == (
        roofs.DEFAULT_CACHES,
        f"defaults: {tmp_path / 'none'} and sysconf unreadable",
    )


@needs_build
@pytest.mark.parametrize("threads", [1, 2])
def test_the_c_probes_return_sane_rates_quickly(threads):
    """One thread: rates no real core is outside of. A team: its rounds wait for every member,
    and on a shared 2-core machine a descheduled one slows a round by a time slice, so only
    that the rate is a positive finite number (the ceilings take the best of many rounds)."""
    import nnladder_c

    floor_flops, floor_bytes = (1e9, 1e8) if threads == 1 else (1.0, 1.0)
    for isa in nnladder_c.peak_isas():
        start = time.perf_counter()
        flops, used = nnladder_c.peak("fma", 0, threads, 0.02, isa)
        assert used == isa and floor_flops < flops < 1e14  # 1 GFLOP/s to 100 TFLOP/s
        for kind in ("read", "update"):
            rate, _ = nnladder_c.peak(kind, 64 * KiB, threads, 0.02, isa)
            assert floor_bytes < rate < 1e14, (kind, isa, rate)
        assert time.perf_counter() - start < 5.0
    assert nnladder_c.peak("fma", 0, 1, 0.01)[1] == nnladder_c.peak_isas()[0]  # auto: widest
    assert nnladder_c.peak("read", 1, 1, 0.01)[0] > 1e8  # rounded up to a whole KiB


@needs_build
@pytest.mark.parametrize(
    "args, message",
    [
        (("sum", 64, 1, 0.01), "kind must be 'fma', 'read' or 'update', got 'sum'"),
        (("read", 0, 1, 0.01), "bytes must be >= 1 for 'read', got 0"),
        (("fma", 0, 0, 0.01), "threads must be >= 1, got 0"),
        (("fma", 0, 1, float("nan")), r"seconds must be in \(0, 60\], got nan"),
        (("fma", 0, 1, 0.01, "neon"), "isa must be 'auto' or one this CPU runs"),
    ],
)
def test_the_c_probes_name_a_bad_argument(args, message):
    import nnladder_c

    with pytest.raises(ValueError, match=message):
        nnladder_c.peak(*args)


@pytest.fixture
def small(monkeypatch):
    """A measurement in a second or two: small caches, GEMM and copy; short probes."""
    monkeypatch.setattr(ceilings_cpu, "GEMM_N", 128)
    monkeypatch.setattr(ceilings_cpu, "COPY_BYTES", 1 * MiB)
    monkeypatch.setattr(ceilings_cpu, "PROBE_S", 0.01)
    monkeypatch.setattr(
        roofs,
        "caches",
        lambda: ({"L1": (32 * KiB, 1), "L2": (256 * KiB, 1), "L3": (1 * MiB, 0)}, "test"),
    )


@needs_build
def test_a_measured_hierarchy_is_whole_ordered_and_stored(tmp_path, small):
    start = time.perf_counter()
    measured = ceilings.measure()
    assert time.perf_counter() - start < 10
    assert measured["machine"] == machine.machine_name() and roofs.whole(measured)
    assert [lv["name"] for lv in measured["levels"]] == ["L1", "L2", "L3", "DRAM"]
    dram = measured["levels"][-1]
    assert dram["bytes"] is None and dram["working_set_bytes"]["one_core"] >= 4 * MiB
    # a thread's buffer: half of L1, then the geometric mean of its share of a level and of
    # the one before; the L3 is shared by all the threads of the team
    assert [lv["working_set_bytes"]["one_core"] for lv in measured["levels"][:3]] == [
        16 * KiB,
        int(math.sqrt(32 * KiB * 256 * KiB)),
        512 * KiB,
    ]
    assert measured["levels"][2]["working_set_bytes"]["all_cores"] == int(
        math.sqrt(256 * KiB * (MiB // measured["cores"]))
    )
    for scope in roofs.SCOPES:
        found = roofs.levels(measured, "cpu", scope)
        assert [lv["bytes"] for lv in found] == sorted(lv["bytes"] for lv in found)
        assert all(a["gb_per_s"] >= b["gb_per_s"] for a, b in zip(found, found[1:]))
        assert all(0.1 < lv["gb_per_s"] < 1e5 for lv in found)
    assert len(roofs.compute_roofs(measured)) == 4
    ceilings.write(measured, tmp_path)
    assert ceilings.read(machine.machine_name(), tmp_path) == measured


def test_without_the_c_extension_the_hierarchy_says_why(monkeypatch, small):
    monkeypatch.setitem(sys.modules, "nnladder_c", None)  # import raises ImportError
    measured = ceilings.measure()
    assert "levels" not in measured and "not importable" in measured["hierarchy_note"]
    assert roofs.whole(measured) and roofs.compute_roofs(measured) == []


def test_without_cupy_there_are_no_gpu_figures(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert ceilings_cuda.measure() == {}


class FakeCupy:
    """What ceilings_cuda._hierarchy calls of CuPy, on the host: a GPU of 132 SMs, a 4 MiB L2 and
    64 MiB free (so the buffers stay small), whose kernels return at once and are recorded."""

    float32 = np.float32
    launches: list = []

    class cuda:  # CuPy's names, CUDA's attribute numbers
        class runtime:
            cudaDevAttrMultiProcessorCount, cudaDevAttrL2CacheSize = 16, 38
            cudaDevAttrClockRate = 13

            @staticmethod
            def deviceGetAttribute(attribute, device):
                return {16: 132, 38: 4 * MiB, 13: 1_980_000}[attribute]

            @staticmethod
            def memGetInfo():
                return 64 * MiB, 80 << 30

        class Device:
            id = 0

    class RawModule:
        def __init__(self, code):
            assert "fma_loop" in code and "read_loop" in code

        def get_function(self, name):
            return lambda grid, block, args: FakeCupy.launches.append((name, grid, block, args))

    empty, ones = staticmethod(np.empty), staticmethod(np.ones)


def test_the_gpu_hierarchy_launches_its_probes_with_typed_arguments():
    FakeCupy.launches.clear()
    found = ceilings_cuda._hierarchy(FakeCupy, lambda: None)
    assert {lv["name"]: lv["bytes"] for lv in found["cuda_levels"]} == {
        "L2": 4 * MiB,
        "HBM": 80 << 30,
    }
    assert [lv["working_set_bytes"] for lv in found["cuda_levels"]] == [MiB, 16 * MiB]
    assert found["cuda_sm_clock_mhz"] == 1980.0 and found["cuda_sms"] == 132
    assert roofs.whole({**found, "cuda_gemm_gflops_per_s": 1.0, "cuda_gemm_n": 8192})
    for name, grid, block, args in FakeCupy.launches:
        assert grid == (8 * 132,) and block == (256,)
        if name == "fma_loop":
            assert [type(a) for a in args[1:]] == [np.int32, np.float32, np.float32]
        else:
            buf, n4, passes, _ = args
            assert (type(n4), type(passes)) == (np.int64, np.int32) and n4 * 4 == buf.size


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (the CUDA toolkit) is not installed")
def test_the_gpu_probes_compile_for_sm90_without_spills(tmp_path):
    source = tmp_path / "probes.cu"
    source.write_text(ceilings_cuda.CUDA_PROBES)
    done = subprocess.run(
        [
            shutil.which("nvcc"),
            "--cubin",
            "-arch=sm_90",
            "-Xptxas",
            "-v",
            "-o",
            str(tmp_path / "probes.cubin"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Compiling entry function") == 2
    spills = re.findall(r"(\d+) bytes spill (?:stores|loads)", done.stderr)
    assert spills and not any(int(n) for n in spills), done.stderr
