"""Error bounds (harness/workloads/: error_bound per workload, sqrt(n) * 2^-24 for the n
roundings of a phase's longest chain) against hand counts, and the checked rows' err_ratio."""

from __future__ import annotations

import math

import pytest

from harness import registry
from harness.execute import grid
from harness.execute.check import check
from harness.workloads import WORKLOADS, get_workload

U = 2.0**-24


def bound(workload, phase, **size):
    return get_workload(workload).error_bound(size, phase)


def test_a_product_is_bounded_by_its_reduction_length():
    assert bound("matmul", "fwd", M=8, K=64, N=4) == 8 * U  # c_MN sums 64 products
    assert bound("matmul", "bwd", M=100, K=3, N=36) == 10 * U  # dB = A^T dC sums over M
    assert bound("linear", "fwd", B=2, I=783, O=5) == math.sqrt(784) * U  # + the bias
    assert bound("linear", "bwd", B=49, I=7, O=16) == 7 * U  # db sums over B


def test_the_mlp_chains_its_layers_widths():
    size = {"B": 64, "layers": "784-128-64-10", "opt": "sgd"}
    # forward: (784 + 1) + (128 + 1) + (64 + 1) roundings through the layers, 10 in the softmax
    assert bound("mnist_mlp", "fwd", **size) == math.sqrt(989) * U
    # backward: dx through layers 2 and 3 (64, 10), then dw of layer 1 over the batch (64)
    assert bound("mnist_mlp", "bwd", **size) == math.sqrt(989 + 74 + 64) * U
    assert bound("mnist_mlp", "step", **size) == math.sqrt(1127 + 2) * U  # sgd: mul, sub
    xor = {"B": 4, "layers": "2-4-2", "opt": "sgd"}
    assert [bound("xor", p, **xor) / U for p in ("fwd", "bwd", "step")] == pytest.approx(
        [math.sqrt(10), 4.0, math.sqrt(18)]
    )


def test_the_optimizers_round_once_per_flop_and_step():
    assert bound("optim", "step", I=4, O=4, opt="adam", steps=5) == math.sqrt(14 * 5) * U


def test_every_cell_has_a_bound_between_one_rounding_and_the_tolerance():
    for work in WORKLOADS.values():
        for size in work.sizes:
            for phase in work.phases:
                assert U <= work.error_bound(size, phase) < work.tol, (work.name, size, phase)


@pytest.mark.parametrize("impl", ["numpy", "c-naive"])
def test_a_plain_product_computes_near_its_rounding_bound(impl):
    """rel_err / err_bound for a float32 product: ~0.3 for a loop's running sum, less for a
    blocked one; never past 1, never a vanishing fraction (that would be a float64 sum)."""
    reason = registry.unavailable_reason(impl)
    if reason:
        pytest.skip(f"{impl}: {reason}")
    cell = grid.Cell(impl, "matmul", (("M", 64), ("K", 64), ("N", 64)), "fwd")
    row, _ = check(registry.create(impl), cell, None)
    assert row["err_bound"] == 8 * U
    assert row["err_ratio"] == pytest.approx(row["rel_err"] / row["err_bound"])
    assert 0.1 < row["err_ratio"] < 1


def test_a_wrong_cell_keeps_its_ratio(faults):
    cell = grid.Cell("fault-wrong", "matmul", (("M", 16), ("K", 16), ("N", 16)), "fwd")
    row, fn = check(registry.create("fault-wrong"), cell, None)
    assert row["status"] == "wrong" and fn is None
    assert row["err_ratio"] == pytest.approx(row["rel_err"] / (4 * U)) and row["err_ratio"] > 1
