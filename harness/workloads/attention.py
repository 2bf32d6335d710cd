"""Causal multi-head self-attention: the q, k, v and output projections around the scores,
composed from contract ops (harness/models.py); tokens as rows, x_RD with R = B*T."""

from __future__ import annotations

import numpy as np

from harness import models
from harness.workloads.base import F32, Workload, normal, rounding_bound


def _attention_inputs(size, rng):
    B, T, D = size["B"], size["T"], size["D"]
    arrays = {
        "x_RD": (normal(rng, (B * T, D)), "activation"),
        "dy_RD": (normal(rng, (B * T, D)), "activation"),
    }
    for proj in "qkvo":
        arrays[f"w{proj}_DD"] = (normal(rng, (D, D), np.sqrt(1.0 / D)), "weight")
        arrays[f"b{proj}_D"] = (normal(rng, (D,), 0.1), "bias")
    return arrays


def _attention_setup(ops, size, phase, placed):
    B, D, G = size["B"], size["D"], size["G"]
    params = [
        placed[f"{wb}{proj}_{dims}"] for proj in "qkvo" for wb, dims in (("w", "DD"), ("b", "D"))
    ]
    x_RD, dy_RD = placed["x_RD"], placed["dy_RD"]
    if phase == "fwd":
        return lambda: (models.attention_forward(ops, params, x_RD, B, G, D)[0],)
    _, cache = models.attention_forward(ops, params, x_RD, B, G, D)

    def bwd():
        dx_RD, grads = models.attention_backward(ops, params, cache, dy_RD, B, G)
        return (dx_RD, *grads)

    return bwd


def attention_flops(size, phase):
    B, T, D, G = size["B"], size["T"], size["D"], size["G"]
    R = B * T
    if phase == "fwd":
        # 4 projections with bias, q k^T and p v (2*B*T*T*D each), softmax ~5 per score.
        return 4 * (2 * R * D * D + R * D) + 2 * (2 * B * T * T * D) + 5 * B * G * T * T
    # 4 projection backwards, 2 bmm backwards, softmax backward ~5 per score, 2 adds of dx.
    return 4 * (4 * R * D * D + R * D) + 2 * (4 * B * T * T * D) + 5 * B * G * T * T + 2 * R * D


def _attention_bytes(size, phase):
    B, T, D, G = size["B"], size["T"], size["D"], size["G"]
    R = B * T
    params = 4 * (D * D + D)
    if phase == "fwd":
        return F32 * (R * D + params + R * D)
    # read x, dy, params and the cached q, k, v, p, o; write dx and the gradients
    return F32 * (2 * R * D + params + 4 * R * D + B * G * T * T) + F32 * (R * D + params)


def attention_error_bound(size, phase, roundings=False):
    """The bound of the block's longest chain; with roundings, the count n it is made of."""
    B, T, D, G = size["B"], size["T"], size["D"], size["G"]
    # forward: the q/k/v projection sums over D (+ bias), a score over E (+ scale), the softmax
    # over T positions (max, exp, divide), p v over T, the output projection over D (+ bias)
    fwd = (D + 1) + (D // G + 1) + (T + 3) + T + (D + 1)
    # backward, on top: do over D, dp over E, the softmax backward over T, dq over T, then
    # dw_q over the R = B*T tokens (or dx over D) and the sum of dx's three parts
    bwd = fwd + D + D // G + (T + 2) + T + max(B * T, D) + 2
    n = fwd if phase == "fwd" else bwd
    return n if roundings else rounding_bound(n)


ATTENTION = Workload(
    name="attention",
    description="causal multi-head self-attention block: q, k, v and output projections",
    phases=("fwd", "bwd"),
    sizes=(
        {"B": 2, "T": 16, "D": 32, "G": 4},
        {"B": 4, "T": 64, "D": 128, "G": 4},
        {"B": 8, "T": 256, "D": 256, "G": 8},
    ),
    quick_sizes=({"B": 2, "T": 16, "D": 32, "G": 4}, {"B": 4, "T": 64, "D": 128, "G": 4}),
    inputs=_attention_inputs,
    setup=_attention_setup,
    flops=attention_flops,
    bytes=_attention_bytes,
    error_bound=attention_error_bound,
)
