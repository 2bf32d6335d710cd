"""Single layers of a transformer: layernorm over (B, T, D) tokens and gelu over the rows of
the MLP's hidden features (R, H).

FLOPs per entry, counted as everywhere (harness/workloads/__init__.py): layernorm's forward
sums for the mean (1), centres (1), squares and sums for the variance (2), normalises (1),
scales and shifts (2): 7; its backward recentres and rescales x (2), multiplies dy by gamma (1),
takes two row means (1 + 2), combines them into dx (4), and sums dgamma (2) and dbeta (1): 13.
gelu's tanh form: x^3 (2), times 0.044715 (1), plus x (1), times sqrt(2/pi) (1), the tanh
(as an exp and a divide: 2), plus 1 (1), times x (1), times 0.5 (1): 10; its backward the
tanh again with its derivative and the chain: 18.
"""

from __future__ import annotations

from harness.workloads.base import F32, Workload, normal, rounding_bound


def _layernorm_inputs(size, rng):
    R, D = size["B"] * size["T"], size["D"]
    return {
        "x_RD": (normal(rng, (R, D)) * 2 + 1, "activation"),  # rows with a mean and a spread
        "gamma_D": (1 + normal(rng, (D,), 0.1), "weight"),
        "beta_D": (normal(rng, (D,), 0.1), "bias"),
        "dy_RD": (normal(rng, (R, D)), "activation"),
    }


def _layernorm_setup(ops, size, phase, placed):
    x_RD, gamma_D, beta_D = placed["x_RD"], placed["gamma_D"], placed["beta_D"]
    if phase == "fwd":
        return lambda: ops.layernorm(x_RD, gamma_D, beta_D)
    _, mean_R, rstd_R = ops.layernorm(x_RD, gamma_D, beta_D)
    return lambda: ops.layernorm_bwd(x_RD, gamma_D, mean_R, rstd_R, placed["dy_RD"])


def _layernorm_flops(size, phase):
    return (7 if phase == "fwd" else 13) * size["B"] * size["T"] * size["D"]


def _layernorm_bytes(size, phase):
    R, D = size["B"] * size["T"], size["D"]
    if phase == "fwd":  # read x, gamma, beta; write y, mean, rstd
        return F32 * (2 * R * D + 2 * D + 2 * R)
    return F32 * (3 * R * D + 3 * D + 2 * R)  # read x, gamma, mean, rstd, dy; write dx, dg, db


def _layernorm_error_bound(size, phase):
    D, R = size["D"], size["B"] * size["T"]
    fwd = 2 * D + 5  # the mean's sum over D, the variance's, then rstd and the affine map
    return rounding_bound(fwd if phase == "fwd" else fwd + 2 * D + max(R, D))


LAYERNORM = Workload(
    name="layernorm",
    description="layernorm over the D features of B*T tokens, gamma and beta (GPT-2's)",
    phases=("fwd", "bwd"),
    sizes=(
        {"B": 2, "T": 16, "D": 32},
        {"B": 4, "T": 64, "D": 128},
        {"B": 8, "T": 128, "D": 256},
        {"B": 8, "T": 256, "D": 768},
    ),
    quick_sizes=({"B": 2, "T": 16, "D": 32}, {"B": 4, "T": 64, "D": 128}),
    inputs=_layernorm_inputs,
    setup=_layernorm_setup,
    flops=_layernorm_flops,
    bytes=_layernorm_bytes,
    error_bound=_layernorm_error_bound,
)


# ---- pointwise ops: gelu, and beside it sigmoid, tanh and the mse loss -------------------
# op -> FLOPs per entry (fwd, bwd) and arrays of R x H read and written (fwd, bwd).
POINTWISE_FLOPS = {"gelu": (10, 18), "sigmoid": (4, 3), "tanh": (2, 3), "mse": (3, 2)}
POINTWISE_ARRAYS = {"gelu": (2, 3), "sigmoid": (2, 3), "tanh": (2, 3), "mse": (2, 3)}


def _pointwise_inputs(size, rng):
    shape = (size["R"], size["H"])
    return {
        "x_RH": (normal(rng, shape, 3.0), "activation"),  # reaching the tails
        "dy_RH": (normal(rng, shape), "activation"),  # a gradient, or mse's target
    }


def _pointwise_setup(ops, size, phase, placed):
    op, x_RH, dy_RH = size["op"], placed["x_RH"], placed["dy_RH"]
    forward, backward = getattr(ops, op), getattr(ops, f"{op}_bwd")
    if op == "mse":  # y and its target
        return lambda: ((forward if phase == "fwd" else backward)(x_RH, dy_RH),)
    if phase == "fwd":
        return lambda: (forward(x_RH),)
    # gelu's backward reads its input; sigmoid's and tanh's read their output
    given_RH = x_RH if op == "gelu" else forward(x_RH)
    return lambda: (backward(given_RH, dy_RH),)


def _pointwise(name, description, ops, shapes, quick):
    def sized(shape_list):
        return tuple({"op": op, "R": R, "H": H} for op in ops for R, H in shape_list)

    def count(table):
        return lambda size, phase: table[size["op"]][phase == "bwd"] * size["R"] * size["H"]

    return Workload(
        name=name,
        description=description,
        phases=("fwd", "bwd"),
        sizes=sized(shapes),
        quick_sizes=sized(quick),
        inputs=_pointwise_inputs,
        setup=_pointwise_setup,
        flops=count(POINTWISE_FLOPS),
        bytes=lambda size, phase: F32 * count(POINTWISE_ARRAYS)(size, phase),
        # one rounding per flop of an entry; mse's mean sums every entry
        error_bound=lambda size, phase: rounding_bound(
            size["R"] * size["H"]
            if size["op"] == "mse" and phase == "fwd"
            else count(POINTWISE_FLOPS)({**size, "R": 1, "H": 1}, phase)
        ),
        params=("op",),
    )


GELU = _pointwise(
    "gelu",
    "gelu (GPT-2's tanh form) over R rows of H hidden features",
    ("gelu",),
    ((128, 128), (256, 512), (1024, 1024), (2048, 3072)),
    ((128, 128), (256, 512)),
)
POINTWISE = _pointwise(
    "pointwise",
    "sigmoid, tanh and the mse loss over R x H entries",
    ("sigmoid", "tanh", "mse"),
    ((256, 512), (1024, 1024)),
    ((256, 512),),
)
