"""Stored results: one tidy table per run, as JSON lines, under results/<machine>/.

A run's file is rewritten whole after every finished cell (harness/results/atomic.py: a
temporary dot-file that no glob of results matches, fsynced, then renamed), so a reader (or a
killed run) always finds a complete table of the cells done so far. Files are created with
O_EXCL: runs never overwrite one another. No pickle: every value is JSON (raw timing samples
as lists).

Loading trusts no file: each is read through harness/results/rows.py, which skips what is
not a row and reads or drops a value of the wrong type, with a warning naming file and line.
"""

from __future__ import annotations

import json
import math
import secrets
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness.results import atomic, machine
from harness.results.machine import ROOT
from harness.results.rows import NUMERIC, read_run

RESULTS = ROOT / "results"

# The columns of the results table, in order (README, "Results", lists them). Size columns are
# the workload's own dimension letters and parameters; rows carry only those they have.
COLUMNS = [
    "run_id",
    "timestamp",
    "commit",
    "dirty",
    "machine",
    "cpu",
    "cores",
    "gpu",
    "python",
    "numpy",
    "blas",
    "threads",
    "impl",
    "device",
    "workload",
    "size",
    "phase",
    "status",
    "reason",
    "rounds",
    "loops",
    "t_min_s",
    "t_median_s",
    "t_iqr_s",
    "t_mean_s",
    "t_stddev_s",
    "t_predicted_s",
    "flops",
    "bytes",
    "gflops_per_s",
    "intensity",
    "peak_mem_bytes",
    "peak_rss_bytes",
    "rel_err",
    "tol",
    "err_bound",
    "err_ratio",
    "unstable",
    "unstable_reason",
    "samples_s",
]


def new_run_id(sha: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{sha[:7]}-{secrets.token_hex(2)}"


def clean(value):
    """JSON has no NaN: store it as null, which load() reads back as NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunWriter:
    """Collects one run's rows and keeps its file a complete table after every append.

    `meta` (the run id, time and machine columns) is stamped on every row appended. A
    folder or file that cannot be written raises atomic.WriteError (an OSError and a
    ValueError) naming it and the cause; the rows stored before stay as they were."""

    def __init__(
        self, run_id: str, machine: str, root: Path | None = None, meta: dict | None = None
    ):
        self.folder = atomic.make_folder(Path(root or RESULTS) / machine)
        # O_EXCL: a second run with the same id fails here instead of replacing the first.
        self.path = atomic.reserve(self.folder / f"{run_id}.jsonl")
        self.rows: list = []
        self.meta = meta or {}

    def append(self, row: dict) -> None:
        self.extend([row])

    def extend(self, new_rows: list) -> None:
        """Store new_rows in one write: the file holds all of them or none of them (an import
        stopped halfway leaves no run that looks whole)."""
        cleaned = ({k: clean(v) for k, v in {**self.meta, **row}.items()} for row in new_rows)
        rows = [*self.rows, *cleaned]
        atomic.write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in rows))
        self.rows = rows  # only once stored: rows says what the file holds

    def stamp(self, fields: dict) -> None:
        """Add fields to every row of the run, stored and to come: what is known only at its
        end (the machine's state after it)."""
        fields = {k: clean(v) for k, v in fields.items()}
        rows = [{**row, **fields} for row in self.rows]
        atomic.write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in rows))
        self.rows, self.meta = rows, {**self.meta, **fields}


def open_run(root: Path | str | None = None) -> RunWriter:
    """A new run of this machine and commit: its rows get run_id, timestamp and machine info."""
    meta = machine.info()
    run_id = new_run_id(meta["commit"])
    # microseconds: runs started within one second still order by when they started
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    return RunWriter(run_id, meta["machine"], root, {"run_id": run_id, "timestamp": stamp, **meta})


def load(root: Path | str | None = None) -> pd.DataFrame:
    """Every stored run as one DataFrame (empty, with the schema's columns, when none).

    Dot-files are never results (a write's temporary file, an editor's swap file)."""
    root = Path(root or RESULTS)
    frames = []
    for path in sorted(root.glob("*/*.jsonl")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        try:
            frames.append(read_run(path))
        except OSError as error:
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
