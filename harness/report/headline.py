"""Which cells the report puts forward: the headline size of each workload and phase, the
cells there, and a row's instability flag.

The headline size of a workload and phase is the largest size (by work) at which every impl
that ran it ok anywhere ran ok: the rungs compared where all of them meet. Impls that cannot
run here, or never ran it ok, do not count; where no size has them all, the size with the most
ok impls (then the most work). Sizes compare without the sharded rungs' rank count P.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The phase a workload is put forward by: its training step where it has one, else forward.
PICK = ("step", "fwd")


def problem(size) -> str:
    """A size label without the rank count P: the problem, sharded or not."""
    return " ".join(part for part in str(size).split() if not part.startswith("P="))


def timed(rows: pd.DataFrame) -> pd.Series:
    """Rows that ran ok and kept their time (an ok row of a damaged file may have lost it)."""
    return (rows["status"] == "ok") & (rows["t_median_s"] > 0)


def sizes(cells: pd.DataFrame) -> dict:
    """{(workload, phase): problem size} for every workload and phase with an ok cell."""
    out = {}
    ok = cells[timed(cells)].assign(problem=lambda t: t["size"].map(problem))
    for key, group in ok.groupby(["workload", "phase"], sort=False):
        per_size = group.groupby("problem").agg(impls=("impl", "nunique"), flops=("flops", "max"))
        everyone = per_size[per_size["impls"] == group["impl"].nunique()]
        out[key] = (
            (everyone if not everyone.empty else per_size).sort_values(["impls", "flops"]).index[-1]
        )
    return out


def at_size(cells: pd.DataFrame, workload: str, phase: str, size: str) -> pd.DataFrame:
    """Every impl's cell of one workload and phase at one problem size, timed ones first
    (column `ok`): for an impl measured at several rank counts, its fastest."""
    rows = cells[
        (cells["workload"] == workload)
        & (cells["phase"] == phase)
        & (cells["size"].map(problem) == size)
    ]
    return (
        rows.assign(ok=timed(rows))
        .sort_values(["ok", "t_median_s"], ascending=[False, True], kind="stable")
        .drop_duplicates("impl")
    )


def flag(row) -> str:
    """The rules an unstable row broke ("; "-joined), or '' (rows measured before the check
    carry no verdict and are not flagged)."""
    unstable, reason = row.get("unstable"), row.get("unstable_reason")
    if not isinstance(unstable, (bool, np.bool_)) or not unstable:
        return ""
    return reason if isinstance(reason, str) and reason else "unstable"


def times(ratio: float) -> str:
    """A speedup as the page writes it: 2345.6 -> '2,300', 3.14159 -> '3.1'."""
    return f"{float(f'{ratio:.2g}'):,.0f}" if ratio >= 10 else f"{ratio:.2g}"


def text(value) -> str:
    """A text column's value, '' where a row has none (NaN)."""
    return value if isinstance(value, str) else ""
