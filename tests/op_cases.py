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


def make(op, rng, shape):
    """-> [Case] of `op` at the (M, K, N) triple `shape`."""
    M, K, N = shape
    if op in STEPS:  # any shape: a vector, a matrix and a stack of matrices
        return [_update(op, rng, s) for s in ((N,), (M, N), (X, M, N))]
    heads = 1 + K % 3
    cases = {
        "matmul": lambda: [_act(_x(rng, M, K)), _act(_x(rng, K, N))],
        "matmul_bwd": lambda: [_act(_x(rng, M, K)), _act(_x(rng, K, N)), _act(_x(rng, M, N))],
        "bmm": lambda: [_act(_x(rng, X, M, K)), _act(_x(rng, X, K, N))],
        "bmm_bwd": lambda: [_act(_x(rng, X, M, K)), _act(_x(rng, X, K, N)), _act(_x(rng, X, M, N))],
        "linear": lambda: [_act(_x(rng, M, K)), _act(_x(rng, K, N)), _act(_x(rng, N))],
        "linear_bwd": lambda: [_act(_x(rng, M, K)), _act(_x(rng, K, N)), _act(_x(rng, M, N))],
        "add": lambda: [_act(_x(rng, M, N)), _act(_x(rng, M, N))],
        "relu": lambda: [_act(_x(rng, M, N))],
        "relu_bwd": lambda: [_act(_x(rng, M, N)), _act(_x(rng, M, N))],
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
