"""Single products: a plain matmul over square sizes, and one linear layer."""

from __future__ import annotations

import numpy as np

from harness.workloads.base import F32, TOL_PRODUCT, Workload, normal, rounding_bound

# ---- matmul -------------------------------------------------------------------------------


def _matmul_inputs(size, rng):
    M, K, N = size["M"], size["K"], size["N"]
    return {
        "a_MK": (normal(rng, (M, K)), "activation"),
        "b_KN": (normal(rng, (K, N)), "weight"),
        "dc_MN": (normal(rng, (M, N)), "activation"),
    }


def _matmul_setup(ops, size, phase, placed):
    a_MK, b_KN, dc_MN = placed["a_MK"], placed["b_KN"], placed["dc_MN"]
    if phase == "fwd":
        return lambda: (ops.matmul(a_MK, b_KN),)
    return lambda: ops.matmul_bwd(a_MK, b_KN, dc_MN)


def _matmul_flops(size, phase):
    mkn = size["M"] * size["K"] * size["N"]
    return 2 * mkn if phase == "fwd" else 4 * mkn  # bwd: dA = dC B^T and dB = A^T dC


def _matmul_bytes(size, phase):
    M, K, N = size["M"], size["K"], size["N"]
    if phase == "fwd":
        return F32 * (M * K + K * N + M * N)
    return F32 * (M * K + K * N + M * N) + F32 * (M * K + K * N)  # + write dA, dB


def _matmul_error_bound(size, phase):
    # c_MN sums over K; dA = dC B^T over N, dB = A^T dC over M
    return rounding_bound(size["K"] if phase == "fwd" else max(size["M"], size["N"]))


_SQUARE = (16, 17, 32, 64, 100, 127, 128, 256, 257, 512, 1000, 1024, 2048, 4096)
_QUICK_SQUARE = (16, 17, 64, 127, 128, 256)

MATMUL = Workload(
    name="matmul",
    description="c_MN = a_MK @ b_KN over square sizes, powers of two and odd",
    phases=("fwd", "bwd"),
    sizes=tuple({"M": n, "K": n, "N": n} for n in _SQUARE),
    quick_sizes=tuple({"M": n, "K": n, "N": n} for n in _QUICK_SQUARE),
    inputs=_matmul_inputs,
    setup=_matmul_setup,
    flops=_matmul_flops,
    bytes=_matmul_bytes,
    error_bound=_matmul_error_bound,
    tol=TOL_PRODUCT,
)

# ---- one linear layer ---------------------------------------------------------------------


def _linear_inputs(size, rng):
    B, I, O = size["B"], size["I"], size["O"]
    return {
        "x_BI": (normal(rng, (B, I)), "activation"),
        "w_IO": (normal(rng, (I, O), np.sqrt(1.0 / I)), "weight"),
        "b_O": (normal(rng, (O,)), "bias"),
        "dy_BO": (normal(rng, (B, O)), "activation"),
    }


def _linear_setup(ops, size, phase, placed):
    x_BI, w_IO, b_O, dy_BO = (placed[k] for k in ("x_BI", "w_IO", "b_O", "dy_BO"))
    if phase == "fwd":
        return lambda: (ops.linear(x_BI, w_IO, b_O),)
    return lambda: ops.linear_bwd(x_BI, w_IO, dy_BO)


def _linear_flops(size, phase):
    B, I, O = size["B"], size["I"], size["O"]
    if phase == "fwd":
        return 2 * B * I * O + B * O  # product + bias add
    return 4 * B * I * O + B * O  # dx and dw products + the column sums of db


def _linear_bytes(size, phase):
    B, I, O = size["B"], size["I"], size["O"]
    if phase == "fwd":
        return F32 * (B * I + I * O + O + B * O)
    return F32 * (B * I + I * O + B * O) + F32 * (B * I + I * O + O)


def _linear_error_bound(size, phase):
    # y sums over I, then the bias; dx sums over O, dw and db over B
    return rounding_bound(size["I"] + 1 if phase == "fwd" else max(size["O"], size["B"]))


LINEAR = Workload(
    name="linear",
    description="y_BO = x_BI @ w_IO + b_O, and its backward",
    phases=("fwd", "bwd"),
    sizes=(
        {"B": 64, "I": 784, "O": 128},
        {"B": 256, "I": 1024, "O": 1024},
        {"B": 256, "I": 4096, "O": 4096},
    ),
    quick_sizes=({"B": 64, "I": 784, "O": 128},),
    inputs=_linear_inputs,
    setup=_linear_setup,
    flops=_linear_flops,
    bytes=_linear_bytes,
    error_bound=_linear_error_bound,
    tol=TOL_PRODUCT,
)
