"""A hand-written MNIST-MLP training step in plain NumPy: the yardstick for the NumPy rung.

What a practitioner would write without a harness: `@`, in-place updates, nothing composed.
The NumPy rung's step over the contract is measured against it, side by side in one run.
"""

from __future__ import annotations

import numpy as np


def make_step(x_BI, labels_B, params, lr):
    """-> step(): one SGD step of the MLP, params = [w_IO, b_O, ...] updated in place."""
    B = len(labels_B)
    rows_B = np.arange(B)
    n_layers = len(params) // 2

    def step():
        inputs, pre = [], []
        h_BI = x_BI
        for layer in range(n_layers):
            inputs.append(h_BI)
            z_BO = h_BI @ params[2 * layer] + params[2 * layer + 1]
            pre.append(z_BO)
            h_BI = np.maximum(z_BO, 0) if layer < n_layers - 1 else z_BO
        z_BC = h_BI - h_BI.max(axis=1, keepdims=True)
        e_BC = np.exp(z_BC)
        probs_BC = e_BC / e_BC.sum(axis=1, keepdims=True)
        dz_BO = probs_BC
        dz_BO[rows_B, labels_B] -= 1
        dz_BO /= B
        for layer in reversed(range(n_layers)):
            w_IO = params[2 * layer]
            dx_BI = dz_BO @ w_IO.T
            w_IO -= lr * (inputs[layer].T @ dz_BO)
            params[2 * layer + 1] -= lr * dz_BO.sum(axis=0)
            if layer > 0:
                dz_BO = dx_BI * (pre[layer - 1] > 0)

    return step
