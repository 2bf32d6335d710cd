"""Who measured: the machine, its BLAS and threads, the versions, and the commit."""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.results import machine_state

ROOT = Path(__file__).resolve().parents[2]  # the project: harness/results/machine.py, up two


def _git(*args) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
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
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
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
            return {
                "blas": f"{pool['internal_api']} {pool.get('version') or ''}".strip(),
                "threads": int(pool["num_threads"]),
            }
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
            raise ValueError(
                f"NNLADDER_MACHINE={given!r} is not a machine name: expected 1 to "
                "64 letters, digits, '_', '-' or '.', not only dots (unset it to "
                "use the host name)"
            )
        return given
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname())[:64]
    return name if name.strip(".") else "unknown"


@lru_cache(maxsize=1)
def info() -> dict:
    """The columns every result row of this process shares; the machine's state
    (machine_state.state()) as the process first asked (for `run`, before its first cell)."""
    gpu = _gpu()
    return {
        "machine": machine_name(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "gpu": gpu,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": f"{sys.platform}-{platform.machine()}",
        **blas(),
        **commit(),
        **machine_state.state(bool(gpu)),
    }
