"""Workloads: shapes, seeded inputs, what one phase runs, and its analytic FLOPs and bytes.

- base.py: the Workload record, Placed inputs, tolerances and the helpers all families share;
- products.py: matmul and one linear layer;
- mlp.py: the XOR and MNIST-class MLPs;
- optim.py: the optimizer updates alone;
- attention.py: causal multi-head self-attention;
- layers.py: layernorm, gelu and the other pointwise ops alone;
- conv.py: one conv2d layer and the CNN;
- gather.py: maxpool2d and the embedding lookup;
- transformer.py: GPT-2's transformer block and a small GPT;
- collectives.py: the bare collectives over MPI ranks, and their alpha-beta fit.

Adding a workload is one entry in WORKLOADS (its definition beside its family's). A workload's
`setup(ops, size, phase, placed)` does the untimed preparation (placing optimizer state,
running the forward whose cache a backward needs) and returns the zero-argument callable that
the harness checks and times.

FLOPs count what the ladder executes: dense products (2 per multiply-add), one per
elementwise add, multiply, max, exp or divide; the causal mask does not halve the attention
FLOPs because no rung skips the masked half. Bytes are the fewest a phase must move through
memory: each input read once and each output written once, float32 (4 bytes) throughout.
"""

from __future__ import annotations

from harness.workloads import attention, conv, gather, layers, mlp, optim, products, transformer
from harness.workloads.base import (
    F32,
    TOL_MODEL,
    TOL_PRODUCT,
    Placed,
    Workload,
    layer_params,
    param_names,
    size_label,
)
from harness.workloads.collectives import COLLECTIVES_WORKLOAD

WORKLOADS = {
    w.name: w
    for w in (
        products.MATMUL,
        products.LINEAR,
        mlp.XOR,
        mlp.MNIST_MLP,
        optim.OPTIM,
        attention.ATTENTION,
        layers.LAYERNORM,
        layers.GELU,
        layers.POINTWISE,
        conv.CONV2D,
        conv.CNN,
        gather.MAXPOOL2D,
        gather.EMBEDDING,
        transformer.TRANSFORMER_BLOCK,
        transformer.GPT,
        COLLECTIVES_WORKLOAD,
    )
}


def get_workload(name: str) -> Workload:
    if name not in WORKLOADS:
        raise KeyError(f"unknown workload {name!r}: expected one of {', '.join(WORKLOADS)}")
    return WORKLOADS[name]


__all__ = [
    "F32",
    "TOL_MODEL",
    "TOL_PRODUCT",
    "WORKLOADS",
    "Placed",
    "Workload",
    "get_workload",
    "layer_params",
    "param_names",
    "size_label",
]
