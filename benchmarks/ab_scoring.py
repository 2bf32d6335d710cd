"""A trial of `ab` scored: its runs split into sides, compared as `ab` compares them, and every
cell timed on both sides checked against the verdict expected of it.
"""

from __future__ import annotations

from pathlib import Path

from harness import compare
from harness.results import store


def sides(results: Path) -> tuple:
    """A trial's stored runs -> (base rows, head rows): `ab` ran them A B A B, oldest first."""
    table = store.load(results)
    order = (
        table[["timestamp", "run_id"]]
        .drop_duplicates()
        .sort_values(["timestamp", "run_id"])["run_id"]
        .tolist()
    )
    return tuple(table[table["run_id"].isin(order[side::2])] for side in (0, 1))


def misses(result, target: str, inject: str) -> list:
    """The cells timed on both sides whose verdict is not the one expected."""
    result = result[result["ratio"].notna()]
    expected = (
        "same"
        if target == "self"
        else result["impl"].map(lambda impl: "slower" if impl == inject else "same")
    )
    return result.loc[
        result["verdict"] != expected,
        ["impl", "workload", "size", "phase", "ratio", "ci_low", "ci_high", "verdict"],
    ].to_dict("records")


def score(figures: dict, target: str, results: Path, inject: str) -> str:
    """Compare one trial's runs, fold the outcome into figures."""
    base_rows, head_rows = sides(results)
    f = figures.setdefault(
        target, {"trials": 0, "passed": 0, "cells": [], "misses": [], "injected_ratios": []}
    )
    f["trials"] += 1
    result = compare.compare(base_rows, head_rows)
    missed = misses(result, target, inject)
    f["passed"] += not missed
    f["misses"].append(missed)
    f["rate"] = f["passed"] / f["trials"]
    f["cells"].append(int(result["ratio"].notna().sum()))
    if target == "injected":
        f["injected_ratios"].append(float(result.loc[result["impl"] == inject, "ratio"].median()))
    text = "; ".join(
        f"{r['impl']} {r['workload']} {r['size']} {r['phase']} {r['ratio']:.3f} "
        f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] {r['verdict']}"
        for r in missed
    )
    return (
        f"{target} trial {f['trials']}: {'FAIL: ' + text if text else 'pass'} "
        f"({f['cells'][-1]} cells)"
    )


def summary(figures: dict) -> str:
    return "\n".join(
        f"{target}: {f['passed']}/{f['trials']} trials pass ({f['rate']:.0%}); "
        f"{min(f['cells'])}-{max(f['cells'])} cells a trial"
        for target in ("self", "injected")
        if (f := figures.get(target))
    )
