"""Tune rung 05's tiles for this GPU: `python -m benchmarks.warptile_sweep`.

Every tiling of impls/_cuda_warptile.py's GRID in turn: built (NVRTC, its -D options), through
the correctness gate (bmm on odd shapes: partial tiles in M, N and K, and a batch, against the
float64 reference; then the runner's own check of the n^3 cell), and only then timed at n^3
(4096 by default) in the chosen GPU timing mode. The fastest tiling that passed is stored as
this GPU's choice in results/warptile.json, which cuda-tiled reads when it is made (the
default tiles where a GPU has none); every tiling's row goes to a run under results/ like any
other, with its tiles in `warptile`. Where there is no GPU it says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from harness import registry
from harness.execute import grid, lifecycle
from harness.measure import gpu_options
from harness.measure.gate import rel_err
from harness.reference import Reference
from harness.results import store
from impls._cuda_warptile import CHOICES, DEFAULT, GRID, record

TOL = 1e-5  # float32 against float64, sums of at most a few hundred terms
# (X, M, K, N): partial tiles in M, N and K for every tiling of GRID, more than one tile in M
# and N, a batch with one float4 of K. K and N multiples of 4: the rung's layout contract.
ODD_SHAPES = [(1, 37, 44, 52), (1, 131, 20, 260), (3, 5, 4, 8)]


def wrong_on_odd_shapes(impl) -> str | None:
    """Why the impl's products are wrong on ODD_SHAPES, or None when they are right."""
    ref, rng = Reference(), np.random.default_rng(grid.SEED)
    for X, M, K, N in ODD_SHAPES:
        a_XMK = rng.standard_normal((X, M, K)).astype(np.float32)
        b_XKN = rng.standard_normal((X, K, N)).astype(np.float32)
        c_XMN = impl.get(impl.bmm(impl.put(a_XMK, "activation"), impl.put(b_XKN, "weight")))
        err = rel_err([c_XMN], [ref.bmm(a_XMK, b_XKN)])
        if not err <= TOL:
            return f"bmm (X, M, K, N) = {X, M, K, N}: rel err {err:.3g} > {TOL}"
    return None


def sweep(n: int, time_s: float) -> list:
    """One row per tiling of GRID: gated, then timed at n^3 if right."""
    tiled = registry.get_class("cuda-tiled")
    cell = grid.Cell("cuda-tiled", "matmul", (("M", n), ("K", n), ("N", n)), "fwd")
    rows = []
    for tiles in GRID:
        fields = {"kernel": "warptile", "gemm_rung": "05_warptile", "warptile": tiles.label}
        try:
            impl = tiled(kernel="warptile", warptile=tiles)
            wrong = wrong_on_odd_shapes(impl)
        except Exception as error:  # noqa: BLE001 - a build or launch failure is its result
            rows.append(
                {**grid.failed(cell, "error", f"{type(error).__name__}: {error}"), **fields}
            )
            continue
        if wrong:
            rows.append({**grid.failed(cell, "wrong", wrong), **fields})
            continue
        rows.append(lifecycle.run_cell(impl, cell, None, lifecycle.Timed(time_s)))
    return rows


def best(rows: list):
    """(the fastest right tiling, its row), or (None, None) when none passed."""
    done = [r for r in rows if r["status"] == "ok" and r.get("gflops_per_s")]
    if not done:
        return None, None
    row = max(done, key=lambda r: r["gflops_per_s"])
    return next(t for t in GRID if t.label == row["warptile"]), row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.warptile_sweep", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", type=int, default=4096, help="n of the n^3 matmul timed")
    parser.add_argument("--time-per-cell", type=float, default=1.0, metavar="S")
    parser.add_argument("--gpu-timing", choices=gpu_options.MODES, default="events")
    parser.add_argument("--results", default=None, metavar="DIR", help="where the rows go")
    parser.add_argument(
        "--choices", default=None, metavar="FILE", help=f"where the choice goes (default {CHOICES})"
    )
    args = parser.parse_args(argv)
    if reason := registry.unavailable_reason("cuda-tiled"):
        print(f"no GPU here, nothing to tune: {reason}")
        return 0
    os.environ[gpu_options.MODE_VAR] = args.gpu_timing  # what lifecycle's timer reads
    from impls._cuda_base import gpu_name

    writer = store.open_run(args.results)
    rows = sweep(args.size, args.time_per_cell)
    for row in rows:
        writer.append(row)
    gpu = gpu_name()
    print(f"\n{gpu}: matmul {args.size}^3, GPU timing {args.gpu_timing}")
    print(f"{'tiles':<28} {'threads':>7} {'status':<7} {'median ms':>10} {'GFLOP/s':>9}")
    for tiles, row in zip(GRID, rows):
        median = row.get("t_median_s")
        print(
            f"{tiles.label:<28} {tiles.threads:>7} {row['status']:<7} "
            f"{median * 1e3 if median else float('nan'):>10.3f} "
            f"{row.get('gflops_per_s') or float('nan'):>9.0f}"
            + (f"  {row['reason']}" if row["status"] != "ok" else "")
        )
    chosen, row = best(rows)
    if chosen is None:
        print("no tiling passed the gate: nothing stored, cuda-tiled keeps the default")
        return 1
    default = next((r for t, r in zip(GRID, rows) if t == DEFAULT and r["status"] == "ok"), None)
    details = {
        "gflops_per_s": row["gflops_per_s"],
        "n": args.size,
        "gpu_timing": args.gpu_timing,
        "measured_at": writer.meta["timestamp"],
        "commit": writer.meta["commit"],
        "run": writer.path.name,
        "tried": {r["warptile"]: r.get("gflops_per_s") or r["status"] for r in rows},
    }
    path = record(gpu, chosen, details, Path(args.choices) if args.choices else None)
    versus = (
        f", {row['gflops_per_s'] / default['gflops_per_s']:.2f}x the default" if default else ""
    )
    print(f"\nchosen for {gpu}: {chosen.label}{versus}; stored in {path}")
    print(f"rows stored in {writer.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
