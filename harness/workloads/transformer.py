"""GPT-2's pre-norm transformer block, alone (fwd / bwd / an Adam step, dy as if from the
layers above) and stacked in a small GPT with its embeddings and tied head.

FLOPs: the block's attention is attention.py's count; on top, two layernorms (layers.py's 7
and 13 per entry), the MLP's two products with biases and the gelu (10 and 18 per entry), and
the residual adds (one per entry; the backward's meet where two paths join, one per entry).
"""

from __future__ import annotations

import numpy as np

from harness import models
from harness.workloads.attention import attention_error_bound, attention_flops
from harness.workloads.base import F32, Workload, counter, normal, optimizer_state, rounding_bound
from harness.workloads.optim import FLOPS_PER_STEP


def _checked(names, params) -> tuple:
    """A step's outputs: every parameter but the key biases. bk_D's gradient is zero by
    symmetry (a shift of every key's score leaves the softmax unchanged), so what Adam steps it
    by is rounding noise divided by its own size: a full learning rate in a random direction,
    on every rung and in the reference alike. It is updated, but not compared."""
    return tuple(p for name, p in zip(names, params, strict=True) if not name.endswith("bk_D"))


def block_arrays(rng, D, prefix=""):
    """One block's parameters by name: gammas near 1, betas and biases small, weights scaled
    by 1 / sqrt(fan-in) (H = 4D)."""
    sizes = {"D": D, "H": 4 * D}
    arrays = {}
    for name in models.BLOCK_PARAMS:
        shape = tuple(sizes[c] for c in name.rsplit("_", 1)[1])
        if name[0] == "g":  # a layernorm's gamma
            arrays[prefix + name] = (1 + normal(rng, shape, 0.1), "weight")
        elif len(shape) == 1:
            arrays[prefix + name] = (normal(rng, shape, 0.1), "bias")
        else:
            arrays[prefix + name] = (normal(rng, shape, np.sqrt(1.0 / shape[0])), "weight")
    return arrays


def _block_inputs(size, rng):
    R, D = size["B"] * size["T"], size["D"]
    return {
        "x_RD": (normal(rng, (R, D)), "activation"),
        "dy_RD": (normal(rng, (R, D)), "activation"),
        **block_arrays(rng, D),
    }


def _block_setup(ops, size, phase, placed):
    B, G, D = size["B"], size["G"], size["D"]
    params = [placed[k] for k in models.BLOCK_PARAMS]
    x_RD, dy_RD = placed["x_RD"], placed["dy_RD"]
    if phase == "fwd":
        return lambda: (models.block_forward(ops, params, x_RD, B, G, D)[0],)
    if phase == "bwd":
        _, cache = models.block_forward(ops, params, x_RD, B, G, D)

        def bwd():
            dx_RD, grads = models.block_backward(ops, params, cache, dy_RD, B, G)
            return (dx_RD, *grads)

        return bwd
    opt = size["opt"]
    state, steps = optimizer_state(ops, placed, models.BLOCK_PARAMS, opt), counter()

    def step():
        models.block_step(ops, params, x_RD, dy_RD, B, G, D, opt, state, next(steps))
        return _checked(models.BLOCK_PARAMS, params)

    return step


def _block_param_count(D):
    return 12 * D * D + 13 * D  # 4 D x D projections, D x 4D twice, biases and norms


def _block_flops(size, phase):
    R, D = size["B"] * size["T"], size["D"]
    H = 4 * D
    attn = attention_flops(size, "fwd" if phase == "fwd" else "bwd")
    if phase == "fwd":
        mlp = 2 * R * D * H + R * H + 10 * R * H + 2 * R * H * D + R * D
        return attn + 2 * 7 * R * D + mlp + 2 * R * D
    mlp = 4 * R * D * H + R * H + 18 * R * H + 4 * R * H * D + R * D
    bwd = attn + 2 * 13 * R * D + mlp + 2 * R * D
    if phase == "bwd":
        return bwd
    return _block_flops(size, "fwd") + bwd + FLOPS_PER_STEP[size["opt"]] * _block_param_count(D)


def _block_bytes(size, phase):
    R, D = size["B"] * size["T"], size["D"]
    params = _block_param_count(D)
    if phase == "fwd":  # read x and the parameters, write y
        return F32 * (2 * R * D + params)
    # read x, dy, the parameters and what the forward kept (its ~12 R x D activations, the
    # hidden R x 4D twice and the scores); write dx and the gradients
    kept = 12 * R * D + 2 * R * 4 * D + size["B"] * size["G"] * size["T"] ** 2
    bwd = F32 * (3 * R * D + 2 * params + kept)
    if phase == "bwd":
        return bwd
    state = models.OPT_STATE[size["opt"]]
    return bwd + F32 * 2 * params * (1 + state)


def _block_error_bound(size, phase):
    D = size["D"]
    ln = 2 * D + 5
    fwd = (
        ln
        + attention_error_bound(size, "fwd", roundings=True)
        + ln
        + (D + 1)
        + 10
        + (4 * D + 1)
        + 2
    )
    if phase == "fwd":
        return rounding_bound(fwd)
    bwd = fwd + attention_error_bound(size, "bwd", roundings=True) + 2 * (4 * D + 2 * D) + 20
    return rounding_bound(bwd + (FLOPS_PER_STEP[size["opt"]] if phase == "step" else 0))


_BLOCK_SIZES = (
    {"B": 2, "T": 16, "D": 32, "G": 4, "opt": "adam"},
    {"B": 4, "T": 64, "D": 128, "G": 4, "opt": "adam"},
    {"B": 8, "T": 128, "D": 256, "G": 8, "opt": "adam"},
)

TRANSFORMER_BLOCK = Workload(
    name="transformer_block",
    description="GPT-2's pre-norm block: ln, causal attention, residual, ln, MLP 4D with gelu, "
    "residual; forward, backward, Adam step",
    phases=("fwd", "bwd", "step"),
    sizes=_BLOCK_SIZES,
    quick_sizes=_BLOCK_SIZES[:2],
    inputs=_block_inputs,
    setup=_block_setup,
    flops=_block_flops,
    bytes=_block_bytes,
    error_bound=_block_error_bound,
    params=("opt",),
)

# ---- GPT ----------------------------------------------------------------------------------


def _gpt_inputs(size, rng):
    B, T, D, V = size["B"], size["T"], size["D"], size["V"]
    arrays = {
        "tokens_R": (rng.integers(0, V, B * T), "label"),
        "positions_R": (np.tile(np.arange(T), B), "label"),
        "labels_R": (rng.integers(0, V, B * T), "label"),
        "wte_VD": (normal(rng, (V, D), 0.1), "weight"),
        "wpe_TD": (normal(rng, (T, D), 0.1), "weight"),
    }
    for layer in range(size["L"]):
        arrays.update(block_arrays(rng, D, prefix=f"h{layer}_"))
    arrays["gf_D"] = (1 + normal(rng, (D,), 0.1), "weight")
    arrays["bf_D"] = (normal(rng, (D,), 0.1), "bias")
    return arrays


def _gpt_setup(ops, size, phase, placed):
    B, G, D = size["B"], size["G"], size["D"]
    names = models.gpt_params(size["L"])
    params = [placed[k] for k in names]
    ids = (placed["tokens_R"], placed["positions_R"], placed["labels_R"])
    if phase == "fwd":

        def fwd():
            loss, cache = models.gpt_forward(ops, params, *ids, B, G, D)
            return loss, cache[-1]  # and the probabilities, as an MLP's forward gives

        return fwd
    if phase == "bwd":
        _, cache = models.gpt_forward(ops, params, *ids, B, G, D)
        return lambda: tuple(models.gpt_backward(ops, params, cache, ids[2], B, G))
    opt = size["opt"]
    state, steps = optimizer_state(ops, placed, names, opt), counter()

    def step():
        models.gpt_step(ops, params, *ids, B, G, D, opt, state, next(steps))
        return _checked(names, params)

    return step


def _gpt_flops(size, phase):
    R, D, V, L = size["B"] * size["T"], size["D"], size["V"], size["L"]
    blocks = L * _block_flops({**size, "opt": "sgd"}, "fwd" if phase == "fwd" else "bwd")
    if phase == "fwd":  # + embeddings' add, the final layernorm, the head and its softmax
        return blocks + R * D + 7 * R * D + 2 * R * D * V + 5 * R * V
    bwd = blocks + 2 * R * V + 4 * R * D * V + 13 * R * D + 3 * R * D + V * D
    if phase == "bwd":
        return bwd
    n_params = V * D + size["T"] * D + L * _block_param_count(D) + 2 * D
    return _gpt_flops(size, "fwd") + bwd + FLOPS_PER_STEP[size["opt"]] * n_params


def _gpt_bytes(size, phase):
    R, D, V, L = size["B"] * size["T"], size["D"], size["V"], size["L"]
    n_params = V * D + size["T"] * D + L * _block_param_count(D) + 2 * D
    ids = 3 * 8 * R
    if phase == "fwd":  # read the ids and the parameters, write the probabilities
        return ids + F32 * (n_params + R * V)
    kept = L * (12 * R * D + 8 * R * D + size["B"] * size["G"] * size["T"] ** 2) + R * V
    bwd = ids + F32 * (2 * n_params + kept)
    if phase == "bwd":
        return bwd
    return bwd + F32 * 2 * n_params * (1 + models.OPT_STATE[size["opt"]])


def _gpt_error_bound(size, phase):
    block = _block_error_bound({**size, "opt": "sgd"}, "fwd" if phase == "fwd" else "bwd")
    return block * np.sqrt(size["L"] + 1)  # L blocks and the head, each a chain like a block's


GPT = Workload(
    name="gpt",
    description="a small GPT: token and position embeddings, L pre-norm blocks, final "
    "layernorm, head tied to the token table; forward (loss), backward, Adam step",
    phases=("fwd", "bwd", "step"),
    sizes=(
        {"B": 2, "T": 16, "D": 32, "G": 4, "L": 2, "V": 65, "opt": "adam"},
        {"B": 4, "T": 64, "D": 128, "G": 4, "L": 4, "V": 65, "opt": "adam"},
    ),
    quick_sizes=({"B": 2, "T": 16, "D": 32, "G": 4, "L": 2, "V": 65, "opt": "adam"},),
    inputs=_gpt_inputs,
    setup=_gpt_setup,
    flops=_gpt_flops,
    bytes=_gpt_bytes,
    error_bound=_gpt_error_bound,
    params=("opt",),
)
