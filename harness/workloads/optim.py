"""Optimizer updates alone: sgd, momentum and adam on the weight of one linear layer.

The weight is a layer's w_IO (I inputs by O outputs), its gradient dw_IO and its optimizer
state (momentum's v, adam's m and v) laid out like it, so a sharded rung holds and updates its
block of all of them as it would in a training step.

Each call of the phase makes `steps` updates (t = 1, 2, ...) from zero state, all with the
one gradient. From zero, adam's v is made of (1 - beta2) g^2 terms only, so an impl that
takes 1 - beta2 in float32 (1 - float32(0.999) is 1.3e-5 too small) is that far off in v,
past TOL_PRODUCT; one step from a large v hid it under v's old value (1e-7 relative), and
the later steps carry it into the weight through the bias-corrected v. Each call first sets
the state back to zero, so every timed call repeats the computation the gate checked, at
the same cost.

FLOPs and bytes are those of one step times `steps`, plus that reset: an impl runs the steps
as separate contract calls, each streaming its arrays through memory.
"""

from __future__ import annotations

import numpy as np

from harness import models
from harness.workloads.base import F32, TOL_PRODUCT, Workload, normal, rounding_bound

STEPS = 5
# The gate reads every output against at least the cell's typical magnitude (the floor in
# harness/measure/gate.py), so a small output's error hides. With a gradient this large,
# adam's v after 5 steps (~0.005 g^2) outweighs its m (~0.4 g) and the weight, and is read at
# its own scale: there a float32 1 - beta2 shows. Adam's update does not depend on the
# gradient's scale; sgd's and momentum's move the weight further, which float32 does not mind.
GRADIENT_SCALE = 100.0
# Per element and step: sgd: mul, sub. momentum: mul, add; mul, sub. adam: m (3), v (4), two
# bias corrections, sqrt, +eps, divide, * lr, subtract = 14.
FLOPS_PER_STEP = {"sgd": 2, "momentum": 4, "adam": 14}
# Arrays each step reads and writes: (w, dw), w; (w, dw, v), (w, v); (w, dw, m, v), (w, m, v).
ARRAYS_PER_STEP = {"sgd": (2, 1), "momentum": (3, 2), "adam": (4, 3)}


def _optim_inputs(size, rng):
    I, O = size["I"], size["O"]
    return {
        "w_IO": (normal(rng, (I, O), np.sqrt(2.0 / I)), "weight"),
        "dw_IO": (normal(rng, (I, O), GRADIENT_SCALE), "weight"),
    }


def _optim_setup(ops, size, phase, placed):
    w_IO, dw_IO, opt = placed["w_IO"], placed["dw_IO"], size["opt"]
    state = [
        ops.put(np.zeros_like(placed.host["w_IO"]), "weight") for _ in range(models.OPT_STATE[opt])
    ]

    def steps():
        for state_IO in state:  # x - 1.0 * x is exactly 0; the contract has no fill op
            ops.sgd(state_IO, state_IO, lr=1.0)
        for t in range(1, size["steps"] + 1):
            models.apply_update(ops, opt, [w_IO], [dw_IO], [state], t)
        return (w_IO, *state)

    return steps


def _optim_flops(size, phase):
    reset = 2 * models.OPT_STATE[size["opt"]]  # the sgd that zeroes each state array
    return (FLOPS_PER_STEP[size["opt"]] * size["steps"] + reset) * size["I"] * size["O"]


def _optim_bytes(size, phase):
    read, written = ARRAYS_PER_STEP[size["opt"]]
    reset = 2 * models.OPT_STATE[size["opt"]]  # each state array read and written once
    return F32 * size["I"] * size["O"] * ((read + written) * size["steps"] + reset)


def _optim_error_bound(size, phase):
    # elementwise: each step's flops round once each, one step after the other (the reset
    # to zero is exact)
    return rounding_bound(FLOPS_PER_STEP[size["opt"]] * size["steps"])


OPTIM = Workload(
    name="optim",
    description=f"optimizer updates alone (sgd, momentum, adam): {STEPS} steps from zero "
    "state on one layer's weight w_IO",
    phases=("step",),
    sizes=tuple({"I": 1024, "O": 1024, "opt": o, "steps": STEPS} for o in FLOPS_PER_STEP),
    quick_sizes=tuple({"I": 1024, "O": 64, "opt": o, "steps": STEPS} for o in FLOPS_PER_STEP),
    inputs=_optim_inputs,
    setup=_optim_setup,
    flops=_optim_flops,
    bytes=_optim_bytes,
    error_bound=_optim_error_bound,
    tol=TOL_PRODUCT,
    params=("opt", "steps"),
)
