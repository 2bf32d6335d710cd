"""What bounds each cell, for the report: the verdict of harness/measure/roofs.py (the memory
level its working set fits in, or compute; its roof; how close it came) and the words the page
says it in.

Rows measured with the hierarchy carry the verdict (roof_bound, roof_gflops_per_s, roof_pct);
older rows are judged here against the machine's ceilings. Ceilings from before the hierarchy
have no roofs: their rows say so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.measure import roofs

VERDICT = ["roof_bound", "roof_gflops_per_s", "roof_pct"]


def judged(cells: pd.DataFrame, ceilings) -> pd.DataFrame:
    """`cells` with the verdict columns filled for every ok row: a row's own, or judge()'s."""
    cells = cells.reindex(columns=list(dict.fromkeys([*cells.columns, *VERDICT])))
    cells = cells.astype({"roof_bound": object})  # a column of nulls alone reads as numbers
    todo = (cells["status"] == "ok") & cells["roof_pct"].isna()
    for index in cells.index[todo]:
        verdict = roofs.judge(cells.loc[index].to_dict(), ceilings)
        for column in VERDICT:
            cells.at[index, column] = verdict.get(column, cells.at[index, column])
    return cells


def percent(value) -> str:
    return f"{value:.0f}%" if value >= 9.5 else f"{value:.2g}%"


def words(row, ceilings) -> str:
    """What bounds a row, as the page says it: "at 71% of its compute roof (FMA peak (avx2),
    2 cores)", "at 40% of its L2 roof (180 GB/s)"."""
    bound, pct = row.get("roof_bound"), row.get("roof_pct")
    if not isinstance(bound, str) or not bound or not np.isfinite(pct):
        return "no roof measured for it"
    device = "cuda" if row.get("device") == "cuda" else "cpu"
    memory = {m["name"]: m for m in roofs.levels(ceilings, device, roofs.scope(row))}
    if bound in memory:
        return f"at {percent(pct)} of its {bound} roof ({memory[bound]['gb_per_s']:,.0f} GB/s)"
    # compute: the peak it was judged against is the roof it stands under
    peaks = roofs.compute_roofs(ceilings, device)
    named = min(
        peaks,
        default={"name": bound},
        key=lambda r: abs(math.log(r["gflops_per_s"] / row["roof_gflops_per_s"])),
    )
    return f"at {percent(pct)} of its compute roof ({named['name']})"
