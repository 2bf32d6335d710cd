"""The workloads package: its names, and the optim workload's steps from zero state."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from harness import registry
from harness.execute.check import check
from harness.execute.grid import Cell
from harness.workloads import WORKLOADS, Placed, get_workload, optim

IMPLS = ["numpy", "c-blocked", "pure_python"]
SMALL = {"I": 16, "O": 8, "steps": optim.STEPS}


def available(name):
    reason = registry.unavailable_reason(name)
    if reason:
        pytest.skip(f"{name}: {reason}")
    return registry.create(name)


def test_every_workload_is_found_by_its_name_and_an_unknown_one_is_refused():
    assert all(get_workload(name).name == name for name in WORKLOADS)
    with pytest.raises(KeyError, match="unknown workload 'nope': expected one of matmul"):
        get_workload("nope")


@pytest.mark.parametrize("name", IMPLS)
@pytest.mark.parametrize("opt", ["momentum", "adam"])
def test_each_call_starts_again_from_zero_state(name, opt):
    """Two calls of the phase leave the same state: every timed call is the one checked."""
    impl, size = available(name), {**SMALL, "opt": opt}
    host = optim.OPTIM.inputs(size, np.random.default_rng(0))
    step = optim.OPTIM.setup(impl, size, "step", Placed(impl, host))
    first = [impl.get(x).copy() for x in step()[1:]]
    second = [impl.get(x) for x in step()[1:]]
    for before, after in zip(first, second, strict=True):
        np.testing.assert_array_equal(before, after)


class Float32Beta(registry.get_class("numpy")):
    """numpy's adam with 1 - beta2 as float32 arithmetic gives it: 1.3e-5 too small."""

    def adam(self, p, g, m, v, t, lr, beta1, beta2, eps):
        one_minus_beta2 = np.float32(1) - np.float32(beta2)
        super().adam(p, g, m, v, t, lr, beta1, 1 - float(one_minus_beta2), eps)


def test_the_gate_sees_one_minus_beta2_rounded_to_float32():
    size = (("I", 1024), ("O", 64), ("opt", "adam"), ("steps", optim.STEPS))
    cell = Cell("numpy", "optim", size, "step")
    row, _ = check(registry.create("numpy"), cell, None)
    assert row["status"] == "ok" and row["rel_err"] < 1e-6
    row, fn = check(Float32Beta(), cell, None)
    assert row["status"] == "wrong" and fn is None, row


class Counting(registry.get_class("numpy")):
    """numpy, counting the entries each optimizer op updates; an sgd of an array onto itself
    is the phase's reset of its state."""

    def __init__(self):
        super().__init__()
        self.entries = collections.Counter()

    def sgd(self, p, g, lr):
        self.entries["reset" if p is g else "sgd"] += p.size
        super().sgd(p, g, lr)

    def momentum(self, p, g, v, lr, mu):
        self.entries["momentum"] += p.size
        super().momentum(p, g, v, lr, mu)

    def adam(self, p, g, m, v, t, lr, beta1, beta2, eps):
        self.entries["adam"] += p.size
        super().adam(p, g, m, v, t, lr, beta1, beta2, eps)


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_flops_and_bytes_count_every_step_and_the_reset(opt):
    impl, size = Counting(), {**SMALL, "opt": opt}
    step = optim.OPTIM.setup(
        impl, size, "step", Placed(impl, optim.OPTIM.inputs(size, np.random.default_rng(0)))
    )
    step()
    resets = impl.entries.pop("reset", 0)  # a multiply and a subtract; one array in and out
    assert impl.entries == {opt: optim.STEPS * size["I"] * size["O"]}
    assert (
        optim.OPTIM.flops(size, "step")
        == optim.FLOPS_PER_STEP[opt] * impl.entries[opt] + 2 * resets
    )
    assert optim.OPTIM.bytes(size, "step") == 4 * (
        sum(optim.ARRAYS_PER_STEP[opt]) * impl.entries[opt] + 2 * resets
    )
