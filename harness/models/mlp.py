"""The MLP: linear -> relu -> ... -> linear -> softmax cross-entropy."""

from __future__ import annotations

from harness.models.update import apply_update

# ---- MLP: linear -> relu -> ... -> linear -> softmax cross-entropy ------------------------
# params is a flat list [w_IO, b_O, w_IO, b_O, ...], one pair per layer.


def mlp_forward(ops, params, x_BI, labels_B):
    """-> (loss, probs_BC, cache). An impl that fuses the MLP (contract.Impl.fused) runs the
    whole model its own way (sharded-mlp pairs its layers, which single ops cannot say)."""
    if "mlp" in ops.fused:
        return ops.mlp_forward(params, x_BI, labels_B)
    n_layers = len(params) // 2
    inputs, pre = [], []
    h_BI = x_BI
    for layer in range(n_layers):
        w_IO, b_O = params[2 * layer], params[2 * layer + 1]
        inputs.append(h_BI)
        z_BO = ops.linear(h_BI, w_IO, b_O)
        pre.append(z_BO)
        h_BI = ops.relu(z_BO) if layer < n_layers - 1 else z_BO
    loss, probs_BC = ops.softmax_xent(h_BI, labels_B)
    return loss, probs_BC, (inputs, pre, probs_BC)


def mlp_backward(ops, params, cache, labels_B):
    """-> grads, in the order of params"""
    if "mlp" in ops.fused:
        return ops.mlp_backward(params, cache, labels_B)
    inputs, pre, probs_BC = cache
    n_layers = len(params) // 2
    grads = [None] * len(params)
    dz_BO = ops.softmax_xent_bwd(probs_BC, labels_B)
    for layer in reversed(range(n_layers)):
        dx_BI, grads[2 * layer], grads[2 * layer + 1] = ops.linear_bwd(
            inputs[layer], params[2 * layer], dz_BO
        )
        if layer > 0:
            dz_BO = ops.relu_bwd(pre[layer - 1], dx_BI)
    return grads


def mlp_step(ops, params, x_BI, labels_B, opt, state, t):
    """One training step in place; -> the loss before the update."""
    loss, _, cache = mlp_forward(ops, params, x_BI, labels_B)
    grads = mlp_backward(ops, params, cache, labels_B)
    apply_update(ops, opt, params, grads, state, t)
    return loss
