"""The machine as it is now: what can make one run's times differ from another's (clocks,
governor, SMT, ASLR, steal, thread settings, a GPU's clocks and throttling) and the other
work holding its cores (the run queue, and the warning run and train print when it is busy).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CPUS = Path("/sys/devices/system/cpu")


def read_text(path) -> str | None:
    """A /proc or /sys file's text, or None where it is missing or unreadable."""
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _number(text, kind=float):
    try:
        return kind(text)
    except (TypeError, ValueError):
        return None


def _cpu_mhz() -> float | None:
    """The CPUs' mean clock now: cpufreq's where the kernel has it, else /proc/cpuinfo's
    "cpu MHz" (on a VM often the host's nominal clock)."""
    khz = [_number(read_text(p)) for p in CPUS.glob("cpu[0-9]*/cpufreq/scaling_cur_freq")]
    mhz = [k / 1e3 for k in khz if k] or [
        float(m)
        for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", read_text("/proc/cpuinfo") or "", re.M)
    ]
    return round(sum(mhz) / len(mhz), 1) if mhz else None


def _gpu_state() -> dict:
    """GPU 0's clocks, power, temperature and throttle reasons through NVML (pynvml, from
    nvidia-ml-py), or gpu_state saying why they are not recorded."""
    try:
        import pynvml
    except ImportError:
        return {"gpu_state": "not recorded: nvidia-ml-py (pynvml) is not installed"}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return {"gpu_state": f"not recorded: NVML did not start ({error})"}
    try:
        gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
        # NVML 12.5 renamed throttle reasons "clocks event reasons"; older bindings lack those
        mask = (
            getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
            or pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
        )(gpu)
        bits = {
            getattr(pynvml, n): n.split("Reason", 1)[1]
            for n in dir(pynvml)
            if n.startswith(("nvmlClocksEventReason", "nvmlClocksThrottleReason"))
        }
        active = [
            name
            for bit, name in sorted(bits.items())
            if isinstance(bit, int) and bit and not bit & (bit - 1) and mask & bit
        ]
        return {
            "gpu_sm_mhz": pynvml.nvmlDeviceGetClockInfo(gpu, pynvml.NVML_CLOCK_SM),
            "gpu_mem_mhz": pynvml.nvmlDeviceGetClockInfo(gpu, pynvml.NVML_CLOCK_MEM),
            "gpu_power_w": pynvml.nvmlDeviceGetPowerUsage(gpu) / 1e3,
            "gpu_temp_c": pynvml.nvmlDeviceGetTemperature(gpu, pynvml.NVML_TEMPERATURE_GPU),
            "gpu_throttle": " ".join(active) or "none",
        }
    except (pynvml.NVMLError, AttributeError) as error:
        return {"gpu_state": f"not recorded: NVML: {error}"}
    finally:
        pynvml.nvmlShutdown()


MOVING = ("cpu_mhz", "steal_since_boot")  # what a run can change, beside a GPU's readings


def state(gpu: bool) -> dict:
    """What can make a run's times differ from another's on this machine, as it is now: the
    CPUs' clock and governor, SMT, ASLR, the steal since boot, the thread variables set, and
    with a GPU its clocks, power, temperature and throttle reasons. None where unreadable."""
    ticks = cpu_ticks()
    return {
        "cpu_mhz": _cpu_mhz(),
        "governor": (read_text(CPUS / "cpu0/cpufreq/scaling_governor") or "").strip() or None,
        "smt": {"1": True, "0": False}.get((read_text(CPUS / "smt/active") or "").strip()),
        "aslr": _number(read_text("/proc/sys/kernel/randomize_va_space"), int),
        "steal_since_boot": ticks[0] / ticks[1] if ticks and ticks[1] else None,
        "thread_env": " ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS if v in os.environ),
        **(_gpu_state() if gpu else {}),
    }


def after(gpu: bool) -> dict:
    """What of state() may have moved while a run measured (clocks, steal, a GPU's power and
    temperature), read again at its end, as `<name>_after`: a run that heated the GPU until it
    throttled, or whose VM had cores stolen, says so beside its before."""
    moving = {k: v for k, v in state(gpu).items() if k.startswith("gpu_") or k in MOVING}
    return {f"{k}_after": v for k, v in moving.items() if k != "gpu_state"}


def _run_queue(read=read_text) -> int | None:
    """Threads running or ready to run on the whole machine now (/proc/loadavg's 4th field,
    this reader included); None where there is no /proc."""
    try:
        return int(read("/proc/loadavg").split()[3].split("/")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def running_threads(pids) -> int:
    """Threads of these processes running or ready to run now (state R in /proc/PID/task):
    their share of the run queue, not other work's."""
    states = (
        read_text(stat) or "" for pid in pids for stat in Path(f"/proc/{pid}/task").glob("*/stat")
    )
    return sum(1 for text in states if text[text.rfind(")") + 2 :][:1] == "R")


def others_now(pids, read=read_text, own=running_threads) -> int | None:
    """Threads of other work that hold or wait for a core now: the run queue less the threads
    of `pids` (the measuring processes). None where it cannot be read."""
    queue = _run_queue(read)
    return None if queue is None else max(queue - own(pids), 0)


def others_running(samples: int = 5, window_s: float = 0.1) -> float | None:
    """How many threads of other work hold or wait for a core: the median of a few reads of
    the run queue over window_s, less the reader. None where it cannot be read."""
    counts = []
    for _ in range(samples):
        queue = _run_queue()
        if queue is None:
            return None
        counts.append(queue - 1)
        time.sleep(window_s / samples)
    return float(np.median(counts))


def busy(others: float) -> bool:
    """Whether other work holds half the cores or more (at least one)."""
    return others >= max(1.0, (os.cpu_count() or 1) / 2)


def cpu_ticks(read=read_text) -> tuple | None:
    """(steal, all) ticks of every CPU since boot (/proc/stat's cpu line: user nice system
    idle iowait irq softirq steal; guest time is inside user), or None."""
    try:
        ticks = [int(t) for t in read("/proc/stat").splitlines()[0].split()[1:9]]
    except (AttributeError, IndexError, ValueError):
        return None
    return (ticks[7], sum(ticks)) if len(ticks) == 8 else None


def busy_warning() -> str | None:
    """A warning to print before measuring when other work holds half the cores or more.

    Timings taken then are slow and noisy, and the rungs that use every core suffer most: a
    team thread that is descheduled holds up the others at each join (README, "Measured
    figures": the same training epoch on a busy machine).
    """
    others = others_running()
    if others is None or not busy(others):
        return None
    return (
        f"warning: this machine is busy ({others:g} threads of other work running on "
        f"{os.cpu_count() or 1} cores): timings taken now are slow and noisy, and threaded "
        "rungs (c, OpenBLAS) suffer most. Wait until it is quiet, or run on one thread: "
        "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1"
    )
