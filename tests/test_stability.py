"""Stability of a cell (harness/measure/stability.py): each rule on synthetic rounds, steal and
the run queue from fake /proc readers, the run's machine state, and one cell's life whose row
carries every column the checks add."""

from __future__ import annotations

import math
import os
import sys
import types

import pytest

from harness.execute import grid, lifecycle
from harness.measure import stability
from harness.measure.timing import MIN_ROUND_S
from harness.results import machine_state, store
from tests.conftest import XOR_RUN
from tests.test_roofs import SYNTHETIC

STEADY = [1e-3 * (1 + 0.002 * (i % 5)) for i in range(20)]  # 0.3% spread, 20 rounds


def judged(samples, loops=10, device="cpu", **around):
    return stability.judge({"samples_s": samples, "loops": loops, "device": device, **around})


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)


def test_steady_rounds_on_a_quiet_machine_hold():
    assert judged(STEADY, steal_frac=0.0, others_running=0) == {
        "unstable": False,
        "unstable_reason": "",
    }


def test_spread_past_a_tenth_of_the_mean_is_unstable():
    samples = [1e-3, 1.3e-3] * 10  # stddev 0.15 ms * sqrt(20 / 19), mean 1.15 ms: 13.4%
    verdict = judged(samples)
    assert verdict["unstable"] and "spread 13.4% >= 10%" in verdict["unstable_reason"]


@pytest.mark.parametrize(
    "outlier, words",
    [
        (0.4e-3, "min 0.4 ms is 60% off the median 1 ms"),
        (1.6e-3, "max 1.6 ms is 60% off the median 1 ms"),
    ],
)
def test_a_round_half_the_median_away_is_an_outlier(outlier, words):
    samples = [1e-3] * 99 + [outlier]  # one round: the spread stays under 10%
    verdict = judged(samples)
    assert verdict["unstable"] and verdict["unstable_reason"] == words


def test_rounds_shorter_than_the_timer_trusts_are_unstable():
    assert not judged(STEADY, loops=1)["unstable"]  # a 1 ms round: at the floor, not under it
    short = judged([s / 2 for s in STEADY], loops=1)
    assert short["unstable_reason"] == f"shortest round 0.5 ms < {MIN_ROUND_S / 2 * 1e3:g} ms"
    assert not judged([2e-5] * 20, loops=1, device="cuda")["unstable"]  # events resolve 0.5 us
    assert (
        "shortest round 0.005 ms < 0.01 ms"
        in judged([5e-6] * 20, loops=1, device="cuda")["unstable_reason"]
    )


def test_too_few_rounds_for_their_spread_are_unstable():
    assert judged(STEADY[:4])["unstable_reason"] == "4 rounds < 5 (mean to +-5% at 95%)"
    noisy = [1e-3 * (1 + 0.08 * (-1) ** i) for i in range(10)]  # 8.4% spread: needs 11
    needed = math.ceil((1.96 * 0.0843 / 0.05) ** 2)
    assert judged(noisy)["unstable_reason"] == f"10 rounds < {needed} (mean to +-5% at 95%)"
    assert not judged(noisy * 2)["unstable"]


class FakeProc:
    """/proc/stat and /proc/loadavg as a sequence of readings, one per Window read."""

    def __init__(self, stats, queues):
        self.stats, self.queues = iter(stats), iter(queues)

    def read(self, path):
        if path == "/proc/stat":
            steal, busy = next(self.stats)
            return f"cpu  {busy} 0 0 0 0 0 0 {steal} 0 0\ncpu0 1 2 3\n"
        return f"0.50 0.40 0.30 {next(self.queues)}/300 4242\n"


def window(stats, queues, own=1):
    proc = FakeProc(stats, queues)
    return stability.Window(read=proc.read, own=lambda pids: own).close()


def test_steal_is_the_share_of_every_cpus_ticks_taken_while_measured():
    around = window([(10, 990), (18, 1082)], [1, 1])  # 8 of 100 ticks stolen
    assert around == {"steal_frac": pytest.approx(0.08), "others_running": 0}
    assert judged(STEADY, **around)["unstable_reason"] == "steal 8.0% of the CPU time > 5%"
    assert not judged(STEADY, **window([(10, 990), (11, 1009)], [1, 1]))["unstable"]  # 1 in 20


def test_other_work_on_half_the_cores_at_both_ends_is_unstable(four_cores):
    around = window([(0, 100), (0, 200)], [4, 3], own=1)  # 3, then 2 threads of other work
    assert around["others_running"] == 2
    assert (
        judged(STEADY, **around)["unstable_reason"]
        == "run queue: 2 runnable threads of other work on 4 cores"
    )
    passing = window([(0, 100), (0, 200)], [5, 1], own=1)  # busy only when it began
    assert passing["others_running"] == 0 and not judged(STEADY, **passing)["unstable"]


def test_the_cells_own_threads_are_not_other_work(four_cores):
    around = window([(0, 100), (0, 200)], [5, 5], own=5)  # a team of 4 and the reader
    assert around["others_running"] == 0


def test_without_proc_the_window_says_nothing_and_the_rounds_still_decide():
    around = stability.Window(read=lambda path: None, own=lambda pids: 0).close()
    assert around == {"steal_frac": None, "others_running": None}
    assert not judged(STEADY, **around)["unstable"]


def test_every_broken_rule_is_named_with_its_numbers(four_cores):
    samples = [1e-4] * 3 + [3e-4]
    reason = judged(samples, loops=1, steal_frac=0.2, others_running=3)["unstable_reason"]
    assert reason.split("; ") == [
        "spread 66.7% >= 10% (stddev / mean)",
        "max 0.3 ms is 200% off the median 0.1 ms",
        "shortest round 0.1 ms < 1 ms",
        "4 rounds < 5 (mean to +-5% at 95%)",
        "steal 20.0% of the CPU time > 5%",
        "run queue: 3 runnable threads of other work on 4 cores",
    ]


# ---- the run's machine state -------------------------------------------------------------


def test_the_run_state_is_a_few_scalars_and_none_where_unreadable():
    state = machine_state.state(gpu=False)
    assert set(state) == {"cpu_mhz", "governor", "smt", "aslr", "steal_since_boot", "thread_env"}
    assert all(v is None or isinstance(v, (int, float, str, bool)) for v in state.values())
    if os.path.exists("/proc/sys/kernel/randomize_va_space"):
        assert state["aslr"] in (0, 1, 2)


def test_thread_variables_are_recorded_as_set(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    assert machine_state.state(gpu=False)["thread_env"] == "OMP_NUM_THREADS=1 MKL_NUM_THREADS=2"


def fake_pynvml(throttle: int, spelling: str) -> types.ModuleType:
    """nvidia-ml-py's names: "Event" from 12.535 on, "Throttle" before."""
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = type("NVMLError", (Exception,), {})
    nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM, nvml.NVML_TEMPERATURE_GPU = 1, 2, 0
    for reason, bit in (
        ("GpuIdle", 0x1),
        ("SwPowerCap", 0x4),
        ("HwThermalSlowdown", 0x40),
        ("All", 0x45),
    ):
        setattr(nvml, f"nvmlClocks{spelling}Reason{reason}", bit)
    nvml.nvmlInit = nvml.nvmlShutdown = lambda: None
    nvml.nvmlDeviceGetHandleByIndex = lambda index: "gpu0"
    setattr(nvml, f"nvmlDeviceGetCurrentClocks{spelling}Reasons", lambda handle: throttle)
    nvml.nvmlDeviceGetClockInfo = lambda handle, kind: {1: 1980, 2: 2619}[kind]
    nvml.nvmlDeviceGetPowerUsage = lambda handle: 123456  # milliwatts
    nvml.nvmlDeviceGetTemperature = lambda handle, sensor: 41
    return nvml


@pytest.mark.parametrize("spelling", ["Event", "Throttle"])
def test_a_gpu_state_comes_from_nvml_and_its_throttle_reasons_by_name(monkeypatch, spelling):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(0x44, spelling))
    gpu = {k: v for k, v in machine_state.state(gpu=True).items() if k.startswith("gpu_")}
    assert gpu == {
        "gpu_sm_mhz": 1980,
        "gpu_mem_mhz": 2619,
        "gpu_power_w": 123.456,
        "gpu_temp_c": 41,
        "gpu_throttle": "SwPowerCap HwThermalSlowdown",
    }


def test_without_nvidia_ml_py_the_gpu_state_says_it_is_not_recorded(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # an import that fails
    assert (
        machine_state.state(gpu=True)["gpu_state"]
        == "not recorded: nvidia-ml-py (pynvml) is not installed"
    )


# ---- one cell's life carries every new column ----------------------------------------------


NEW = (
    "peak_rss_bytes",
    "peak_mem_bytes",
    "err_bound",
    "err_ratio",
    "steal_frac",
    "others_running",
    "unstable",
    "unstable_reason",
)


def test_every_row_of_a_run_carries_memory_error_bound_stability_and_roof(tmp_path):
    cells = grid.plan(["numpy"], ["xor"], quick=True)
    options = lifecycle.Options(time_per_cell_s=0.01, ceilings=SYNTHETIC)
    rows = []
    lifecycle.run_impl("numpy", cells, options, rows.append)
    assert [r["status"] for r in rows] == ["ok"] * 3
    for row in rows:
        assert all(k in row for k in NEW), [k for k in NEW if k not in row]
        assert row["err_ratio"] == pytest.approx(row["rel_err"] / row["err_bound"])
        assert 0 < row["err_ratio"] < 1  # XOR's MLP computes within its rounding bound
        assert isinstance(row["unstable"], bool)
        assert row["unstable"] == bool(row["unstable_reason"])
        assert row["roof_level"] == "L1"  # a few hundred bytes, judged by measure/roofs.py
        assert row["roof_pct"] == pytest.approx(
            100 * row["gflops_per_s"] / row["roof_gflops_per_s"]
        )
    writer = store.RunWriter("r1", "here", tmp_path)
    for row in rows:
        writer.append(row)
    table = store.load(tmp_path)
    assert table["peak_rss_bytes"].dtype.kind in "if" and table["err_ratio"].notna().all()


def test_without_ceilings_rows_have_no_roof():
    impl = lifecycle.registry.create("numpy")
    cell = grid.plan(["numpy"], ["xor"], ["fwd"], quick=True)[0]
    row = lifecycle.run_cell(impl, cell, None, lifecycle.Timed(0.01))
    assert row["status"] == "ok" and not any(k.startswith("roof_") for k in row)


def test_a_run_records_the_machine_state_before_and_after(tmp_path):
    from harness import cli
    from harness.results import store

    assert cli.main([*XOR_RUN, "--no-report", "--results", str(tmp_path)]) == 0
    table = store.load(tmp_path)
    assert {"cpu_mhz", "steal_since_boot", "cpu_mhz_after", "steal_since_boot_after"} <= set(
        table.columns
    )
    assert (table["steal_since_boot_after"] >= 0).all() or table["steal_since_boot"].isna().all()
