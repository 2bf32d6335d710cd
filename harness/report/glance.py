"""The report's opening: per workload, one line on what the ladder buys and what limits its
fastest rung, over a small bar chart of every rung that ran ok at the workload's headline size
(harness/report/headline.py says which size that is), slowest first. The bars are the page's
own (HTML, the palette's colours): their length is the time on a log scale.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.compare import format_seconds
from harness.report import bounds
from harness.report.headline import PICK, at_size, flag, times


def short(size: str) -> str:
    """'M=1024 K=1024 N=1024' -> '1024³'; any other size as it is."""
    parts = dict(part.split("=", 1) for part in size.split() if "=" in part)
    square = list(parts) == ["M", "K", "N"] and len(set(parts.values())) == 1
    return f"{parts['M']}³" if square else size


def lines(cells: pd.DataFrame, sizes: dict, palette: dict, ceilings) -> list:
    """Per workload (in `cells` order): its sentence and its bars, slowest rung first."""
    out = []
    for workload in dict.fromkeys(cells["workload"]):
        phase = next(
            (p for p in PICK if (workload, p) in sizes),
            next((p for w, p in sizes if w == workload), None),
        )
        if phase is None:
            continue
        size = sizes[(workload, phase)]
        rows = at_size(cells, workload, phase, size)
        rows = rows[rows["ok"]].sort_values("t_median_s", ascending=False, kind="stable")
        slowest, fastest = rows.iloc[0], rows.iloc[-1]
        speedup = slowest["t_median_s"] / fastest["t_median_s"]
        sentence = (
            f"{fastest['impl']} is {times(speedup)}x faster than {slowest['impl']}; "
            if len(rows) > 1
            else f"only {fastest['impl']} ran it; "
        )
        # bar lengths on a log scale that starts a decade below the fastest rung
        low = math.log10(fastest["t_median_s"]) - 1
        span = math.log10(slowest["t_median_s"]) - low
        bars = [
            {
                "impl": r["impl"],
                "colour": palette[r["impl"]],
                "flag": flag(r),
                "time": format_seconds(r["t_median_s"]),
                "speedup": times(slowest["t_median_s"] / r["t_median_s"]),
                "width": 100 * (math.log10(r["t_median_s"]) - low) / span,
            }
            for _, r in rows.iterrows()
        ]
        out.append(
            {
                "title": f"{workload} {short(size)} {phase}",
                "line": sentence + bounds.words(fastest, ceilings),
                "bars": bars,
                "flag": flag(fastest),
            }
        )
    return out
