"""The ops that select rather than compute: maxpool2d (the max of each 2 x 2 window) and the
embedding lookup with its scatter-add backward. Their FLOPs are few (a pool's 3 comparisons
per window, counted as maxes; the backward's one add per gathered entry), so their cells sit
on the memory roofs."""

from __future__ import annotations

from harness.workloads.base import F32, Workload, normal, rounding_bound


def _pool_inputs(size, rng):
    B, Q, Y = size["B"], size["Q"], size["Y"]
    return {
        "x_BQYZ": (normal(rng, (B, Q, Y, Y)), "activation"),
        "dy_BQUW": (normal(rng, (B, Q, Y // 2, Y // 2)), "activation"),
    }


def _pool_setup(ops, size, phase, placed):
    x_BQYZ = placed["x_BQYZ"]
    if phase == "fwd":
        return lambda: (ops.maxpool2d(x_BQYZ),)
    return lambda: (ops.maxpool2d_bwd(x_BQYZ, placed["dy_BQUW"]),)


def _pool_entries(size):
    """(entries of the image, of the pooled image)."""
    B, Q, Y = size["B"], size["Q"], size["Y"]
    return B * Q * Y * Y, B * Q * (Y // 2) ** 2


MAXPOOL2D = Workload(
    name="maxpool2d",
    description="2x2 max pooling, stride 2, of B x Q images Y x Y (odd Y drops the last row)",
    phases=("fwd", "bwd"),
    sizes=({"B": 8, "Q": 8, "Y": 28}, {"B": 32, "Q": 32, "Y": 15}, {"B": 64, "Q": 64, "Y": 28}),
    quick_sizes=({"B": 8, "Q": 8, "Y": 28}, {"B": 32, "Q": 32, "Y": 15}),
    inputs=_pool_inputs,
    setup=_pool_setup,
    # fwd: 3 maxes per window; bwd: the same search again, then one write per window
    flops=lambda size, phase: (3 if phase == "fwd" else 4) * _pool_entries(size)[1],
    # fwd reads x, writes y; bwd reads x and dy, writes dx
    bytes=lambda size, phase: (
        F32
        * (
            sum(_pool_entries(size))
            if phase == "fwd"
            else 2 * _pool_entries(size)[0] + _pool_entries(size)[1]
        )
    ),
    error_bound=lambda size, phase: rounding_bound(1),  # a max is exact; dx copies dy
)


def _embedding_inputs(size, rng):
    R, V, D = size["B"] * size["T"], size["V"], size["D"]
    return {
        "tokens_R": (rng.integers(0, V, R), "label"),
        "w_VD": (normal(rng, (V, D), 0.1), "weight"),
        "dx_RD": (normal(rng, (R, D)), "activation"),
    }


def _embedding_setup(ops, size, phase, placed):
    tokens_R, w_VD = placed["tokens_R"], placed["w_VD"]
    if phase == "fwd":
        return lambda: (ops.embedding(tokens_R, w_VD),)
    return lambda: (ops.embedding_bwd(w_VD, tokens_R, placed["dx_RD"]),)


def _embedding_bytes(size, phase):
    R, V, D = size["B"] * size["T"], size["V"], size["D"]
    if phase == "fwd":  # read the ids and the rows they pick (at most V), write x
        return 8 * R + F32 * (min(R, V) * D + R * D)
    return 8 * R + F32 * (R * D + V * D)  # read the ids and dx, write the table's gradient


EMBEDDING = Workload(
    name="embedding",
    description="token embedding: gather rows of a V x D table, and the backward's scatter-add",
    phases=("fwd", "bwd"),
    sizes=(
        {"B": 4, "T": 64, "V": 65, "D": 128},
        {"B": 8, "T": 256, "V": 65, "D": 384},
        {"B": 8, "T": 1024, "V": 50257, "D": 768},
    ),
    quick_sizes=({"B": 4, "T": 64, "V": 65, "D": 128},),
    inputs=_embedding_inputs,
    setup=_embedding_setup,
    flops=lambda size, phase: 0 if phase == "fwd" else size["B"] * size["T"] * size["D"],
    bytes=_embedding_bytes,
    # a row of the table's gradient sums the rows of its token: about R / V of them
    error_bound=lambda size, phase: rounding_bound(
        1 if phase == "fwd" else max(1, size["B"] * size["T"] // size["V"])
    ),
)
