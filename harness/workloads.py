"""Workloads: shapes, seeded inputs, what one phase runs, and its analytic FLOPs and bytes.

Adding a workload is one entry in WORKLOADS. A workload's `setup(ops, size, phase, placed)`
does the untimed preparation (placing optimizer state, running the forward whose cache a
backward needs) and returns the zero-argument callable that the harness checks and times.

FLOPs count what the ladder executes: dense products (2 per multiply-add), one per
elementwise add, multiply, max, exp or divide; the causal mask does not halve the attention
FLOPs because no rung skips the masked half. Bytes are the fewest a phase must move through
memory: each input read once and each output written once, float32 (4 bytes) throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness import models
from harness.contract import check_host_array

F32 = 4  # bytes per element

# Relative-error tolerances of the correctness gate, ||out - ref|| / ||ref|| in float32.
# A single product sums K terms, so its error grows like sqrt(K) * 6e-8: 1e-5 holds to
# K = 4096 with margin. Composed models chain several products and exps: 1e-4.
TOL_PRODUCT = 1e-5
TOL_MODEL = 1e-4


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


# ---- helpers shared by the workloads --------------------------------------------------------


def _normal(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _layer_params(rng, dims):
    """{w{l}_IO, b{l}_O} for consecutive layer widths, He-scaled so activations stay O(1)."""
    arrays = {}
    for layer, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
        arrays[f"w{layer}_IO"] = (_normal(rng, (n_in, n_out), np.sqrt(2.0 / n_in)), "weight")
        arrays[f"b{layer}_O"] = (_normal(rng, (n_out,), 0.1), "bias")
    return arrays


# ---- matmul -------------------------------------------------------------------------------


def _matmul_inputs(size, rng):
    M, K, N = size["M"], size["K"], size["N"]
    return {"a_MK": (_normal(rng, (M, K)), "activation"),
            "b_KN": (_normal(rng, (K, N)), "weight"),
            "dc_MN": (_normal(rng, (M, N)), "activation")}


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


_SQUARE = (16, 17, 32, 64, 100, 127, 128, 256, 257, 512, 1000, 1024, 2048, 4096)
_QUICK_SQUARE = (16, 17, 64, 127, 128, 256)

MATMUL = Workload(
    name="matmul",
    description="c_MN = a_MK @ b_KN over square sizes, powers of two and odd",
    phases=("fwd", "bwd"),
    sizes=tuple({"M": n, "K": n, "N": n} for n in _SQUARE),
    quick_sizes=tuple({"M": n, "K": n, "N": n} for n in _QUICK_SQUARE),
    inputs=_matmul_inputs, setup=_matmul_setup, flops=_matmul_flops, bytes=_matmul_bytes,
    tol=TOL_PRODUCT,
)

# ---- one linear layer ---------------------------------------------------------------------


def _linear_inputs(size, rng):
    B, I, O = size["B"], size["I"], size["O"]
    return {"x_BI": (_normal(rng, (B, I)), "activation"),
            "w_IO": (_normal(rng, (I, O), np.sqrt(1.0 / I)), "weight"),
            "b_O": (_normal(rng, (O,)), "bias"),
            "dy_BO": (_normal(rng, (B, O)), "activation")}


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


LINEAR = Workload(
    name="linear",
    description="y_BO = x_BI @ w_IO + b_O, and its backward",
    phases=("fwd", "bwd"),
    sizes=({"B": 64, "I": 784, "O": 128}, {"B": 256, "I": 1024, "O": 1024},
           {"B": 256, "I": 4096, "O": 4096}),
    quick_sizes=({"B": 64, "I": 784, "O": 128},),
    inputs=_linear_inputs, setup=_linear_setup, flops=_linear_flops, bytes=_linear_bytes,
    tol=TOL_PRODUCT,
)

# ---- MLPs: XOR 2-4-2 and the MNIST-class 784-128-64-10 -------------------------------------


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
    return {"x_BI": (x_BI, "activation"), "labels_B": (labels_B, "label"),
            **_layer_params(rng, dims)}


def _mlp_setup(ops, size, phase, placed):
    params = [v for k, v in placed.items() if k[0] in "wb" and k[1].isdigit()]
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
    state = [[ops.put(np.zeros_like(placed.host[k]), placed.roles[k])
              for _ in range(models.OPT_STATE[opt])]
             for k in placed if k[0] in "wb" and k[1].isdigit()]
    steps = iter(range(1, 1 << 62))

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
    bwd = (sum(2 * B * i * o + B * o for i, o in pairs) + sum(2 * B * i * o for i, o in pairs[1:])
           + B * hidden + 2 * B * C)
    n_params = sum(i * o + o for i, o in pairs)
    opt = {"sgd": 2, "momentum": 4, "adam": 14}[size.get("opt", "sgd")] * n_params
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


XOR = Workload(
    name="xor",
    description="XOR with an MLP 2-4-2: the seeds' 2-4-1 net with its one output as two "
                "logits, so it shares the softmax cross-entropy of every classifier here",
    phases=("fwd", "bwd", "step"),
    sizes=({"B": 4, "layers": "2-4-2", "opt": "sgd"},),
    quick_sizes=({"B": 4, "layers": "2-4-2", "opt": "sgd"},),
    inputs=_mlp_inputs, setup=_mlp_setup, flops=_mlp_flops, bytes=_mlp_bytes,
    params=("layers", "opt"),
)

MNIST_MLP = Workload(
    name="mnist_mlp",
    description="MNIST-class MLP 784-128-64-10 at batch 64: forward, backward, SGD step",
    phases=("fwd", "bwd", "step"),
    sizes=({"B": 64, "layers": "784-128-64-10", "opt": "sgd"},),
    quick_sizes=({"B": 64, "layers": "784-128-64-10", "opt": "sgd"},),
    inputs=_mlp_inputs, setup=_mlp_setup, flops=_mlp_flops, bytes=_mlp_bytes,
    params=("layers", "opt"),
)

# ---- optimizer updates alone ----------------------------------------------------------------


def _optim_inputs(size, rng):
    rows, N = 1024, size["N"] // 1024  # a weight of N floats, laid out as 1024 rows
    return {"p_IO": (_normal(rng, (rows, N)), "weight"),
            "g_IO": (_normal(rng, (rows, N)), "weight"),
            "m_IO": (_normal(rng, (rows, N), 0.1), "weight"),
            "v_IO": (np.abs(_normal(rng, (rows, N), 0.1)), "weight")}


def _optim_setup(ops, size, phase, placed):
    p, g, m, v = (placed[k] for k in ("p_IO", "g_IO", "m_IO", "v_IO"))
    opt, hyper = size["opt"], models.HYPER[size["opt"]]

    def step():
        if opt == "sgd":
            ops.sgd(p, g, **hyper)
            return (p,)
        if opt == "momentum":
            ops.momentum(p, g, v, **hyper)
            return p, v
        ops.adam(p, g, m, v, 1, **hyper)
        return p, m, v
    return step


def _optim_flops(size, phase):
    # sgd: mul, sub. momentum: mul, add; mul, sub. adam: m (3), v (4), two bias corrections,
    # sqrt, +eps, divide, * lr, subtract = 14.
    return {"sgd": 2, "momentum": 4, "adam": 14}[size["opt"]] * size["N"]


def _optim_bytes(size, phase):
    arrays_read, arrays_written = {"sgd": (2, 1), "momentum": (3, 2), "adam": (4, 3)}[size["opt"]]
    return F32 * size["N"] * (arrays_read + arrays_written)


OPTIM = Workload(
    name="optim",
    description="optimizer updates alone (sgd, momentum, adam) on a weight of N floats",
    phases=("step",),
    sizes=tuple({"N": 1 << 20, "opt": o} for o in ("sgd", "momentum", "adam")),
    quick_sizes=tuple({"N": 1 << 16, "opt": o} for o in ("sgd", "momentum", "adam")),
    inputs=_optim_inputs, setup=_optim_setup, flops=_optim_flops, bytes=_optim_bytes,
    tol=TOL_PRODUCT, params=("opt",),
)

# ---- causal multi-head self-attention ------------------------------------------------------


def _attention_inputs(size, rng):
    B, T, D = size["B"], size["T"], size["D"]
    arrays = {"x_RD": (_normal(rng, (B * T, D)), "activation"),
              "dy_RD": (_normal(rng, (B * T, D)), "activation")}
    for proj in "qkvo":
        arrays[f"w{proj}_DD"] = (_normal(rng, (D, D), np.sqrt(1.0 / D)), "weight")
        arrays[f"b{proj}_D"] = (_normal(rng, (D,), 0.1), "bias")
    return arrays


def _attention_setup(ops, size, phase, placed):
    B, D, G = size["B"], size["D"], size["G"]
    params = [placed[f"{wb}{proj}_{dims}"] for proj in "qkvo"
              for wb, dims in (("w", "DD"), ("b", "D"))]
    x_RD, dy_RD = placed["x_RD"], placed["dy_RD"]
    if phase == "fwd":
        return lambda: (models.attention_forward(ops, params, x_RD, B, G, D)[0],)
    _, cache = models.attention_forward(ops, params, x_RD, B, G, D)

    def bwd():
        dx_RD, grads = models.attention_backward(ops, params, cache, dy_RD, B, G)
        return (dx_RD, *grads)
    return bwd


def _attention_flops(size, phase):
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


ATTENTION = Workload(
    name="attention",
    description="causal multi-head self-attention block: q, k, v and output projections",
    phases=("fwd", "bwd"),
    sizes=({"B": 2, "T": 16, "D": 32, "G": 4}, {"B": 4, "T": 64, "D": 128, "G": 4},
           {"B": 8, "T": 256, "D": 256, "G": 8}),
    quick_sizes=({"B": 2, "T": 16, "D": 32, "G": 4}, {"B": 4, "T": 64, "D": 128, "G": 4}),
    inputs=_attention_inputs, setup=_attention_setup, flops=_attention_flops,
    bytes=_attention_bytes,
)

WORKLOADS = {w.name: w for w in (MATMUL, LINEAR, XOR, MNIST_MLP, OPTIM, ATTENTION)}


def get_workload(name: str) -> Workload:
    if name not in WORKLOADS:
        raise KeyError(f"unknown workload {name!r}: expected one of {', '.join(WORKLOADS)}")
    return WORKLOADS[name]
