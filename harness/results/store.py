"""Stored results: one tidy table per run, as JSON lines, under results/<machine>/.

A run's file is rewritten whole after every finished cell, through a temporary file and an
atomic rename, so a reader (or a killed run) always finds a complete table of the cells done
so far. Files are created with O_EXCL: runs never overwrite one another. No pickle: every
value is JSON (raw timing samples as lists).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness.results import machine
from harness.results.machine import ROOT

RESULTS = ROOT / "results"

# The columns of the results table, in order (DESIGN.md explains each). Size columns are
# the workload's own dimension letters and parameters; rows carry only those they have.
COLUMNS = [
    "run_id", "timestamp", "commit", "dirty", "machine", "cpu", "cores", "gpu", "python",
    "numpy", "blas", "threads", "impl", "device", "workload", "size", "phase", "status",
    "reason", "rounds", "loops", "t_min_s", "t_median_s", "t_iqr_s", "t_mean_s", "t_stddev_s",
    "t_predicted_s", "flops", "bytes", "gflops_per_s", "intensity", "peak_mem_bytes",
    "rel_err", "tol", "samples_s",
]
NUMERIC = ["cores", "threads", "rounds", "loops", "t_min_s", "t_median_s", "t_iqr_s", "t_mean_s",
           "t_stddev_s", "t_predicted_s", "flops", "bytes", "gflops_per_s", "intensity",
           "peak_mem_bytes", "rel_err", "tol", "instructions", "flops_per_instruction"]
STATUSES = ("ok", "wrong", "unsupported", "unavailable", "over_budget", "error")


def new_run_id(sha: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{sha[:7]}-{secrets.token_hex(2)}"


def _clean(value):
    """JSON has no NaN: store it as null, which load() reads back as NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunWriter:
    """Collects one run's rows and keeps its file a complete table after every append.

    `meta` (the run id, time and machine columns) is stamped on every row appended."""

    def __init__(self, run_id: str, machine: str, root: Path | None = None,
                 meta: dict | None = None):
        self.folder = Path(root or RESULTS) / machine
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"{run_id}.jsonl"
        # O_EXCL: a second run with the same id fails here instead of replacing the first.
        os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        self.rows: list = []
        self.meta = meta or {}

    def append(self, row: dict) -> None:
        self.rows.append({k: _clean(v) for k, v in {**self.meta, **row}.items()})
        text = "".join(json.dumps(r, sort_keys=False) + "\n" for r in self.rows)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".jsonl")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def open_run(root: Path | str | None = None) -> RunWriter:
    """A new run of this machine and commit: its rows get run_id, timestamp and machine info."""
    meta = machine.info()
    run_id = new_run_id(meta["commit"])
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return RunWriter(run_id, meta["machine"], root,
                     {"run_id": run_id, "timestamp": stamp, **meta})


def read_run(path: Path) -> pd.DataFrame:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows)


def load(root: Path | str | None = None) -> pd.DataFrame:
    """Every stored run as one DataFrame (empty, with the schema's columns, when none)."""
    frames = []
    for path in sorted(Path(root or RESULTS).glob("*/*.jsonl")):
        try:
            frames.append(read_run(path))
        except (OSError, ValueError) as error:
            warnings.warn(f"skipping unreadable results file {path}: {error}", stacklevel=2)
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    for column in NUMERIC:  # a column of nulls alone would otherwise load as objects
        if column in table.columns:
            table[column] = pd.to_numeric(table[column], errors="coerce")
    first = [c for c in COLUMNS if c in table.columns]
    return table[first + [c for c in table.columns if c not in COLUMNS]]
