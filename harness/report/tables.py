"""The report's tables, as rows for the template: what could not run and why, every other
status in counts, the ladder at each headline size, the CUDA GEMM ladder where its rows
exist, and the correctness of every cell.

Each takes the latest cells of one machine (one row per impl, workload, size and phase) and,
where it orders impls, the ladder order. Unstable rows carry the rules they broke (`flag`).
"""

from __future__ import annotations

import re
from pathlib import Path

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


KERNEL_SOURCES = Path(__file__).resolve().parents[2] / "kernels" / "cuda"
# The GEMM rungs with no kernel file of ours: (their name in the table, what they add).
LIBRARIES = {
    "cublas": ("cuBLAS", "NVIDIA's float32 GEMM, TF32 off: the reference above the ladder")
}


def rung_note(rung: str) -> str:
    """What a rung of the CUDA GEMM ladder adds: its kernel file's `// Adds:` header line."""
    if rung in LIBRARIES:
        return LIBRARIES[rung][1]
    path = KERNEL_SOURCES / f"{rung}.cu"
    found = re.search(r"^// Adds: (.+)$", path.read_text(), re.M) if path.exists() else None
    return found.group(1) if found else ""


def cuda_ladder(rows: pd.DataFrame) -> dict | None:
    """The CUDA GEMM ladder, rung 00 up to cuBLAS: the newest ok matmul fwd row of each rung
    (the row's gemm_rung: a kernel file's stem, or a library) at the size and GPU timing mode
    most rungs ran, with its speedup over the rung below and over the first, and what its
    kernel adds. None without such rows (cuda-tiled's carry a rung only when its kernel is
    fixed, as benchmarks/cuda_targets.py fixes it)."""
    if "gemm_rung" not in rows or rows.empty:
        return None
    done = rows[
        rows["gemm_rung"].map(lambda r: isinstance(r, str))
        & (rows["workload"] == "matmul")
        & (rows["phase"] == "fwd")
        & timed(rows)
    ]
    if done.empty:
        return None
    mode = done["gpu_timing"] if "gpu_timing" in done else pd.Series("events", done.index)
    done = done.assign(mode=mode.map(lambda m: m if isinstance(m, str) else "events"))
    done = done.sort_values("timestamp", kind="stable")
    done = done.drop_duplicates(["gemm_rung", "size", "mode"], keep="last")
    groups = done.groupby(["size", "mode"]).agg(
        rungs=("gemm_rung", "nunique"), flops=("flops", "max")
    )
    size, mode = groups.sort_values(["rungs", "flops"], kind="stable").index[-1]
    here = done[(done["size"] == size) & (done["mode"] == mode)].sort_values("gemm_rung")
    first, below, out = here["t_median_s"].iloc[0], None, []
    for _, r in here.iterrows():
        seconds, tiles = r["t_median_s"], r["gemm_rung"] == "05_warptile"  # which tiles ran
        out.append(
            {
                "rung": LIBRARIES.get(r["gemm_rung"], (r["gemm_rung"],))[0],
                "impl": f"{r['impl']} {text(r.get('warptile')) if tiles else ''}".strip(),
                "time": format_seconds(seconds),
                "gflops": number(r["gflops_per_s"], ",.0f"),
                "over_below": f"{times(below / seconds)}x" if below else "",
                "over_first": f"{times(first / seconds)}x" if below else "",
                "adds": rung_note(r["gemm_rung"]),
                "flag": flag(r),
            }
        )
        below = seconds
    return {"size": size, "mode": mode, "rows": out}


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
