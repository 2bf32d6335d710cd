"""The report's tables, as rows for the template: what could not run and why, every other
status in counts, the ladder at each headline size, and the correctness of every cell.

Each takes the latest cells of one machine (one row per impl, workload, size and phase) and,
where it orders impls, the ladder order. Unstable rows carry the rules they broke (`flag`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from harness.compare import format_seconds
from harness.report import bounds
from harness.report.headline import at_size, flag, text, timed, times


def number(value, fmt: str) -> str:
    return "" if value is None or not np.isfinite(value) else format(value, fmt)


def cell_name(row) -> str:
    return f"{row['workload']} {row['phase']} {row['size']}"


def unavailable(cells: pd.DataFrame) -> list:
    """One row per impl that cannot run here: its reason (the most frequent), its cells."""
    rows = cells[cells["status"] == "unavailable"]
    return [
        {
            "impl": impl,
            "status": "unavailable",
            "cells": len(group),
            "reason": group["reason"].map(text).mode().iloc[0],
        }
        for impl, group in rows.groupby("impl", sort=False)
    ]


def other_statuses(cells: pd.DataFrame, order: list) -> list:
    """Every status but ok and unavailable, per impl: one row per status and reason, with the
    cells it holds; over budget cells by impl alone, each with its predicted time."""
    rows = cells[~cells["status"].isin(["ok", "unavailable"])]
    if rows.empty:
        return []
    over = rows["status"] == "over_budget"
    names = rows.apply(cell_name, axis=1)
    rows = rows.assign(
        why=rows["reason"].map(text).where(~over, "predicted over the time budget"),
        what=names.where(~over, names + " ~" + rows["t_predicted_s"].map(format_seconds)),
    )
    rank = {impl: i for i, impl in enumerate(order)}
    out = [
        {
            "impl": impl,
            "status": status,
            "cells": len(group),
            "reason": why,
            "where": "; ".join(group["what"]),
        }
        for (impl, status, why), group in rows.groupby(["impl", "status", "why"], sort=False)
    ]
    return sorted(out, key=lambda r: (rank.get(r["impl"], len(rank)), r["status"]))


def _cell(row, fastest_s: float, base_s: float, ceilings) -> dict:
    """One impl at one headline size: time, speedup over the row's slowest rung, % of roof."""
    if not row["ok"]:
        predicted = (
            f"predicted {format_seconds(row['t_predicted_s'])}"
            if row["status"] == "over_budget"
            else ""
        )
        return {
            "status": row["status"],
            "text": row["status"].replace("_", " "),
            "sub": predicted,
            "flag": "",
            "title": f"{row['impl']} {row['size']}: {text(row['reason'])}",
        }
    roof = f" · {bounds.percent(row['roof_pct'])}" if np.isfinite(row["roof_pct"]) else ""
    return {
        "status": "ok",
        "text": format_seconds(row["t_median_s"]),
        "flag": flag(row),
        "best": row["t_median_s"] == fastest_s,
        "sub": (
            "slowest" if row["t_median_s"] == base_s else f"{times(base_s / row['t_median_s'])}x"
        )
        + roof,
        "title": f"{row['impl']} {row['size']}: {number(row['gflops_per_s'], '.3g')} "
        f"GFLOP/s, {bounds.words(row, ceilings)}",
    }


def ladder(cells: pd.DataFrame, sizes: dict, order: list, ceilings) -> dict:
    """Per workload and phase, every impl that can run here, at the headline size."""
    shown = [i for i in order if (cells.loc[cells["impl"] == i, "status"] != "unavailable").any()]
    rows = []
    for (workload, phase), size in sizes.items():
        here = at_size(cells, workload, phase, size).set_index("impl", drop=False)
        ok = here.loc[here["ok"], "t_median_s"]
        rows.append(
            {
                "workload": workload,
                "phase": phase,
                "size": size,
                "base": ok.idxmax(),
                "cells": [
                    _cell(here.loc[i], ok.min(), ok.max(), ceilings)
                    if i in here.index
                    else {"status": "", "text": ""}
                    for i in shown
                ],
            }
        )
    return {"impls": shown, "rows": rows}


def rule(broken: str) -> str:
    """The rule one part of an unstable_reason names, without its numbers: "spread 23.7% >=
    10% (stddev / mean)" -> "spread", "5 rounds < 6 (...)" -> "rounds"."""
    return re.match(r"[\d.]*\s*([^\d]*)", broken).group(1).strip(" :<>=") or broken


def unstable(cells: pd.DataFrame, order: list) -> dict:
    """The unstable cells: how many of the timed ones, per impl with the rules broken most
    often, and each cell with every rule it broke."""
    rows = cells[timed(cells)]
    flagged = rows[rows.apply(flag, axis=1).astype(bool)] if not rows.empty else rows
    by_impl = []
    for impl in [i for i in order if i in set(flagged["impl"])]:
        mine = flagged[flagged["impl"] == impl]
        rules = pd.Series([rule(part) for r in mine.apply(flag, axis=1) for part in r.split("; ")])
        by_impl.append(
            {
                "impl": impl,
                "cells": len(mine),
                "of": int((rows["impl"] == impl).sum()),
                "rules": ", ".join(f"{k} {n}" for k, n in rules.value_counts().items()),
            }
        )
    return {
        "cells": len(flagged),
        "of": len(rows),
        "by_impl": by_impl,
        "each": [f"{r['impl']} {cell_name(r)}: {flag(r)}" for _, r in flagged.iterrows()],
    }


def correctness(cells: pd.DataFrame, order: list, ranks: dict) -> list:
    """Every cell that was tried here (unavailable ones were not), by workload and impl."""
    rows = cells[cells["status"] != "unavailable"]
    rank = {"impl": {impl: i for i, impl in enumerate(order)}, "workload": ranks}
    rows = rows.sort_values(["workload", "impl"], kind="stable", key=lambda c: c.map(rank[c.name]))
    return [
        {
            "impl": r["impl"],
            "workload": r["workload"],
            "size": r["size"],
            "phase": r["phase"],
            "status": r["status"],
            "reason": text(r["reason"]),
            "rel_err": number(r["rel_err"], ".2e"),
            "tol": number(r["tol"], ".0e"),
            "flag": flag(r),
        }
        for _, r in rows.iterrows()
    ]
