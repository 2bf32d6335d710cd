"""The optimizer step every model's training step ends with, and its hyper-parameters."""

from __future__ import annotations

# Optimizer hyper-parameters shared by every model and workload.
HYPER = {
    "sgd": {"lr": 0.1},
    "momentum": {"lr": 0.05, "mu": 0.9},
    "adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
}
# How many state arrays each optimizer keeps per parameter (momentum: v; adam: m, v).
OPT_STATE = {"sgd": 0, "momentum": 1, "adam": 2}


def apply_update(ops, opt, params, grads, state, t, lr=None):
    """One optimizer step over a list of parameters, in place. `t` counts steps from 1.

    `lr` replaces HYPER's learning rate (a training run's --lr); None keeps it.
    """
    if opt not in HYPER:
        raise ValueError(f"unknown optimizer {opt!r}: expected one of {sorted(HYPER)}")
    hyper = {**HYPER[opt], **({} if lr is None else {"lr": lr})}
    for i, (p, g) in enumerate(zip(params, grads)):
        if opt == "sgd":
            ops.sgd(p, g, **hyper)
        elif opt == "momentum":
            ops.momentum(p, g, state[i][0], **hyper)
        else:
            ops.adam(p, g, state[i][0], state[i][1], t, **hyper)
