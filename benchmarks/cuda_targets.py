"""The CUDA rungs' targets, side by side in one run: `python -m benchmarks.cuda_targets`.

- matmul 4096^3 float32, forward, the GEMM ladder: cuda-uncoalesced (00), cuda-naive (01),
  the tiled rungs 02 tiled, 03 blocktile, 04 vectorized, 05 warptile (the tiles the sweep
  chose for this GPU, benchmarks/warptile_sweep.py), and cuda-cublas (cuBLAS, TF32 off).
  Targets: the best tiled rung >= 10x naive, and >= 0.7x cuBLAS.
- MNIST-MLP training step (784-128-64-10, batch 64, SGD): cuda-tiled against PyTorch eager
  (autograd + torch.optim.SGD, loss.item() each step as the contract's float loss does) on
  the same GPU. Target: cuda-tiled at least as fast.

Every cell goes through the runner: checked against the float64 reference before it is
timed (harness/measure/timing_cuda.py) in each mode --gpu-timing names (events, graph,
kernel; a comma list runs them in turn), peak device memory from CuPy's pool. The rows are
stored under results/ like a `python -m harness run`, each with its gpu_timing. The MNIST
pair is timed in alternating rounds, so drift on the GPU hits both alike; not in graph mode,
where neither step can be captured (both read their loss on the host). Where there is no GPU
it says so and exits 0.

On a GPU, the checks that CI cannot run are one script, benchmarks/gpu_session.sh (about 8
minutes on an H200; every log under $OUT): the GPU tests, compute-sanitizer's memcheck and
racecheck over every kernel, the warptile sweep, then this in all three timing modes.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from benchmarks.torch_mlp import make_torch_step
from harness import registry
from harness.execute import grid, lifecycle
from harness.execute.check import check
from harness.measure import gpu_options
from harness.results import store
from harness.workloads import WORKLOADS

TILED_RUNGS = ("tiled", "blocktile", "vectorized", "warptile")


def matmul_rows(n: int, time_s: float) -> list:
    cell = lambda impl: grid.Cell(impl, "matmul", (("M", n), ("K", n), ("N", n)), "fwd")
    contenders = [
        ("cuda-uncoalesced", {}),
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


def mnist_rows(time_s: float, mode: str, rounds: int = 5) -> list:
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
        stats = timing_cuda.measure(ours, impl.sync, time_s, mode=mode)
        return [lifecycle.finish(row, stats.as_dict())]
    ours_stats, theirs_stats = [], []
    for _ in range(rounds):  # alternating A B A B: drift hits both alike
        ours_stats.append(timing_cuda.measure(ours, impl.sync, time_s / rounds, mode=mode))
        theirs_stats.append(timing_cuda.measure(*theirs, time_s / rounds, mode=mode))

    def merge(stats):  # the rounds' samples as one; the launch overhead their median
        overheads = sorted(s.launch_overhead_s for s in stats if s.launch_overhead_s is not None)
        samples = tuple(t for s in stats for t in s.samples_s)
        overhead = overheads[len(overheads) // 2] if overheads else None
        return timing_cuda.GpuStats(samples, 1, mode=mode, launch_overhead_s=overhead)

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


def report(rows: list, mode: str) -> None:
    """The rows of one timing mode: the GEMM ladder with each rung's speedup over the one
    above it in the table, the MNIST pair, and the targets."""
    print(
        f"\nGPU timing: {mode}\n{'impl':<16} {'kernel':<11} {'workload':<10} {'status':<6} "
        f"{'median ms':>10} {'GFLOP/s':>9} {'x above':>8} {'launch us':>9} {'peak MiB':>9}"
    )
    above = None
    for r in rows:
        median, overhead = r.get("t_median_s"), r.get("launch_overhead_s")
        ladder = r["workload"] == "matmul" and median
        print(
            f"{r['impl']:<16} {r.get('kernel', ''):<11} {r['workload']:<10} {r['status']:<6} "
            f"{median * 1e3 if median else float('nan'):>10.3f} "
            f"{r.get('gflops_per_s') or float('nan'):>9.0f} "
            f"{above / median if ladder and above else float('nan'):>8.2f} "
            f"{overhead * 1e6 if overhead is not None else float('nan'):>9.1f} "
            f"{(r.get('peak_mem_bytes') or 0) / 2**20:>9.1f}"
            + (f"  {r['reason']}" if r["status"] != "ok" else "")
            + (f"  ({r['gpu_timing_note']})" if r.get("gpu_timing_note") else "")
        )
        above = median if ladder else above
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


def modes(text: str) -> list:
    """--gpu-timing events,graph,kernel -> the modes, each checked."""
    found = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in found if m not in gpu_options.MODES]
    if not found or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of {', '.join(gpu_options.MODES)}; got {text!r}"
        )
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cuda_targets", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", type=int, default=4096, help="n of the n^3 matmul")
    parser.add_argument("--time-per-cell", type=float, default=2.0, metavar="S")
    parser.add_argument(
        "--gpu-timing", type=modes, default=["events"], metavar="MODES", help="events,graph,kernel"
    )
    parser.add_argument("--results", default=None, metavar="DIR")
    args = parser.parse_args(argv)
    if reason := registry.unavailable_reason("cuda-tiled"):
        print(f"no GPU here, nothing to measure: {reason}")
        return 0
    writer = store.open_run(args.results)
    print(f"GPU: {writer.meta['gpu']}")
    for mode in args.gpu_timing:
        if mode == "kernel" and (why := gpu_options.kernel_timing_unavailable()):
            print(f"\nGPU timing kernel: skipped, {why}")
            continue
        os.environ[gpu_options.MODE_VAR] = mode  # what lifecycle's timer reads
        rows = matmul_rows(args.size, args.time_per_cell)
        if mode != "graph":  # a step reads its loss on the host: it cannot be captured
            rows += mnist_rows(args.time_per_cell, mode)
        for row in rows:
            writer.append(row)
        report(rows, mode)
    print(f"\nstored {len(writer.rows)} rows in {writer.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
