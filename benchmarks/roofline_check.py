"""Does any cell plot above its roof? `python -m benchmarks.roofline_check [--results DIR]`.

Reads this machine's stored runs (harness.results.store.load), judges every ok row with
harness/measure/roofs.judge against this machine's ceilings and prints how many plot above
their roof (the goal: none; a roof under a measured point teaches the wrong thing), the worst
offenders, the measured ceilings, and the C GEMM at 1024^3 on one thread (c-blocked, matmul
fwd) as a fraction of one core's FMA peak where such a row exists. Ceilings stored before the
hierarchy existed are measured again (~10 s), as is any with --remeasure.
Exit status 1 when some cell is above its roof.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from harness.measure import roofs
from harness.results import ceilings as machine_ceilings
from harness.results import machine, store


def judged(rows: pd.DataFrame, ceilings: dict) -> pd.DataFrame:
    """The ok rows with their verdict's columns (roof_level, roof_bound, roof_gflops_per_s,
    roof_pct) and working_set_bytes."""
    ok = rows[rows["status"] == "ok"].reset_index(drop=True)
    verdicts = pd.DataFrame([roofs.judge(r, ceilings) for _, r in ok.iterrows()], index=ok.index)
    return ok.assign(
        working_set_bytes=[roofs.working_set(r) for _, r in ok.iterrows()],
        **{c: verdicts[c] for c in verdicts.columns},
    )


def describe_ceilings(ceilings: dict) -> list:
    lines = [
        f"ceilings of {ceilings['machine']}, measured {ceilings.get('measured_at', '?')} "
        f"in {ceilings.get('measure_s', float('nan')):.1f} s "
        f"(other work running then: {ceilings.get('others_running', '?')} threads)"
    ]
    lines += [
        f"  {r['name']:<32} {r['gflops_per_s']:8.1f} GFLOP/s" for r in roofs.compute_roofs(ceilings)
    ]
    for lv in ceilings["levels"]:
        size = "beyond L3" if lv["bytes"] is None else f"{lv['bytes'] / 1024:.0f} KiB"
        figures = ", ".join(
            f"{kind} {lv[f'{kind}_gb_per_s'][s]:.1f}" for s in roofs.SCOPES for kind in roofs.KINDS
        )
        lines.append(
            f"  {lv['name']:<4} {size:>12}: GB/s (1 core, then {ceilings['cores']}): {figures}"
        )
    for scope in roofs.SCOPES:
        roof = ", ".join(
            f"{lv['name']} {lv['gb_per_s']:.1f}" for lv in roofs.levels(ceilings, "cpu", scope)
        )
        lines.append(f"  roofs' bandwidth, {scope.replace('_', ' ')}: {roof} GB/s")
    lines += [
        f"  GPU {lv['name']}: {lv['gb_per_s']:.1f} GB/s" for lv in roofs.levels(ceilings, "cuda")
    ]
    return lines


def gemm_line(cells: pd.DataFrame, ceilings: dict) -> str:
    """c-blocked's matmul fwd at M=K=N=1024 (one thread), newest row, against one core's FMA."""
    at = cells[
        (cells["impl"] == "c-blocked") & (cells["workload"] == "matmul") & (cells["phase"] == "fwd")
    ]
    if all(letter in at for letter in "MKN"):
        at = at[(at["M"] == 1024) & (at["K"] == 1024) & (at["N"] == 1024)]
    else:
        at = at.iloc[0:0]
    if at.empty:
        return "c-blocked matmul 1024^3 fwd: no ok row in these results"
    row = at.sort_values("timestamp").iloc[-1]
    peak = ceilings["fma_gflops_per_s"]["one_core"]
    return (
        f"c-blocked matmul 1024^3 fwd, {row['threads']:.0f} thread: "
        f"{row['gflops_per_s']:.1f} GFLOP/s = {100 * row['gflops_per_s'] / peak:.0f}% of "
        f"one core's FMA peak ({peak:.1f})"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.roofline_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--results", default=None, help="results folder (default: results/)")
    parser.add_argument("--remeasure", action="store_true", help="measure the ceilings again")
    parser.add_argument("--worst", type=int, default=10, help="offenders to list (default 10)")
    args = parser.parse_args(argv)
    name = machine.machine_name()
    stored = None if args.remeasure else machine_ceilings.read(name, args.results)
    if stored is None or "levels" not in stored:
        print("measuring this machine's ceilings (~10 s) ...", file=sys.stderr)
        stored = machine_ceilings.for_this_machine(args.results, remeasure=True)
    print("\n".join(describe_ceilings(stored)))
    rows = store.load(args.results)
    cells = judged(rows[rows["machine"] == name], stored)
    if cells.empty or "roof_pct" not in cells:
        print(f"no ok row of {name} with a time in {args.results or store.RESULTS}")
        return 0
    cells = cells.dropna(subset=["roof_pct"])
    above = cells[cells["roof_pct"] > 100].sort_values("roof_pct", ascending=False)
    print(
        f"\n{len(above)} of {len(cells)} ok rows ({cells['run_id'].nunique()} runs) plot above "
        "their roof"
    )
    worst = above if len(above) else cells.sort_values("roof_pct", ascending=False)
    print("worst offenders:" if len(above) else "closest to their roof:")
    for _, r in worst.head(args.worst).iterrows():
        print(
            f"  {r['impl']:<12} {r['workload']:<10} {r['size']:<28} {r['phase']:<4} "
            f"threads {r['threads']:.0f}  set {r['working_set_bytes'] / 2**20:8.3f} MiB in "
            f"{r['roof_level']:<4} {r['gflops_per_s']:8.2f} of {r['roof_gflops_per_s']:8.2f} "
            f"GFLOP/s ({r['roof_bound']}): {r['roof_pct']:.0f}%"
        )
    by_level = cells.groupby(["roof_level", "roof_bound"])["roof_pct"].agg(["size", "max"])
    print("rows by level and bound (count, highest % of roof):")
    print(by_level.round(1).to_string())
    print("\n" + gemm_line(cells, stored))
    return 1 if len(above) else 0


if __name__ == "__main__":
    sys.exit(main())
