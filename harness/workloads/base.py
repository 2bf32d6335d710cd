"""What a workload is (the Workload record), the inputs placed for one impl, and the helpers
every family of workloads shares: float32 sizes, tolerances, seeded arrays, layer weights."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.contract import check_host_array

F32 = 4  # bytes per element

# Relative-error tolerances of the correctness gate, ||out - ref|| / ||ref|| in float32.
# A single product sums K terms, so its error grows like sqrt(K) * 6e-8: 1e-5 holds to
# K = 4096 with margin. Composed models chain several products and exps: 1e-4.
TOL_PRODUCT = 1e-5
TOL_MODEL = 1e-4
U = 2.0**-24  # float32's unit roundoff: one rounding is off by at most U, relatively


def rounding_bound(roundings: int) -> float:
    """sqrt(n) * U: the error n roundings leave, by Higham & Mary's probabilistic analysis
    ("A new approach to probabilistic rounding error analysis", SIAM J. Sci. Comput. 41(5),
    2019: the constant gamma~_n = lambda sqrt(n) u, here lambda = 1), the scale the gate's
    rel_err is read against (harness/measure/gate.py says why they compare).

    n counts the roundings on an output's longest chain: a sum over K terms is K of them (a
    product over K, a softmax over S positions), a model's chain the sums of its layers one
    after the other; elementwise ops add one each. The worst case n * U / (1 - n * U) is
    sqrt(n) times larger, and no rung comes near it."""
    return math.sqrt(roundings) * U


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    phases: tuple
    sizes: tuple  # the default sweep, smallest first (the budget fits times from these)
    quick_sizes: tuple
    inputs: Callable  # (size, rng) -> {name: (host array, role)}
    setup: Callable  # (ops, size, phase, placed) -> callable running the phase once
    flops: Callable  # (size, phase) -> int
    bytes: Callable  # (size, phase) -> int
    error_bound: Callable  # (size, phase) -> rounding_bound of the phase's longest chain
    tol: float = TOL_MODEL
    params: tuple = field(default=())  # size keys that are not axis sizes (layers, opt)


def size_label(size: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in size.items())


class Placed(dict):
    """Inputs placed by one impl, by name; `host` and `roles` keep what they were made from."""

    def __init__(self, ops, host_inputs: dict):
        for name, (x, role) in host_inputs.items():
            check_host_array(name, x, role)
        super().__init__((k, ops.put(x, role)) for k, (x, role) in host_inputs.items())
        self.host = {k: x for k, (x, _) in host_inputs.items()}
        self.roles = {k: role for k, (_, role) in host_inputs.items()}


def normal(rng, shape, scale=1.0):
    """Seeded float32 normal entries times scale."""
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def layer_params(rng, dims):
    """{w{l}_IO, b{l}_O} for consecutive layer widths, He-scaled so activations stay O(1)."""
    arrays = {}
    for layer, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
        arrays[f"w{layer}_IO"] = (normal(rng, (n_in, n_out), np.sqrt(2.0 / n_in)), "weight")
        arrays[f"b{layer}_O"] = (normal(rng, (n_out,), 0.1), "bias")
    return arrays


def param_names(inputs) -> list:
    """The names layer_params gave, among an MLP's inputs, in order: w0_IO, b0_O, w1_IO, ..."""
    return [name for name in inputs if name[0] in "wb" and name[1].isdigit()]


def optimizer_state(ops, placed, names, opt) -> list:
    """Zero state for every parameter of `names` (momentum's v, adam's m and v), placed like
    the parameter (a sharded rung holds its block)."""
    from harness.models import OPT_STATE

    return [
        [ops.put(np.zeros_like(placed.host[k]), placed.roles[k]) for _ in range(OPT_STATE[opt])]
        for k in names
    ]


def counter():
    """The step numbers t = 1, 2, ... of a step phase, one per timed call."""
    return iter(range(1, 1 << 62))
