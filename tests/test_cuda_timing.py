"""The GPU timing protocols (harness/measure/timing_cuda.py), run against a stand-in for CuPy,
and the options that choose them (harness/measure/gpu_options.py: --gpu-timing, --profile).

The stand-in keeps a clock that only calls advance, events that read it when recorded, a
stream whose capture records calls instead of running them and a graph that replays them,
and a log of what happened in what order: so each protocol (warm-up, a repeat count that
fills the budget, an L2 flush before every timed call or replay, one sample per call) is
tested without a GPU, and so is the choice between them. The profiler's kernel records are
made up; ncu is a fake command. On a GPU, test_cuda_impls.py times real kernels with the
real CuPy, in every mode.
"""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
import types

import pytest

import harness
from harness import cli, registry
from harness.execute import grid
from harness.measure import gpu_options

L2_BYTES = 50 << 20


@pytest.fixture
def fake_cupy(monkeypatch):
    log, clock, capture = [], {"ms": 0.0}, []  # capture: the calls of a capture under way

    class Event:
        def record(self, stream=None):
            self.ms = clock["ms"]
            log.append("record")

        def synchronize(self):
            pass

    class Buffer:
        def __init__(self, nbytes):
            self.nbytes = nbytes

        def fill(self, value):
            log.append(("flush", self.nbytes))

    class Graph:
        def __init__(self, calls_ms):
            self.calls_ms = calls_ms

        def launch(self, stream):
            clock["ms"] += sum(self.calls_ms)
            log.append(("replay", len(self.calls_ms)))

    class Stream:
        def __init__(self, non_blocking=False):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def synchronize(self):
            pass

        def begin_capture(self):
            capture.append([])

        def end_capture(self):
            return Graph(capture.pop())

    cupy = types.ModuleType("cupy")
    cupy.uint8 = "uint8"
    cupy.empty = lambda n, dtype: Buffer(n)
    cupy.cuda = types.SimpleNamespace(
        Event=Event,
        Stream=Stream,
        get_elapsed_time=lambda start, end: end.ms - start.ms,
        Device=lambda: types.SimpleNamespace(attributes={"L2CacheSize": L2_BYTES}),
    )
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    # A fresh import on the stand-in; monkeypatch puts back whatever was there before.
    monkeypatch.delitem(sys.modules, "harness.measure.timing_cuda", raising=False)
    monkeypatch.delattr(harness, "timing_cuda", raising=False)
    timing_cuda = importlib.import_module("harness.measure.timing_cuda")

    def call_taking(ms, syncs=False):
        """A call of ms on the GPU; one that syncs with the host cannot be captured."""

        def fn():
            if capture and syncs:
                raise RuntimeError("operation not permitted when stream is capturing")
            if capture:
                capture[-1].append(ms)
                return
            clock["ms"] += ms
            log.append("fn")

        return fn

    yield timing_cuda, call_taking, log
    # not left for code that wants the real one
    sys.modules.pop("harness.measure.timing_cuda", None)
    vars(harness).pop("timing_cuda", None)


def test_repeats_fill_the_budget_with_a_flush_before_every_timed_call(fake_cupy):
    timing_cuda, call_taking, log = fake_cupy
    stats = timing_cuda.measure(call_taking(2.0), sync=lambda: None, time_per_cell_s=0.1)
    assert stats.rounds == 50 and stats.loops == 1  # 0.1 s of 2 ms calls
    assert stats.samples_s == pytest.approx((0.002,) * 50)
    timed = log[log.index(("flush", 2 * L2_BYTES)) :]
    assert timed == [("flush", 2 * L2_BYTES), "record", "fn", "record"] * 50
    warmup = log[: len(log) - len(timed)]
    assert warmup.count("fn") == timing_cuda.WARMUP_CALLS + timing_cuda.ESTIMATE_CALLS


def test_a_slow_call_still_gets_the_minimum_rounds(fake_cupy):
    timing_cuda, call_taking, _ = fake_cupy
    stats = timing_cuda.measure(call_taking(1000.0), sync=lambda: None, time_per_cell_s=0.1)
    assert stats.rounds == 5 and stats.median == pytest.approx(1.0)


# ---- the modes --------------------------------------------------------------------------------


def test_graph_mode_replays_many_captured_calls_with_a_flush_between_replays(fake_cupy):
    timing_cuda, call_taking, log = fake_cupy
    stats = timing_cuda.measure(call_taking(0.5), lambda: None, 0.1, mode="graph")
    # 10 calls of 0.5 ms make a 5 ms replay (GRAPH_S); 0.1 s of replays is 20 of them
    assert stats.loops == 10 and stats.rounds == 20
    assert stats.samples_s == pytest.approx((0.5e-3,) * 20)  # a replay over its calls
    timed = log[log.index(("flush", 2 * L2_BYTES)) :]
    assert timed == [("flush", 2 * L2_BYTES), "record", ("replay", 10), "record"] * 20
    assert stats.as_dict()["gpu_timing"] == "graph" and stats.launch_overhead_s is None


def test_a_call_that_waits_for_the_host_is_timed_by_events_and_says_why(fake_cupy):
    timing_cuda, call_taking, _ = fake_cupy
    stats = timing_cuda.measure(call_taking(2.0, syncs=True), lambda: None, 0.1, mode="graph")
    row = stats.as_dict()
    assert row["gpu_timing"] == "events" and stats.rounds == 50
    assert "graph capture failed" in row["gpu_timing_note"]
    assert "not permitted when stream is capturing" in row["gpu_timing_note"]


def test_kernel_mode_keeps_the_kernels_time_and_the_launch_overhead(fake_cupy, monkeypatch):
    timing_cuda, call_taking, _ = fake_cupy
    monkeypatch.setattr(gpu_options, "kernel_timing_unavailable", lambda: None)
    profiled = []

    def kernels(fn, sync, flush, rounds):
        profiled.append(rounds)
        return (1.5e-3,) * rounds  # of each 2 ms call, 0.5 ms the GPU waited for launches

    monkeypatch.setattr(timing_cuda, "_kernel_samples", kernels)
    row = timing_cuda.measure(call_taking(2.0), lambda: None, 1.0, mode="kernel").as_dict()
    assert profiled == [timing_cuda.KERNEL_MAX_ROUNDS]  # 500 event rounds, capped
    assert row["gpu_timing"] == "kernel" and row["t_median_s"] == pytest.approx(1.5e-3)
    assert row["launch_overhead_s"] == pytest.approx(0.5e-3)


def test_kernel_mode_refuses_where_there_is_no_profiler(fake_cupy, monkeypatch):
    timing_cuda, call_taking, _ = fake_cupy
    monkeypatch.setattr(gpu_options, "kernel_timing_unavailable", lambda: "no torch here")
    with pytest.raises(ValueError, match="no torch here"):
        timing_cuda.measure(call_taking(2.0), lambda: None, 0.1, mode="kernel")


def test_the_mode_comes_from_the_run_and_a_bad_one_is_named(fake_cupy, monkeypatch):
    timing_cuda, call_taking, _ = fake_cupy
    monkeypatch.setenv(gpu_options.MODE_VAR, "graph")
    assert timing_cuda.measure(call_taking(1.0), lambda: None, 0.05).mode == "graph"
    monkeypatch.setenv(gpu_options.MODE_VAR, "wall")
    with pytest.raises(ValueError, match=r"NNLADDER_GPU_TIMING='wall': expected one of events"):
        timing_cuda.measure(call_taking(1.0), lambda: None, 0.05)


def test_kernel_records_are_summed_per_call_between_flush_markers(fake_cupy):
    timing_cuda, _, _ = fake_cupy
    flush = timing_cuda.FLUSH_KERNEL
    activity = [  # (name, start us, duration us), out of order as a profiler may list them
        ("matmul_warptile", 30.0, 40.0),
        (flush, 0.0, 5.0),
        ("Memcpy DtoH (Device -> Pageable)", 80.0, 3.0),  # not a kernel: left out
        ("add_bias", 75.0, 2.0),
        (flush, 100.0, 5.0),
        ("matmul_warptile", 110.0, 41.0),
    ]
    samples = timing_cuda.kernel_seconds_per_call(activity, calls=2)
    assert samples == pytest.approx((42e-6, 41e-6))
    with pytest.raises(ValueError, match=r"recorded 2 nnladder_l2_flush kernels for 3 calls"):
        timing_cuda.kernel_seconds_per_call(activity, calls=3)


# ---- the options: --gpu-timing and --profile --------------------------------------------------


def run_args(*options):
    return cli.build_parser().parse_args(["run", "--impl", "cuda-tiled", *options])


def test_gpu_timing_is_one_of_three_modes_and_reaches_the_workers(monkeypatch, capsys):
    from harness.commands import run

    monkeypatch.setenv(gpu_options.MODE_VAR, "events")  # put back after the test
    assert run_args().gpu_timing == "events" and not run_args().profile
    with pytest.raises(SystemExit):
        run_args("--gpu-timing", "wall")
    assert "invalid choice: 'wall'" in capsys.readouterr().err
    monkeypatch.setattr(gpu_options, "kernel_timing_unavailable", lambda: None)
    run.options_of(run_args("--gpu-timing", "kernel"))
    assert gpu_options.timing_mode() == "kernel"  # the environment the workers inherit


def test_kernel_timing_and_profile_say_why_they_cannot_run(monkeypatch):
    from harness.commands import run

    monkeypatch.setattr(gpu_options.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"CUPTI through PyTorch's profiler, and torch is not"):
        run.options_of(run_args("--gpu-timing", "kernel"))
    monkeypatch.setattr(gpu_options.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match=r"--profile runs Nsight Compute, and `ncu` is not on"):
        run.options_of(run_args("--profile"))


CELL = grid.Cell("cuda-tiled", "matmul", (("M", 64), ("K", 64), ("N", 64)), "fwd")
NCU_CSV = (
    '"ID","Kernel Name","gpu__time_duration.sum",'
    '"gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed",'
    '"sm__throughput.avg.pct_of_peak_sustained_elapsed",'
    '"sm__warps_active.avg.pct_of_peak_sustained_active"\n'
    '"","","nsecond","%","%","%"\n'  # the units
    '"0","matmul_warptile","3,000","20","90","40"\n'
    '"1","add_bias","1,000","80","10","60"\n'
)


def test_the_ncu_command_profiles_one_call_of_the_cell_in_a_child():
    command = gpu_options.ncu_command(CELL, "/r/report")
    assert command[command.index("--profile-from-start") + 1] == "off"
    assert command.count("--section") == 2 and "Occupancy" in command
    assert command[command.index("--export") + 1] == "/r/report"
    child = command[command.index(sys.executable) :]
    assert child[1:3] == ["-m", "harness.measure.gpu_options"]
    assert grid.Cell.from_json(gpu_options.json.loads(child[3])) == CELL


def test_ncu_metrics_are_weighted_by_each_kernels_duration():
    assert gpu_options.metrics(NCU_CSV) == {
        "ncu_kernels": 2,
        "ncu_dram_pct": pytest.approx(35.0),  # (3 x 20 + 1 x 80) / 4
        "ncu_sm_pct": pytest.approx(70.0),
        "ncu_occupancy_pct": pytest.approx(45.0),
    }
    assert gpu_options.metrics(NCU_CSV.replace("sm__throughput", "other"))["ncu_sm_pct"] is None


def test_profile_keeps_a_report_per_gpu_cell_and_the_row_links_it(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "unavailable_reason", lambda name: None)
    ran = []

    def fake_run(command, **kwargs):
        ran.append(command)
        if "--export" in command:  # the profiling child: ncu writes its report
            out = command[command.index("--export") + 1]
            (tmp_path / "r1" / "ncu" / "run").mkdir(parents=True, exist_ok=True)
            open(out + ".ncu-rep", "w").close()
        return subprocess.CompletedProcess(command, 0, NCU_CSV, "")

    monkeypatch.setattr(gpu_options.subprocess, "run", fake_run)
    writer = types.SimpleNamespace(folder=tmp_path / "r1", path=tmp_path / "r1" / "run.jsonl")
    numpy_cell = dataclasses.replace(CELL, impl="numpy")
    links = gpu_options.profile(run_args("--profile"), [numpy_cell, CELL], writer)
    assert list(links) == [CELL.key()] and len(ran) == 2  # numpy's cell is not a GPU cell
    row = gpu_options.linked(grid.describe(CELL), links)
    assert row["ncu_report"] == "ncu/run/cuda-tiled_matmul_M_64_K_64_N_64_fwd.ncu-rep"
    assert row["ncu_dram_pct"] == pytest.approx(35.0)
    assert "ncu_report" not in gpu_options.linked(grid.describe(numpy_cell), links)


def test_a_cell_ncu_could_not_profile_says_why_in_its_row(tmp_path, monkeypatch):
    def failing(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "==ERROR== LibraryNotLoaded")

    monkeypatch.setattr(gpu_options.subprocess, "run", failing)
    fields = gpu_options.profile_cell(CELL, tmp_path / "report", tmp_path)
    assert fields == {"ncu_reason": "ncu exited 1: ==ERROR== LibraryNotLoaded"}
