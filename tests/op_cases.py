"""Seeded inputs for every contract op, at shapes that include 1, primes and odd sizes.

One maker per op: (rng, shape) -> (list of (host array, role), kwargs). The tests run the
same inputs through an impl and through the float64 reference.
"""

from __future__ import annotations

import numpy as np

# (M, K, N) triples: ones, primes and odd sizes, none a multiple of a tile.
SHAPES = [(1, 1, 1), (3, 17, 5), (13, 7, 29)]
SEEDS = range(5)


def _x(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _probs(rng, B, C):
    e = np.exp(rng.standard_normal((B, C)))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _softmax_rows(rng, X, T, S, causal):
    z = rng.standard_normal((X, T, S))
    if causal:
        z = np.where(np.tri(T, S, dtype=bool), z, -np.inf)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _act(x):
    return (x, "activation")


def make(op, rng, shape):
    M, K, N = shape
    X = 2
    labels = (rng.integers(0, N, M), "label")
    heads = 1 if K == 1 else (K if K < 8 else 1)  # D = N * heads keeps E = N
    cases = {
        "matmul": ([_act(_x(rng, M, K)), _act(_x(rng, K, N))], {}),
        "matmul_bwd": ([_act(_x(rng, M, K)), _act(_x(rng, K, N)), _act(_x(rng, M, N))], {}),
        "bmm": ([_act(_x(rng, X, M, K)), _act(_x(rng, X, K, N))], {}),
        "bmm_bwd": ([_act(_x(rng, X, M, K)), _act(_x(rng, X, K, N)),
                     _act(_x(rng, X, M, N))], {}),
        "linear": ([_act(_x(rng, M, K)), _act(_x(rng, K, N)), _act(_x(rng, N))], {}),
        "linear_bwd": ([_act(_x(rng, M, K)), _act(_x(rng, K, N)), _act(_x(rng, M, N))], {}),
        "add": ([_act(_x(rng, M, K)), _act(_x(rng, M, K))], {}),
        "relu": ([_act(_x(rng, M, K))], {}),
        "relu_bwd": ([_act(_x(rng, M, K)), _act(_x(rng, M, K))], {}),
        "softmax": ([_act(_x(rng, X, K, K) * 3)], {"causal": True, "scale": 0.7}),
        "softmax_bwd": ([_act(_softmax_rows(rng, X, K, K, True)), _act(_x(rng, X, K, K))],
                        {"scale": 0.7}),
        "softmax_xent": ([_act(_x(rng, M, N) * 3), labels], {}),
        "softmax_xent_bwd": ([_act(_probs(rng, M, N)), labels], {}),
        "split_heads": ([_act(_x(rng, M * K, N * heads))],
                        {"batch": M, "heads": heads, "transpose": bool(K % 2)}),
        "merge_heads": ([_act(_x(rng, M * heads, N, K))],
                        {"batch": M, "heads": heads, "transposed": True}),
        "sgd": ([_act(_x(rng, M, K)), _act(_x(rng, M, K))], {"lr": 0.1}),
        "momentum": ([_act(_x(rng, M, K)), _act(_x(rng, M, K)), _act(_x(rng, M, K))],
                     {"lr": 0.05, "mu": 0.9}),
        "adam": ([_act(_x(rng, N)), _act(_x(rng, N)), _act(_x(rng, N) * 0.1),
                  _act(np.abs(_x(rng, N)) * 0.1)],
                 {"t": 3, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    }
    return cases[op]


def run(ops, op, inputs, kwargs):
    """-> the op's outputs as host arrays; an in-place update returns its updated inputs."""
    placed = [ops.put(x, role) for x, role in inputs]
    result = getattr(ops, op)(*placed, **kwargs)
    ops.sync()
    if result is None:
        return [ops.get(x) for x in placed]
    result = result if isinstance(result, tuple) else (result,)
    return [np.asarray(r) if isinstance(r, float) else ops.get(r) for r in result]
