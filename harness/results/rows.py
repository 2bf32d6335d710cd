"""One stored run's file read back as rows, trusting nothing in it.

A line that is not JSON or not a row object is skipped, and a value of the wrong type in a
known column is read as what it means (the text of a number, the number in a text) or
dropped, each with a warning naming the file and line; the other rows of the file load as
usual. A row left without its impl or status is skipped.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

# peak_mem_bytes is tracemalloc's (Python-level) or a GPU pool's, peak_rss_bytes the resident
# working set that native code's pages count in (measure/memory.py; on MPI ranks the most one
# rank held, peak_rss_sum_bytes all of them); err_bound is sqrt(n) * 2^-24 for the n
# roundings of the phase (workloads/base.py), err_ratio = rel_err / err_bound; unstable and
# its reason, steal_frac and others_running are measure/stability.py's; cpu_mhz ... gpu_* the
# run's machine state at its start (results/machine_state.py state()); roof_* are
# measure/roofs.py's.
NUMERIC = [
    "cores",
    "threads",
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
    "peak_rss_sum_bytes",
    "rel_err",
    "tol",
    "err_bound",
    "err_ratio",
    "steal_frac",
    "others_running",
    "cpu_mhz",
    "aslr",
    "steal_since_boot",
    "gpu_sm_mhz",
    "gpu_mem_mhz",
    "gpu_power_w",
    "gpu_temp_c",
    *(
        f"{name}_after"
        for name in (
            "cpu_mhz",
            "steal_since_boot",
            "gpu_sm_mhz",
            "gpu_mem_mhz",
            "gpu_power_w",
            "gpu_temp_c",
        )
    ),
    "roof_gflops_per_s",
    "roof_pct",
    "instructions",
    "flops_per_instruction",
    "test_acc",
    "target_acc",
    "epochs_to_target",
    "time_to_target_s",
    "train_s",
]
TEXT = [
    "run_id",
    "timestamp",
    "commit",
    "machine",
    "cpu",
    "gpu",
    "python",
    "numpy",
    "blas",
    "platform",
    "impl",
    "device",
    "workload",
    "size",
    "phase",
    "status",
    "reason",
    "measure",
]
# Lists of numbers: raw timing samples, and training's per-epoch figures.
SERIES = [
    "samples_s",
    "loss_by_epoch",
    "train_acc_by_epoch",
    "test_acc_by_epoch",
    "seconds_by_epoch",
]
REQUIRED = ["impl", "status"]  # a row that says neither what ran nor how it went says nothing
STATUSES = ("ok", "wrong", "unsupported", "unavailable", "over_budget", "error")


def is_number(value) -> bool:
    """An int or a float, and not a bool (JSON's true is no count)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_text(value):
    if isinstance(value, str):
        return value
    if is_number(value) or isinstance(value, bool):
        return str(value)
    raise TypeError


def _as_number(value):
    if isinstance(value, str):
        return float(value)  # ValueError unless it reads as one
    if is_number(value):
        return value
    raise TypeError


def _as_flag(value):
    if isinstance(value, bool):
        return value
    raise TypeError


def _as_series(value):
    if isinstance(value, list) and all(v is None or is_number(v) for v in value):
        return value
    raise TypeError


def _as_table(value):
    if (
        value
        and isinstance(value, list)
        and all(
            isinstance(r, list) and len(r) == len(value) and all(map(is_number, r)) for r in value
        )
    ):
        return value
    raise TypeError


def _as_histograms(value):
    if not value or not isinstance(value, dict):
        raise TypeError
    for binned in value.values():
        edges, counts = (
            binned.get(k) if isinstance(binned, dict) else None for k in ("edges", "counts")
        )
        if not (
            isinstance(edges, list)
            and isinstance(counts, list)
            and len(edges) == len(counts) + 1
            and all(map(is_number, edges + counts))
        ):
            raise TypeError
    return value


# column -> (reader: the value as its type, or TypeError / ValueError; what it expects)
READERS = {
    **{c: (_as_text, "text") for c in TEXT},
    **{c: (_as_number, "a number") for c in NUMERIC},
    **{c: (_as_series, "a list of numbers") for c in SERIES},
    "dirty": (_as_flag, "true or false"),
    "confusion_CC": (_as_table, "a square table of counts"),  # training's
    "weight_hist": (_as_histograms, "histograms by layer ({edges, counts})"),
}


def _checked(row: dict, where: str) -> dict | None:
    """The row with each known column's value of its type (read as one, or dropped), with a
    warning for each; None, with a warning, if it lacks a REQUIRED column."""
    problems = []
    for column, (read, expected) in READERS.items():
        value = row.get(column)
        if value is None:
            continue
        try:
            row[column] = read(value)
        except (TypeError, ValueError):
            row[column] = None
            problems.append(f"{column} {value!r:.60} is not {expected}: dropped")
            continue
        if type(row[column]) is not type(value):
            problems.append(f"{column} {value!r:.60} read as {row[column]!r}")
    missing = [c for c in REQUIRED if row.get(c) is None]
    if missing:
        problems.append(f"no {', '.join(missing)}: row skipped")
    unknown = not missing and row["status"] not in STATUSES  # the report and compare key on it
    if unknown:
        problems.append(
            f"status {row['status']!r:.60} is not one of {', '.join(STATUSES)}: row skipped"
        )
    if problems:
        warnings.warn(f"{where}: {'; '.join(problems)}", stacklevel=4)
    return None if missing or unknown else row


def read_run(path: Path) -> pd.DataFrame:
    """One results file -> its rows; a line that is not a row is skipped with a warning."""
    rows = []
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = json.loads(raw)
        except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, nested too deep
            warnings.warn(f"{where}: not a JSON line ({error}): skipped", stacklevel=3)
            continue
        if not isinstance(row, dict):
            warnings.warn(
                f"{where}: {raw[:60].decode(errors='replace')} is not a row (a JSON "
                "object): skipped",
                stacklevel=3,
            )
            continue
        row = _checked(row, where)
        if row is not None:
            rows.append(row)
    return pd.DataFrame(rows)
