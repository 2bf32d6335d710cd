"""Who measured: the machine, its BLAS and threads, the versions, and the commit."""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # the project: harness/results/machine.py, up two


def _git(*args) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def commit() -> dict:
    """{"commit": sha or "unknown", "dirty": bool}; results outside git say "unknown"."""
    sha = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if sha else False
    return {"commit": sha or "unknown", "dirty": dirty}


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return found.group(1).strip() if found else platform.machine()


def _gpu() -> str:
    if not shutil.which("nvidia-smi"):
        return ""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout else ""


def blas() -> dict:
    """The BLAS NumPy calls and its thread count, as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"blas": "unknown", "threads": 0}
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return {"blas": f"{pool['internal_api']} {pool.get('version') or ''}".strip(),
                    "threads": int(pool["num_threads"])}
    return {"blas": "none found", "threads": 0}


MACHINE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def machine_name() -> str:
    """The folder of this machine's results: NNLADDER_MACHINE if set (CI runners change host
    names), else the host name made folder-safe.

    The name is one folder inside results/: a set NNLADDER_MACHINE that is not one folder's
    name (empty, `.`, `..`, a path) is refused, since `..` would store runs outside results/
    and `.` where load() never looks.
    """
    given = os.environ.get("NNLADDER_MACHINE")
    if given is not None:
        if not MACHINE_NAME.fullmatch(given) or not given.strip("."):
            raise ValueError(f"NNLADDER_MACHINE={given!r} is not a machine name: expected 1 to "
                             "64 letters, digits, '_', '-' or '.', not only dots (unset it to "
                             "use the host name)")
        return given
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname())[:64]
    return name if name.strip(".") else "unknown"


@lru_cache(maxsize=1)
def info() -> dict:
    """The columns every result row of this process shares."""
    return {"machine": machine_name(), "cpu": _cpu_model(), "cores": os.cpu_count() or 0,
            "gpu": _gpu(), "python": platform.python_version(), "numpy": np.__version__,
            "platform": f"{sys.platform}-{platform.machine()}", **blas(), **commit()}


def _run_queue() -> int | None:
    """Threads running or ready to run on the whole machine now (/proc/loadavg's 4th field,
    this reader included); None where there is no /proc."""
    try:
        return int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


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


def busy_warning() -> str | None:
    """A warning to print before measuring when other work holds half the cores or more.

    Timings taken then are slow and noisy, and the rungs that use every core suffer most: a
    team thread that is descheduled holds up the others at each join (README, "Measured
    figures": the same training epoch on a busy machine).
    """
    cores = os.cpu_count() or 1
    others = others_running()
    if others is None or others < max(1.0, cores / 2):
        return None
    return (f"warning: this machine is busy ({others:g} threads of other work running on "
            f"{cores} cores): timings taken now are slow and noisy, and threaded rungs (c, "
            "OpenBLAS) suffer most. Wait until it is quiet, or run on one thread: "
            "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1")
