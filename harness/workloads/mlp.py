"""MLPs composed from contract ops (harness/models.py): XOR 2-4-2 and the MNIST-class
784-128-64-10, each forward, backward and a training step."""

from __future__ import annotations

import numpy as np

from harness import models
from harness.workloads.base import (
    F32,
    Workload,
    counter,
    layer_params,
    optimizer_state,
    param_names,
    rounding_bound,
)
from harness.workloads.optim import FLOPS_PER_STEP


def _dims(size):
    return [int(d) for d in size["layers"].split("-")]


def _mlp_inputs(size, rng):
    dims, B = _dims(size), size["B"]
    if dims[0] == 2 and B == 4:  # XOR: the four corners of the unit square, fixed labels
        x_BI = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
        labels_B = np.array([0, 1, 1, 0], dtype=np.int64)
    else:
        x_BI = rng.random((B, dims[0]), dtype=np.float32)  # pixel-like values in [0, 1)
        labels_B = rng.integers(0, dims[-1], B)
    return {
        "x_BI": (x_BI, "activation"),
        "labels_B": (labels_B, "label"),
        **layer_params(rng, dims),
    }


def _mlp_setup(ops, size, phase, placed):
    params = [placed[k] for k in param_names(placed)]
    x_BI, labels_B = placed["x_BI"], placed["labels_B"]
    if phase == "fwd":

        def fwd():
            loss, probs_BC, _ = models.mlp_forward(ops, params, x_BI, labels_B)
            return loss, probs_BC

        return fwd
    if phase == "bwd":
        _, _, cache = models.mlp_forward(ops, params, x_BI, labels_B)
        return lambda: tuple(models.mlp_backward(ops, params, cache, labels_B))
    opt = size["opt"]
    state, steps = optimizer_state(ops, placed, param_names(placed), opt), counter()

    def step():
        models.mlp_step(ops, params, x_BI, labels_B, opt, state, next(steps))
        return tuple(params)

    return step


def _mlp_flops(size, phase):
    dims, B = _dims(size), size["B"]
    C = dims[-1]
    pairs = list(zip(dims[:-1], dims[1:]))
    hidden = sum(dims[1:-1])
    fwd = sum(2 * B * i * o + B * o for i, o in pairs) + B * hidden + 5 * B * C  # + relu, xent
    # dw = x^T dy and db for every layer, dx = dy w^T for all but the first: the model's input
    # needs no gradient (autograd skips it; an impl that computes it does work not counted here)
    bwd = (
        sum(2 * B * i * o + B * o for i, o in pairs)
        + sum(2 * B * i * o for i, o in pairs[1:])
        + B * hidden
        + 2 * B * C
    )
    n_params = sum(i * o + o for i, o in pairs)
    opt = FLOPS_PER_STEP[size.get("opt", "sgd")] * n_params
    return {"fwd": fwd, "bwd": bwd, "step": fwd + bwd + opt}[phase]


def _mlp_bytes(size, phase):
    dims, B = _dims(size), size["B"]
    n_params = sum(i * o + o for i, o in zip(dims[:-1], dims[1:]))
    x_and_labels = F32 * B * dims[0] + 8 * B
    activations = F32 * B * sum(dims[1:])  # what the backward reads back from the forward
    if phase == "fwd":  # read x, labels and params; write the probabilities
        return x_and_labels + F32 * n_params + F32 * B * dims[-1]
    if phase == "bwd":  # read params, x, labels and activations; write the gradients
        return x_and_labels + activations + 2 * F32 * n_params
    state = models.OPT_STATE[size["opt"]]  # step: read params and state, write them back
    return x_and_labels + 2 * F32 * n_params * (1 + state)


def _mlp_error_bound(size, phase):
    dims, B = _dims(size), size["B"]
    # forward: each layer sums its inputs and adds its bias, the softmax sums C exponentials
    fwd = sum(n + 1 for n in dims[:-1]) + dims[-1]
    # backward, on top: dx through every layer but the first sums over its outputs, dw over B
    bwd = fwd + sum(dims[2:]) + B
    return rounding_bound(
        {
            "fwd": fwd,
            "bwd": bwd,  # a step: one rounding per update flop
            "step": bwd + FLOPS_PER_STEP[size.get("opt", "sgd")],
        }[phase]
    )


# What every MLP workload shares: its inputs, phases, formulas and non-axis parameters.
_MLP = dict(
    phases=("fwd", "bwd", "step"),
    inputs=_mlp_inputs,
    setup=_mlp_setup,
    flops=_mlp_flops,
    bytes=_mlp_bytes,
    error_bound=_mlp_error_bound,
    params=("layers", "opt"),
)

XOR = Workload(
    name="xor",
    description="XOR with an MLP 2-4-2: the seeds' 2-4-1 net with its one output as two "
    "logits, so it shares the softmax cross-entropy of every classifier here",
    sizes=({"B": 4, "layers": "2-4-2", "opt": "sgd"},),
    quick_sizes=({"B": 4, "layers": "2-4-2", "opt": "sgd"},),
    **_MLP,
)

MNIST_MLP = Workload(
    name="mnist_mlp",
    description="MNIST-class MLP 784-128-64-10 at batch 64: forward, backward, SGD step",
    sizes=({"B": 64, "layers": "784-128-64-10", "opt": "sgd"},),
    quick_sizes=({"B": 64, "layers": "784-128-64-10", "opt": "sgd"},),
    **_MLP,
)
