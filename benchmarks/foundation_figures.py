"""The foundation's figures, timed side by side: `python -m benchmarks.foundation_figures`.

- pure-Python matmul MFLOP/s at 128^3;
- the NumPy rung's einsum matmul throughput / plain `a @ b`, at 256 and 1024;
- the NumPy rung's MNIST-MLP training step time / a hand-written plain-NumPy step.
Pairs are timed in alternating rounds (A B A B ..., benchmarks/alternate.py), so drift on a
shared machine hits both alike; each figure is the ratio of medians.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from benchmarks import alternate
from benchmarks.plain_numpy import make_step
from harness import registry
from harness.models import HYPER
from harness.workloads import WORKLOADS, Placed, param_names


def alternating(fn_a, fn_b, rounds=15, seconds=0.1):
    """Median seconds per call of fn_a and fn_b: the median of their alternating rounds' medians."""
    timed = alternate.measure({"a": fn_a, "b": fn_b}, rounds, seconds, min_rounds=1, max_rounds=3)
    return tuple(statistics.median(s.median for s in timed[k]) for k in ("a", "b"))


def main() -> None:
    python, numpy_rung = registry.create("pure_python"), registry.create("numpy")
    rng = np.random.default_rng(0)

    a_MK, b_KN = (rng.standard_normal((128, 128)).astype(np.float32) for _ in range(2))
    a_py, b_py = python.put(a_MK, "activation"), python.put(b_KN, "weight")
    start = time.perf_counter()
    for _ in range(3):
        python.matmul(a_py, b_py)
    t_py = (time.perf_counter() - start) / 3
    print(f"pure_python matmul 128^3: {2 * 128**3 / t_py / 1e6:.1f} MFLOP/s")

    for n in (256, 1024):
        a_MK, b_KN = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
        t_einsum, t_at = alternating(
            lambda a=a_MK, b=b_KN: numpy_rung.matmul(a, b), lambda a=a_MK, b=b_KN: a @ b
        )
        print(
            f"numpy rung matmul {n}^3: einsum {2 * n**3 / t_einsum / 1e9:.1f} GFLOP/s, "
            f"a @ b {2 * n**3 / t_at / 1e9:.1f} GFLOP/s, throughput ratio "
            f"{t_at / t_einsum:.3f} (goal >= 0.9)"
        )

    work = WORKLOADS["mnist_mlp"]
    size = work.sizes[0]
    host = work.inputs(size, rng)
    step = work.setup(numpy_rung, size, "step", Placed(numpy_rung, host))
    params = [host[k][0].copy() for k in param_names(host)]
    plain = make_step(host["x_BI"][0], host["labels_B"][0], params, HYPER["sgd"]["lr"])
    t_rung, t_plain = alternating(step, plain)
    print(
        f"mnist_mlp step: numpy rung {t_rung * 1e3:.3f} ms, plain NumPy {t_plain * 1e3:.3f} "
        f"ms, ratio {t_rung / t_plain:.3f} (goal <= 1.15)"
    )


if __name__ == "__main__":
    main()
