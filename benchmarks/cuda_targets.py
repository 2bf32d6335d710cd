"""The CUDA rungs' targets, side by side in one run: `python -m benchmarks.cuda_targets`.

- matmul 4096^3 float32, forward: cuda-naive (01), the tiled rungs 02 tiled, 03 blocktile,
  04 vectorized, 05 warptile, and cuda-cublas (cuBLAS, TF32 off). Targets: the best tiled
  rung >= 10x naive, and >= 0.7x cuBLAS.
- MNIST-MLP training step (784-128-64-10, batch 64, SGD): cuda-tiled against PyTorch eager
  (autograd + torch.optim.SGD, loss.item() each step as the contract's float loss does) on
  the same GPU. Target: cuda-tiled at least as fast.

Every cell goes through the runner: checked against the float64 reference before it is
timed with CUDA events (harness/measure/timing_cuda.py), peak device memory from CuPy's pool. The
rows are stored under results/ like a `python -m harness run`. The MNIST pair is timed in
alternating rounds, so drift on the GPU hits both alike. Where there is no GPU it says so
and exits 0.

On a GPU, the checks that CI cannot run, in order:
    pip install cupy-cuda12x torch
    python -m pytest tests/test_cuda_impls.py tests/test_cuda_timing.py  # incl. compute-sanitizer
    python -m pytest tests/test_cuda_emu.py tests/test_cuda_nvcc.py      # as in CI
    python -m benchmarks.cuda_targets
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.torch_mlp import make_torch_step
from harness import registry
from harness.execute import grid, lifecycle
from harness.execute.check import check
from harness.measure.timing import Stats
from harness.results import store
from harness.workloads import WORKLOADS

TILED_RUNGS = ("tiled", "blocktile", "vectorized", "warptile")


def matmul_rows(n: int, time_s: float) -> list:
    cell = lambda impl: grid.Cell(impl, "matmul", (("M", n), ("K", n), ("N", n)), "fwd")
    contenders = [
        ("cuda-naive", {}),
        *(("cuda-tiled", {"kernel": k}) for k in TILED_RUNGS),
        ("cuda-cublas", {}),
    ]
    rows = []
    for name, kwargs in contenders:
        if reason := registry.unavailable_reason(name):
            rows.extend([grid.failed(c, "unavailable", reason) for c in [cell(name)]])
            continue
        impl = registry.get_class(name)(**kwargs)
        rows.append(lifecycle.run_cell(impl, cell(name), None, lifecycle.Timed(time_s)))
    return rows


def torch_step(host: dict, layers: int):
    """A PyTorch eager MNIST step on the same inputs -> (step, sync), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 against float32
    return make_torch_step(torch, host, layers, "cuda"), torch.cuda.synchronize


def mnist_rows(time_s: float, rounds: int = 5) -> list:
    from harness.measure import timing_cuda

    work = WORKLOADS["mnist_mlp"]
    size = work.sizes[0]
    cell = grid.Cell("cuda-tiled", "mnist_mlp", tuple(size.items()), "step")
    impl = registry.create("cuda-tiled")
    row, ours = check(impl, cell, budget=None)
    if ours is None:
        return [row]
    host = work.inputs(size, np.random.default_rng(grid.SEED))
    theirs = torch_step(host, layers=len(size["layers"].split("-")) - 1)
    if theirs is None:
        print(
            "PyTorch with CUDA is not installed: the MNIST step is timed for cuda-tiled "
            "alone (pip install torch to compare)"
        )
        return [lifecycle.finish(row, timing_cuda.measure(ours, impl.sync, time_s).as_dict())]
    ours_stats, theirs_stats = [], []
    for _ in range(rounds):  # alternating A B A B: drift hits both alike
        ours_stats.append(timing_cuda.measure(ours, impl.sync, time_per_cell_s=time_s / rounds))
        theirs_stats.append(timing_cuda.measure(*theirs, time_per_cell_s=time_s / rounds))
    merge = lambda stats: Stats(tuple(t for s in stats for t in s.samples_s), loops=1)
    torch_row = {
        **row,
        "impl": "pytorch-eager",
        "kernel": "torch",
        "peak_mem_bytes": None,
        "rel_err": None,
        "reason": "reference row: not checked by the gate",
    }
    return [
        lifecycle.finish(row, merge(ours_stats).as_dict()),
        lifecycle.finish(torch_row, merge(theirs_stats).as_dict()),
    ]


def report(rows: list) -> None:
    print(
        f"\n{'impl':<14} {'kernel':<11} {'workload':<10} {'status':<6} {'median ms':>10} "
        f"{'GFLOP/s':>9} {'peak MiB':>9}"
    )
    for r in rows:
        median = r.get("t_median_s")
        print(
            f"{r['impl']:<14} {r.get('kernel', ''):<11} {r['workload']:<10} {r['status']:<6} "
            f"{median * 1e3 if median else float('nan'):>10.3f} "
            f"{r.get('gflops_per_s') or float('nan'):>9.0f} "
            f"{(r.get('peak_mem_bytes') or 0) / 2**20:>9.1f}"
            + (f"  {r['reason']}" if r["status"] != "ok" else "")
        )
    speed = {
        (r["impl"], r.get("kernel", "")): r.get("gflops_per_s") or 0
        for r in rows
        if r["workload"] == "matmul" and r["status"] == "ok"
    }
    naive, cublas = speed.get(("cuda-naive", "")), speed.get(("cuda-cublas", ""))
    best = max((speed.get(("cuda-tiled", k), 0), k) for k in TILED_RUNGS)
    if naive and cublas and best[0]:
        print(f"\nbest tiled rung ({best[1]}) / naive: {best[0] / naive:.1f}x (target >= 10)")
        print(f"best tiled rung ({best[1]}) / cuBLAS: {best[0] / cublas:.2f}x (target >= 0.7)")
    steps = {r["impl"]: r.get("t_median_s") for r in rows if r["workload"] == "mnist_mlp"}
    if steps.get("cuda-tiled") and steps.get("pytorch-eager"):
        print(
            f"MNIST step: cuda-tiled {steps['cuda-tiled'] * 1e6:.0f} us, PyTorch eager "
            f"{steps['pytorch-eager'] * 1e6:.0f} us: ratio "
            f"{steps['cuda-tiled'] / steps['pytorch-eager']:.2f} (target <= 1)"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cuda_targets", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", type=int, default=4096, help="n of the n^3 matmul")
    parser.add_argument("--time-per-cell", type=float, default=2.0, metavar="S")
    parser.add_argument("--results", default=None, metavar="DIR")
    args = parser.parse_args(argv)
    if reason := registry.unavailable_reason("cuda-tiled"):
        print(f"no GPU here, nothing to measure: {reason}")
        return 0
    writer = store.open_run(args.results)
    meta = writer.meta
    rows = matmul_rows(args.size, args.time_per_cell) + mnist_rows(args.time_per_cell)
    for row in rows:
        writer.append(row)
    print(f"GPU: {meta['gpu']}")
    report(rows)
    print(f"\nstored {len(rows)} rows in {writer.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
