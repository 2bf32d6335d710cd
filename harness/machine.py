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

ROOT = Path(__file__).resolve().parent.parent


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


def machine_name() -> str:
    """A folder-safe name: NNLADDER_MACHINE if set (CI runners change hostnames), else host."""
    name = os.environ.get("NNLADDER_MACHINE") or socket.gethostname() or "unknown"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:64]


@lru_cache(maxsize=1)
def info() -> dict:
    """The columns every result row of this process shares."""
    return {"machine": machine_name(), "cpu": _cpu_model(), "cores": os.cpu_count() or 0,
            "gpu": _gpu(), "python": platform.python_version(), "numpy": np.__version__,
            "platform": f"{sys.platform}-{platform.machine()}", **blas(), **commit()}
