"""Convolutions: one conv2d layer over a sweep of shapes, and the CNN of harness/models/cnn.py
on 28 x 28 images.

A conv's FLOPs are its product's: 2 per multiply-add of each output entry's Q*J*L-term sum,
plus its bias; the backward's dx and dw are one such product each (col2im's adds are the
sums of dx's product), plus the bias's column sums. Its bytes are the arrays' alone: the
im2col matrix a rung builds is its own traffic, J*L times the image, and shows as the gap
between the cell and its roof.
"""

from __future__ import annotations

import numpy as np

from harness import models
from harness.workloads.base import F32, Workload, counter, normal, optimizer_state, rounding_bound
from harness.workloads.optim import FLOPS_PER_STEP


def _out(size):
    """(U, W): the windows that fit the padded image."""
    s, p = size["stride"], size["padding"]
    return (size["Y"] + 2 * p - size["J"]) // s + 1, (size["Z"] + 2 * p - size["L"]) // s + 1


def _conv_inputs(size, rng):
    B, Q, Y, Z, F, J, L = (size[k] for k in "BQYZFJL")
    U, W = _out(size)
    return {
        "x_BQYZ": (normal(rng, (B, Q, Y, Z)), "activation"),
        "w_FQJL": (normal(rng, (F, Q, J, L), np.sqrt(2.0 / (Q * J * L))), "weight"),
        "b_F": (normal(rng, (F,), 0.1), "bias"),
        "dy_BFUW": (normal(rng, (B, F, U, W)), "activation"),
    }


def _conv_setup(ops, size, phase, placed):
    x_BQYZ, w_FQJL = placed["x_BQYZ"], placed["w_FQJL"]
    window = {"stride": size["stride"], "padding": size["padding"]}
    if phase == "fwd":
        return lambda: (ops.conv2d(x_BQYZ, w_FQJL, placed["b_F"], **window),)
    return lambda: ops.conv2d_bwd(x_BQYZ, w_FQJL, placed["dy_BFUW"], **window)


def _conv_flops(size, phase):
    U, W = _out(size)
    outputs = size["B"] * size["F"] * U * W
    product = 2 * outputs * size["Q"] * size["J"] * size["L"]
    return product + outputs if phase == "fwd" else 2 * product + outputs


def _conv_bytes(size, phase):
    U, W = _out(size)
    x, w = (
        size["B"] * size["Q"] * size["Y"] * size["Z"],
        size["F"] * size["Q"] * size["J"] * size["L"],
    )
    y = size["B"] * size["F"] * U * W
    if phase == "fwd":  # read x, w, b; write y
        return F32 * (x + w + size["F"] + y)
    return F32 * (x + w + y + x + w + size["F"])  # read x, w, dy; write dx, dw, db


def _conv_error_bound(size, phase):
    U, W = _out(size)
    taps = size["Q"] * size["J"] * size["L"]
    if phase == "fwd":
        return rounding_bound(taps + 1)
    # dx sums over F*J*L taps, dw over the B*U*W windows
    return rounding_bound(max(size["F"] * size["J"] * size["L"], size["B"] * U * W))


def _conv(B, Q, Y, F, J, stride, padding, Z=None):
    return {
        "B": B,
        "Q": Q,
        "Y": Y,
        "Z": Y if Z is None else Z,
        "F": F,
        "J": J,
        "L": J,
        "stride": stride,
        "padding": padding,
    }


CONV2D = Workload(
    name="conv2d",
    description="one conv2d layer (im2col + GEMM): 1x1 and 3x3 kernels, stride 1 and 2, "
    "padding 0 and 1, odd images",
    phases=("fwd", "bwd"),
    sizes=(
        _conv(8, 3, 28, 16, 3, 1, 1),
        _conv(8, 16, 15, 32, 3, 2, 1, Z=13),
        _conv(8, 16, 14, 32, 1, 1, 0),
        _conv(32, 32, 14, 64, 3, 1, 1),
        _conv(32, 64, 28, 128, 3, 1, 1),
    ),
    quick_sizes=(_conv(8, 3, 28, 16, 3, 1, 1), _conv(8, 16, 15, 32, 3, 2, 1, Z=13)),
    inputs=_conv_inputs,
    setup=_conv_setup,
    flops=_conv_flops,
    bytes=_conv_bytes,
    error_bound=_conv_error_bound,
    params=("stride", "padding"),
)

# ---- the CNN ------------------------------------------------------------------------------
# channels "1-8-16": the image's, then each conv's filters; both convs 3 x 3 keep the size,
# each pool halves it; the head maps the last pool's F2 x Y/4 x Z/4 features to C classes.


def _cnn_dims(size):
    q, f1, f2 = (int(c) for c in size["channels"].split("-"))
    return q, f1, f2, size["Y"] // 2, size["Y"] // 4


def _cnn_inputs(size, rng):
    B, Y, C = size["B"], size["Y"], size["C"]
    q, f1, f2, _, y4 = _cnn_dims(size)
    shapes = {"w1_FQJL": (f1, q, 3, 3), "w2_FQJL": (f2, f1, 3, 3), "w3_IO": (f2 * y4 * y4, C)}
    arrays = {
        "x_BQYZ": (rng.random((B, q, Y, Y), dtype=np.float32), "activation"),  # pixels in [0, 1)
        "labels_B": (rng.integers(0, C, B), "label"),
    }
    for name, bias, n_out in zip(models.CNN_PARAMS[::2], models.CNN_PARAMS[1::2], (f1, f2, C)):
        fan_in = int(np.prod(shapes[name][1:]))
        arrays[name] = (normal(rng, shapes[name], np.sqrt(2.0 / fan_in)), "weight")
        arrays[bias] = (normal(rng, (n_out,), 0.1), "bias")
    return arrays


def _cnn_setup(ops, size, phase, placed):
    params = [placed[k] for k in models.CNN_PARAMS]
    x_BQYZ, labels_B = placed["x_BQYZ"], placed["labels_B"]
    _, _, f2, _, y4 = _cnn_dims(size)
    shapes = (f2, y4, y4)
    if phase == "fwd":
        return lambda: models.cnn_forward(ops, params, x_BQYZ, labels_B)[:2]
    if phase == "bwd":
        _, _, cache = models.cnn_forward(ops, params, x_BQYZ, labels_B)
        return lambda: tuple(models.cnn_backward(ops, params, cache, labels_B, shapes))
    opt = size["opt"]
    state, steps = optimizer_state(ops, placed, models.CNN_PARAMS, opt), counter()

    def step():
        models.cnn_step(ops, params, x_BQYZ, labels_B, shapes, opt, state, next(steps))
        return tuple(params)

    return step


def _cnn_layers(size):
    """Each conv's and the head's (flops of its product, outputs, pixels it pools)."""
    B, Y, C = size["B"], size["Y"], size["C"]
    q, f1, f2, y2, y4 = _cnn_dims(size)
    conv1, conv2 = B * f1 * Y * Y, B * f2 * y2 * y2  # outputs
    return (
        (2 * conv1 * q * 9, conv1),
        (2 * conv2 * f1 * 9, conv2),
        (2 * B * f2 * y4 * y4 * C, B * C),
    )


def _cnn_flops(size, phase):
    (p1, o1), (p2, o2), (p3, o3) = _cnn_layers(size)
    # products + biases, relu (1) and the pool's 3 maxes per output... per input entry ~1
    fwd = p1 + o1 + p2 + o2 + p3 + o3 + 2 * (o1 + o2) + 5 * o3
    # dw for every layer, dx for the head and conv2 (conv1's dx is dropped but computed: the
    # contract's conv2d_bwd returns it, so it is counted), bias sums, relu and pool backwards
    bwd = 2 * (p1 + p2 + p3) + o1 + o2 + o3 + 2 * (o1 + o2) + 2 * o3
    n_params = sum(int(np.prod(s)) for s in _cnn_param_shapes(size))
    return {"fwd": fwd, "bwd": bwd, "step": fwd + bwd + FLOPS_PER_STEP[size["opt"]] * n_params}[
        phase
    ]


def _cnn_param_shapes(size):
    q, f1, f2, _, y4 = _cnn_dims(size)
    C = size["C"]
    return [(f1, q, 3, 3), (f1,), (f2, f1, 3, 3), (f2,), (f2 * y4 * y4, C), (C,)]


def _cnn_bytes(size, phase):
    (_, o1), (_, o2), (_, o3) = _cnn_layers(size)
    B, Y = size["B"], size["Y"]
    n_params = sum(int(np.prod(s)) for s in _cnn_param_shapes(size))
    images = F32 * B * _cnn_dims(size)[0] * Y * Y + 8 * B
    if phase == "fwd":  # read images and params, write the probabilities
        return images + F32 * (n_params + o3)
    if phase == "bwd":  # read the activations the forward kept, write the gradients
        return images + F32 * (2 * (o1 + o2) + o3 + 2 * n_params)
    return images + 2 * F32 * n_params * (1 + models.OPT_STATE[size["opt"]])


def _cnn_error_bound(size, phase):
    q, f1, f2, y4 = *_cnn_dims(size)[:3], _cnn_dims(size)[4]
    fwd = (9 * q + 1) + (9 * f1 + 1) + (f2 * y4 * y4 + 1) + size["C"]
    bwd = fwd + 9 * f2 + size["C"] + size["B"] * size["Y"] * size["Y"]
    step = bwd + FLOPS_PER_STEP[size["opt"]]
    return rounding_bound({"fwd": fwd, "bwd": bwd, "step": step}[phase])


CNN = Workload(
    name="cnn",
    description="CNN on 28x28 images: conv3x3-relu-pool, conv3x3-relu-pool, linear; "
    "forward, backward, SGD step",
    phases=("fwd", "bwd", "step"),
    sizes=(
        {"B": 8, "Y": 28, "channels": "1-8-16", "C": 10, "opt": "sgd"},
        {"B": 64, "Y": 28, "channels": "1-8-16", "C": 10, "opt": "sgd"},
    ),
    quick_sizes=({"B": 8, "Y": 28, "channels": "1-8-16", "C": 10, "opt": "sgd"},),
    inputs=_cnn_inputs,
    setup=_cnn_setup,
    flops=_cnn_flops,
    bytes=_cnn_bytes,
    error_bound=_cnn_error_bound,
    params=("channels", "opt"),
)
