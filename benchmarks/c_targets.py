"""The C rung's targets, side by side in one run: `python -m benchmarks.c_targets`.

- GEMM float32 n^3, forward, every rung of the CPU ladder (c-naive, c-loops, c-blocked, c)
  against numpy.matmul (OpenBLAS) under the same thread limit: 1024^3 on one thread and
  2048^3 on two (`--gemm 1024:1,2048:2`). Targets: c >= 0.8x numpy.matmul at both.
- MNIST-MLP training step (784-128-64-10, batch 64, SGD) on 1 and on 2 threads: every C rung,
  the NumPy rung, a hand-written plain NumPy step (benchmarks/plain_numpy.py) and PyTorch eager
  (autograd + torch.optim.SGD, where torch is installed). Target: c >= 2x faster than PyTorch.

Threads are set as for BLAS, with threadpoolctl (OpenBLAS and the extension's OpenMP alike)
and torch.set_num_threads for PyTorch; every row records its thread count. Every cell of an
impl goes through the runner: checked against the float64 reference, then timed by
harness/measure/timing.py. numpy.matmul, the plain step and PyTorch are reference rows, not gated.
Contenders are timed in alternating rounds (benchmarks/alternate.py), so load from other work
on a shared machine hits them alike. A rung too slow for `--budget` seconds a cell (c-naive
at 2048^3) is recorded over_budget with its predicted time, fitted from its smaller size
(harness/measure/budget.py). Rows are stored under results/ like a `python -m harness run`.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks import alternate
from benchmarks.plain_numpy import make_step
from benchmarks.torch_mlp import make_torch_step
from harness import registry
from harness.execute import grid, lifecycle
from harness.execute.check import check, host_inputs
from harness.measure import timing
from harness.measure.budget import CALLS_PER_CELL, Budget
from harness.models import HYPER
from harness.results import store
from harness.workloads import WORKLOADS

C_RUNGS = ("c-naive", "c-loops", "c-blocked", "c")
SLOW = ("c-naive", "c-loops")  # timed once, outside the alternating rounds


def reference_row(checked_row: dict, name: str, threads: int) -> dict:
    return {
        **checked_row,
        "impl": name,
        "threads": threads,
        "kernel": "",
        "peak_mem_bytes": None,
        "rel_err": None,
        "status": "ok",
        "reason": "reference row: not checked by the gate",
    }


def alternated(contenders: dict, args) -> dict:
    """name -> Stats of --rounds alternating rounds, --time-per-cell in all, --settle apart."""
    each_s = args.time_per_cell / args.rounds
    per_round = alternate.measure(contenders, args.rounds, each_s, args.settle, min_rounds=2)
    return {name: alternate.pooled(s) for name, s in per_round.items()}


def gemm_rows(n: int, threads: int, budgets: dict, args) -> list:
    size = (("M", n), ("K", n), ("N", n))
    rows, fast = [], {}
    for name in C_RUNGS:
        cell = grid.Cell(name, "matmul", size, "fwd")
        if reason := registry.unavailable_reason(name):
            rows.extend([grid.failed(c, "unavailable", reason) for c in [cell]])
            continue
        impl = registry.create(name)
        row, fn = check(impl, cell, budgets[name])
        if fn is None:
            rows.append({**impl.info(), **row})  # an over-budget row has not asked the impl
        elif name in SLOW:
            stats = timing.measure(fn, time_per_cell_s=args.time_per_cell, min_rounds=1)
            rows.append(lifecycle.finish(row, stats.as_dict(), budgets[name]))
        else:
            fast[name] = (row, fn)
    a_MK, b_KN = (host_inputs("matmul", size, grid.SEED)[k][0] for k in ("a_MK", "b_KN"))
    contenders = {name: fn for name, (_, fn) in fast.items()}
    contenders["numpy.matmul"] = lambda: np.matmul(a_MK, b_KN)
    contenders["numpy.matmul"]()
    stats = alternated(contenders, args)
    template = grid.describe(grid.Cell("numpy", "matmul", size, "fwd"))
    for name, (row, _) in fast.items():
        rows.append(lifecycle.finish(row, stats[name].as_dict(), budgets[name]))
    rows.append(
        lifecycle.finish(
            reference_row(template, "numpy.matmul", threads), stats["numpy.matmul"].as_dict()
        )
    )
    return rows


def torch_step(host: dict, layers: int, threads: int):
    """A PyTorch eager MNIST step on the same inputs, on the CPU, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return make_torch_step(torch, host, layers)


def mnist_rows(threads: int, args) -> list:
    work = WORKLOADS["mnist_mlp"]
    size = work.sizes[0]
    layers = len(size["layers"].split("-")) - 1
    rows, checked = [], {}
    for name in (*C_RUNGS, "numpy"):
        cell = grid.Cell(name, "mnist_mlp", tuple(size.items()), "step")
        if reason := registry.unavailable_reason(name):
            rows.extend([grid.failed(c, "unavailable", reason) for c in [cell]])
            continue
        row, fn = check(registry.create(name), cell, budget=None)
        if fn is None:
            rows.append(row)
            continue
        row.setdefault("threads", threads)  # the NumPy rung's info() has none: BLAS's limit
        checked[name] = (row, fn)
    host = work.inputs(size, np.random.default_rng(grid.SEED))
    params = [
        host[f"{wb}{layer}_{dims}"][0].copy()
        for layer in range(layers)
        for wb, dims in (("w", "IO"), ("b", "O"))
    ]
    contenders = {name: fn for name, (_, fn) in checked.items()}
    contenders["plain-numpy"] = make_step(
        host["x_BI"][0], host["labels_B"][0], params, np.float32(HYPER["sgd"]["lr"])
    )
    theirs = None if args.no_torch else torch_step(host, layers, threads)
    if theirs is None and not args.no_torch:
        print("PyTorch is not installed: no PyTorch row (pip install torch==2.13.0 to compare)")
    elif theirs is not None:
        contenders["pytorch-eager"] = theirs
    for fn in contenders.values():
        fn()  # warm-up: first-call costs (autograd graph, allocator) stay out of the timing
    stats = alternated(contenders, args)
    template = grid.describe(grid.Cell("numpy", "mnist_mlp", tuple(size.items()), "step"))
    for name, (row, _) in checked.items():
        rows.append(lifecycle.finish(row, stats[name].as_dict()))
    for name in ("plain-numpy", "pytorch-eager"):
        if name in stats:
            rows.append(
                lifecycle.finish(reference_row(template, name, threads), stats[name].as_dict())
            )
    return rows


def report(rows: list) -> None:
    """The table, then each target's ratio by median time and by best time (on a shared
    machine the median carries the other work's load, the best shows what the code can do)."""
    print(
        f"\n{'impl':<14} {'threads':>7} {'workload':<10} {'size':<26} {'status':<11} "
        f"{'median ms':>10} {'best ms':>9} {'GFLOP/s':>8}"
    )
    for r in rows:
        median, rate = r.get("t_median_s"), r.get("gflops_per_s")
        shown = f"{median * 1e3:>10.3f}" if median else f"{'':>10}"
        if r.get("t_predicted_s"):  # over budget: the predicted time of one call
            median = r["t_predicted_s"] / CALLS_PER_CELL
            shown, rate = f"~{median * 1e3:>9.0f}", r["flops"] / median / 1e9
        best = f"{r['t_min_s'] * 1e3:>9.3f}" if r.get("t_min_s") else f"{'':>9}"
        print(
            f"{r['impl']:<14} {r.get('threads', ''):>7} {r['workload']:<10} {r['size']:<26} "
            f"{r['status']:<11} {shown} {best} {rate if rate else float('nan'):>8.2f}"
            + (f"  {r['reason']}" if r["status"] != "ok" else "")
        )
    print()
    # ratio = time of `theirs` / time of `ours`, at the same size and thread count
    for workload, theirs, ours, goal, label in (
        ("matmul", "numpy.matmul", "c", 0.8, "c / numpy.matmul speed"),
        ("mnist_mlp", "pytorch-eager", "c", 2.0, "PyTorch eager time / c time"),
    ):
        times = {
            (r["impl"], r["size"], r["threads"]): (r["t_median_s"], r["t_min_s"])
            for r in rows
            if r["workload"] == workload and r["status"] == "ok"
        }
        for (impl, size, threads), (median, best) in times.items():
            if impl == theirs and (ours, size, threads) in times:
                by_median = median / times[(ours, size, threads)][0]
                by_best = best / times[(ours, size, threads)][1]
                print(
                    f"{workload} {size}, {threads} thread(s): {label} = {by_median:.2f} by "
                    f"median, {by_best:.2f} by best (target >= {goal}): "
                    f"{'met' if by_median >= goal else 'NOT met'} by median"
                )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.c_targets", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--gemm",
        default="1024:1,2048:2",
        metavar="N:THREADS,...",
        help="the GEMM sizes and their thread counts (default 1024:1,2048:2)",
    )
    parser.add_argument("--mnist-threads", default="1,2", metavar="T,...")
    parser.add_argument("--time-per-cell", type=float, default=2.0, metavar="S")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per cell")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        metavar="S",
        help="the most seconds one cell may take, else predicted (over_budget)",
    )
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
    if reason := registry.unavailable_reason("c"):
        print(f"the C rung cannot run here, nothing to measure: {reason}")
        return 0
    writer = store.open_run(args.results)
    meta = writer.meta
    budgets = {name: Budget(args.budget) for name in C_RUNGS}
    rows = []
    for spec in args.gemm.split(","):
        n, threads = (int(v) for v in spec.split(":"))
        with threadpool_limits(threads):
            rows += gemm_rows(n, threads, budgets, args)
    for threads in (int(t) for t in args.mnist_threads.split(",")):
        with threadpool_limits(threads):
            rows += mnist_rows(threads, args)
    for row in rows:
        writer.append(row)
    print(f"CPU: {meta['cpu']} ({meta['cores']} cores), BLAS: {meta['blas']}")
    report(rows)
    print(f"\nstored {len(rows)} rows in {writer.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
