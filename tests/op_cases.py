"""Seeded inputs for every contract op, at shapes chosen to catch the edges of a kernel.

`make(op, rng, shape)` -> the op's cases at one (M, K, N) triple: each a Case of host arrays
and the keyword arguments of each call. The tests run the same case through an impl and
through the float64 reference, and through the contract's check_call first.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from harness import models

# (M, K, N) triples: ones and primes; M around the 6 rows and N around the 16 columns of the C
# micro-kernel's tile (5, 6, 7 and 15, 16, 17, 33); M below and above N, so that a causal
# softmax over (T, S) = (M, N) has T < S and T > S. Every M is 2 or more where N is, so that a
# batch of labels (B = M, C = N) can hold both 0 and C - 1.
SHAPES = [(1, 1, 1), (5, 16, 15), (6, 7, 16), (7, 1, 17), (13, 5, 33), (17, 6, 5), (2, 33, 1)]
REPEATS = 5  # draws of every case from the test's one generator
X = 2  # the batch of a batched product or softmax
# An update's steps: momentum's second differs from sgd, Adam's t runs 1, 2, 3 from m = v = 0.
STEPS = {"sgd": 2, "momentum": 2, "adam": 3}


class Case(NamedTuple):
    """One test of an op: its arrays (host array, role) in the order of contract.OPS and the
    keyword arguments of each call. Most ops are called once; an update once per step, with
    the next of `grads` as g each time and its p and state carried from step to step."""

    inputs: list
    steps: list
    grads: list = []


def _x(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _act(x):
    return (x, "activation")


def _probs(rng, B, C):
    e = np.exp(rng.standard_normal((B, C)))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _softmax_rows(rng, T, S, causal):
    z = rng.standard_normal((X, T, S))
    if causal:
        z = np.where(np.tri(T, S, dtype=bool), z, -np.inf)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def labels(rng, B, C):
    """B class indices in [0, C), the first 0 and the last C - 1: both ends of the range."""
    labels_B = rng.integers(0, C, B)
    labels_B[0], labels_B[-1] = 0, C - 1
    return (labels_B, "label")


def _update(op, rng, shape):
    """sgd, momentum or adam on p of `shape` from zero state, one new gradient per step."""
    state = [np.zeros(shape, np.float32) for _ in range(models.OPT_STATE[op])]
    grads = [_x(rng, *shape) for _ in range(STEPS[op])]
    steps = [
        {**models.HYPER[op], **({"t": t} if op == "adam" else {})} for t in range(1, STEPS[op] + 1)
    ]
    return Case([_act(_x(rng, *shape)), _act(grads[0]), *map(_act, state)], steps, grads)


# Elementwise ops and what they are given: x (scaled, to reach the tails), the forward's
# output y (sigmoid's in (0, 1), tanh's in (-1, 1)), dy, or a regression target.
ELEMENTWISE = {
    "add": ("x", "x"),
    "relu": ("x",),
    "relu_bwd": ("x", "x"),
    "gelu": ("x",),
    "gelu_bwd": ("x", "x"),
    "sigmoid": ("x",),
    "sigmoid_bwd": ("sigmoid", "x"),
    "tanh": ("x",),
    "tanh_bwd": ("tanh", "x"),
    "mse": ("x", "x"),
    "mse_bwd": ("x", "x"),
}
# A conv's kernels (J, L), stride and padding: 1 x 1; 3 x 3 keeping the size; 3 x 3 halving
# it; a rectangle with padding that strides past the edge.
CONVS = [((1, 1), 1, 0), ((3, 3), 1, 1), ((3, 3), 2, 1), ((2, 3), 2, 1)]


def _elementwise(op, rng, shape):
    x = _x(rng, *shape) * 3
    made = {"x": lambda: _x(rng, *shape) * 3, "sigmoid": lambda: 1 / (1 + np.exp(-x))}
    made["tanh"] = lambda: np.tanh(x)
    return [_act(made[kind]().astype(np.float32)) for kind in ELEMENTWISE[op]]


def _image(rng, M, K, N, relu=False):
    """x_BQYZ from the triple: batch 1..3, channels 1..4, height 3..8, width 3..7 (odd and
    even); with relu, half the entries are 0 and a pool's windows tie."""
    x = _x(rng, 1 + M % 3, 1 + K % 4, 3 + M % 6, 3 + N % 5)
    return np.maximum(x, 0) if relu else x


def _conv_cases(op, rng, M, K, N):
    cases = []
    for (J, L), stride, padding in CONVS:
        x_BQYZ = _image(rng, M, K, N)
        B, Q, Y, Z = x_BQYZ.shape
        F = 1 + N % 5
        w_FQJL = _x(rng, F, Q, J, L)
        U, W = (Y + 2 * padding - J) // stride + 1, (Z + 2 * padding - L) // stride + 1
        last = _x(rng, F) if op == "conv2d" else _x(rng, B, F, U, W)
        cases.append(
            Case([_act(x_BQYZ), _act(w_FQJL), _act(last)], [{"stride": stride, "padding": padding}])
        )
    return cases


def _layernorm_stats(x_RD):
    mean_R = x_RD.mean(axis=1, dtype=np.float64)
    var_R = ((x_RD - mean_R[:, None]) ** 2).mean(axis=1)
    return mean_R.astype(np.float32), (1 / np.sqrt(var_R + 1e-5)).astype(np.float32)


def _network_case(op, rng, M, K, N):
    """The ops of the CNN and the transformer: layernorm over (R, D) = (M, N), transpose,
    embedding of M tokens from V = N rows of K features, a conv, a pool."""
    if op in ELEMENTWISE:  # rows of features, and a stack of images
        return [Case(_elementwise(op, rng, s), [{}]) for s in ((M, N), (X, 1 + M % 3, K, N))]
    if op in ("conv2d", "conv2d_bwd"):
        return _conv_cases(op, rng, M, K, N)
    if op in ("maxpool2d", "maxpool2d_bwd"):
        cases = []
        for relu in (False, True):
            x_BQYZ = _image(rng, M, K, N, relu)
            B, Q, Y, Z = x_BQYZ.shape
            dy = [_act(_x(rng, B, Q, Y // 2, Z // 2))] if op == "maxpool2d_bwd" else []
            cases.append(Case([_act(x_BQYZ), *dy], [{}]))
        return cases
    x_RD = _x(rng, M, N) * 2 + 1  # rows with a mean and a spread to remove
    table = {
        "layernorm": lambda: [_act(x_RD), _act(_x(rng, N)), _act(_x(rng, N))],
        "layernorm_bwd": lambda: [
            _act(x_RD),
            _act(_x(rng, N)),
            *map(_act, _layernorm_stats(x_RD)),
            _act(_x(rng, M, N)),
        ],
        "transpose": lambda: [_act(_x(rng, M, K))],
        "flatten": lambda: [_act(_image(rng, M, K, N))],
        "embedding": lambda: [labels(rng, M, N), _act(_x(rng, N, K))],
        "embedding_bwd": lambda: [_act(_x(rng, N, K)), labels(rng, M, N), _act(_x(rng, M, K))],
    }
    if op == "unflatten":  # the inverse of flatten, of the same images' shapes
        B, Q, Y, Z = _image(rng, M, K, N).shape
        return [Case([_act(_x(rng, B, Q * Y * Z))], [{"channels": Q, "height": Y, "width": Z}])]
    return [Case(table[op](), [{}])] if op in table else None


def make(op, rng, shape):
    """-> [Case] of `op` at the (M, K, N) triple `shape`."""
    M, K, N = shape
    if op in STEPS:  # any shape: a vector, a matrix and a stack of matrices
        return [_update(op, rng, s) for s in ((N,), (M, N), (X, M, N))]
    network = _network_case(op, rng, M, K, N)
    if network is not None:
        return network
    heads = 1 + K % 3
    cases = {
        "matmul": lambda: [_act(_x(rng, M, K)), _act(_x(rng, K, N))],
        "matmul_bwd": lambda: [_act(_x(rng, M, K)), _act(_x(rng, K, N)), _act(_x(rng, M, N))],
        "bmm": lambda: [_act(_x(rng, X, M, K)), _act(_x(rng, X, K, N))],
        "bmm_bwd": lambda: [_act(_x(rng, X, M, K)), _act(_x(rng, X, K, N)), _act(_x(rng, X, M, N))],
        "linear": lambda: [_act(_x(rng, M, K)), _act(_x(rng, K, N)), _act(_x(rng, N))],
        "linear_bwd": lambda: [_act(_x(rng, M, K)), _act(_x(rng, K, N)), _act(_x(rng, M, N))],
        "softmax_xent": lambda: [_act(_x(rng, M, N) * 3), labels(rng, M, N)],
        "softmax_xent_bwd": lambda: [_act(_probs(rng, M, N)), labels(rng, M, N)],
    }
    if op in cases:
        return [Case(cases[op](), [{}])]
    if op == "softmax":  # T = M queries over S = N sources, masked and not
        return [
            Case([_act(_x(rng, X, M, N) * 3)], [{"causal": causal, "scale": 0.7}])
            for causal in (True, False)
        ]
    if op == "softmax_bwd":
        return [
            Case([_act(_softmax_rows(rng, M, N, causal)), _act(_x(rng, X, M, N))], [{"scale": 0.7}])
            for causal in (True, False)
        ]
    if op == "split_heads":  # batch M of K positions, `heads` heads of N features each
        return [
            Case(
                [_act(_x(rng, M * K, heads * N))],
                [{"batch": M, "heads": heads, "transpose": transpose}],
            )
            for transpose in (False, True)
        ]
    if op == "merge_heads":  # the inverse: x_XTE, or x_XET when transposed
        return [
            Case(
                [_act(_x(rng, M * heads, *((N, K) if transposed else (K, N))))],
                [{"batch": M, "heads": heads, "transposed": transposed}],
            )
            for transposed in (False, True)
        ]
    raise KeyError(f"op_cases has no inputs for {op!r}")


def run(ops, op, case):
    """-> the op's outputs as host arrays; an update returns its p and state after its steps."""
    placed = [ops.put(x, role) for x, role in case.inputs]
    if case.grads:
        p, _, *state = placed
        for g, kwargs in zip(case.grads, case.steps, strict=True):
            getattr(ops, op)(p, ops.put(g, "activation"), *state, **kwargs)
        ops.sync()
        return [ops.get(x) for x in (p, *state)]
    result = getattr(ops, op)(*placed, **case.steps[0])
    ops.sync()
    result = result if isinstance(result, tuple) else (result,)
    return [np.asarray(r) if isinstance(r, float) else ops.get(r) for r in result]
