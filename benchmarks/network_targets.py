"""The new networks' speed targets, side by side in one run: `python -m benchmarks.network_targets`.

- transformer_block Adam step (GPT-2's pre-norm block) at B=4 T=64 D=128 G=4 on 1 and on 2
  threads: every C rung (c-naive, c-loops, c-blocked, c), the NumPy rung, a hand-written
  plain-NumPy step (benchmarks/plain_numpy_block.py) and PyTorch eager (autograd +
  torch.optim.Adam, same HYPER["adam"], same weights, loss = sum(y * dy) so its gradient is
  the workload's dy; benchmarks/torch_networks.py). Targets: c >= 1.0x PyTorch at both thread
  counts; the NumPy rung at most 1.3x the plain-NumPy step's time.
- conv2d forward at B=32 Q=32 Y=Z=14 F=64, 3x3, stride 1, padding 1 on 1 and 2 threads: every
  C rung, the NumPy rung and torch.nn.functional.conv2d (same weights). Target: c >= 0.8x torch.

As benchmarks/c_targets.py: threads set with threadpoolctl and torch.set_num_threads, every
row with its thread count; every rung's cell goes through the runner's gate (checked against
the float64 reference) before it is timed; the plain step and PyTorch are reference rows, not
gated (PyTorch's output is checked once against the reference, untimed). Contenders are timed
in alternating rounds (benchmarks/alternate.py); c-naive and c-loops once, outside them. Rows
are stored under results/ like a `python -m harness run`.
"""

from __future__ import annotations

import argparse
import operator
import sys

from threadpoolctl import threadpool_limits

from benchmarks.c_targets import C_RUNGS, SLOW, alternated, reference_row
from benchmarks.plain_numpy_block import make_block_step
from benchmarks.torch_networks import make_torch_block_step, make_torch_conv
from harness import models, registry
from harness.execute import grid, lifecycle
from harness.execute.check import check, host_inputs
from harness.measure import timing
from harness.models import HYPER
from harness.results import store

# (workload, numerator, denominator, comparison, goal, label): ratio = numerator's time /
# denominator's time at the same size and thread count, judged by median
TARGETS = (
    ("transformer_block", "pytorch-eager", "c", operator.ge, 1.0, "PyTorch eager time / c time"),
    ("transformer_block", "numpy", "plain-numpy", operator.le, 1.3, "numpy / plain-NumPy time"),
    ("conv2d", "torch.conv2d", "c", operator.ge, 0.8, "torch.conv2d time / c time"),
)


def block_size(spec: str) -> dict:
    B, T, D, G = (int(v) for v in spec.split(","))
    return {"B": B, "T": T, "D": D, "G": G, "opt": "adam"}


def conv_size(spec: str) -> dict:
    """B,Q,Y,F -> the target's geometry: square image, 3x3 kernel, stride 1, padding 1."""
    B, Q, Y, F = (int(v) for v in spec.split(","))
    return {"B": B, "Q": Q, "Y": Y, "Z": Y, "F": F, "J": 3, "L": 3, "stride": 1, "padding": 1}


def optional_torch(args):
    """torch, or None: left out (--no-torch), or not installed (said so)."""
    if args.no_torch:
        return None
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: no PyTorch rows (pip install torch to compare)")
        return None
    return torch


def measured_rows(workload: str, size: dict, phase: str, threads: int, extras: dict, args):
    """Every rung's row of one cell, and a reference row for each of `extras` (name ->
    callable), the fast rungs and the extras timed in alternating rounds."""
    cell_size = tuple(size.items())
    rows, fast = [], {}
    for name in (*C_RUNGS, "numpy"):
        cell = grid.Cell(name, workload, cell_size, phase)
        if reason := registry.unavailable_reason(name):
            rows.append(grid.failed(cell, "unavailable", reason))
            continue
        row, fn = check(registry.create(name), cell, budget=None)
        if fn is None:
            rows.append(row)
        elif name in SLOW:
            stats = timing.measure(fn, time_per_cell_s=args.time_per_cell, min_rounds=1)
            rows.append(lifecycle.finish(row, stats.as_dict()))
        else:
            fast[name] = (row, fn)
    contenders = {name: fn for name, (_, fn) in fast.items()} | extras
    for fn in contenders.values():
        fn()  # warm-up: first-call costs (autograd graph, allocator) stay out of the timing
    stats = alternated(contenders, args)
    for name, (row, _) in fast.items():
        rows.append(lifecycle.finish(row, stats[name].as_dict()))
    template = grid.describe(grid.Cell("numpy", workload, cell_size, phase))
    for name in extras:
        rows.append(lifecycle.finish(reference_row(template, name, threads), stats[name].as_dict()))
    return rows


def block_rows(size: dict, threads: int, torch, args) -> list:
    host = host_inputs("transformer_block", tuple(size.items()), grid.SEED)
    params = [host[k][0].copy() for k in models.BLOCK_PARAMS]  # the cached inputs stay as made
    x_RD, dy_RD = host["x_RD"][0], host["dy_RD"][0]
    extras = {
        "plain-numpy": make_block_step(x_RD, dy_RD, params, size["B"], size["G"], HYPER["adam"])
    }
    if torch:
        extras["pytorch-eager"] = make_torch_block_step(torch, host, size["B"], size["G"])
    return measured_rows("transformer_block", size, "step", threads, extras, args)


def conv_rows(size: dict, threads: int, torch, args) -> list:
    host = host_inputs("conv2d", tuple(size.items()), grid.SEED)
    extras = {}
    if torch:
        extras["torch.conv2d"] = make_torch_conv(torch, host, size["stride"], size["padding"])
    return measured_rows("conv2d", size, "fwd", threads, extras, args)


def report(rows: list) -> None:
    """The table, then each target's ratio by median and by best time, PASS/FAIL by median."""
    print(
        f"\n{'impl':<14} {'threads':>7} {'workload':<18} {'phase':<5} {'status':<11} "
        f"{'median ms':>10} {'best ms':>9} {'GFLOP/s':>8}"
    )
    for r in rows:
        median, best = r.get("t_median_s"), r.get("t_min_s")
        print(
            f"{r['impl']:<14} {r.get('threads', ''):>7} {r['workload']:<18} {r['phase']:<5} "
            f"{r['status']:<11} "
            + (
                f"{median * 1e3:>10.3f} {best * 1e3:>9.3f} {r['gflops_per_s']:>8.2f}"
                if median
                else f"{'':>29}  {r['reason']}"
            )
        )
    print()
    for workload, numer, denom, passes, goal, label in TARGETS:
        found = {(r["impl"], r["size"], r["threads"]): r for r in rows if r["workload"] == workload}
        # the sizes and thread counts either contender ran at (c-blocked's rows, always on one
        # thread, are no target of their own)
        at_pairs = dict.fromkeys((s, t) for name, s, t in found if name in (numer, denom))
        for size, threads in at_pairs:
            at = f"{workload} {size}, {threads} thread(s): {label}"
            pair = [found.get((name, size, threads)) for name in (numer, denom)]
            if not all(r and r["status"] == "ok" for r in pair):
                why = "; ".join(
                    f"{n}: {r['status'] + ' ' + r['reason'] if r else 'no row'}"
                    for n, r in zip((numer, denom), pair)
                    if not (r and r["status"] == "ok")
                )
                print(f"{at}: FAIL, no ratio ({why})")
                continue
            by_median = pair[0]["t_median_s"] / pair[1]["t_median_s"]
            by_best = pair[0]["t_min_s"] / pair[1]["t_min_s"]
            sign = ">=" if passes is operator.ge else "<="
            print(
                f"{at} = {by_median:.2f} by median, {by_best:.2f} by best (target {sign} "
                f"{goal}): {'PASS' if passes(by_median, goal) else 'FAIL'}"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.network_targets", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--block", default="4,64,128,4", metavar="B,T,D,G", help="the block's size (4,64,128,4)"
    )
    parser.add_argument(
        "--conv", default="32,32,14,64", metavar="B,Q,Y,F", help="the conv's size (32,32,14,64)"
    )
    parser.add_argument("--threads", default="1,2", metavar="T,...", help="thread counts (1,2)")
    parser.add_argument("--time-per-cell", type=float, default=2.0, metavar="S")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per cell")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.25,
        metavar="S",
        help="quiet before each contender's round, for spinning pools to sleep",
    )
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--results", default=None, metavar="DIR")
    args = parser.parse_args(argv)
    writer = store.open_run(args.results)
    meta = writer.meta
    # threadpoolctl limits the pools loaded when it is entered: load the C extension's
    # OpenMP and torch's first
    for name in C_RUNGS:
        registry.unavailable_reason(name)
    torch = optional_torch(args)
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        if torch:
            torch.set_num_threads(threads)
        with threadpool_limits(threads):
            rows += block_rows(block_size(args.block), threads, torch, args)
            rows += conv_rows(conv_size(args.conv), threads, torch, args)
    for row in rows:
        writer.append(row)
    print(f"CPU: {meta['cpu']} ({meta['cores']} cores), BLAS: {meta['blas']}")
    report(rows)
    print(f"\nstored {len(rows)} rows in {writer.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
