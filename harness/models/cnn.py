"""The CNN: conv -> relu -> pool -> conv -> relu -> pool -> linear -> softmax cross-entropy.

Images are x_BQYZ (batch, channels, height, width). Both convs are 3 x 3, stride 1, padding 1
(they keep the image's size; each pool halves it), so 28 x 28 digits leave the second pool
as 7 x 7 images, flattened into rows of features for the linear head.
"""

from __future__ import annotations

from harness.models.update import apply_update

CNN_PARAMS = ("w1_FQJL", "b1_F", "w2_FQJL", "b2_F", "w3_IO", "b3_O")
CONV = {"stride": 1, "padding": 1}


def cnn_forward(ops, params, x_BQYZ, labels_B):
    """-> (loss, probs_BC, cache)"""
    w1_FQJL, b1_F, w2_FQJL, b2_F, w3_IO, b3_O = params
    z1_BFUW = ops.conv2d(x_BQYZ, w1_FQJL, b1_F, **CONV)
    a1_BFUW = ops.relu(z1_BFUW)
    p1_BQYZ = ops.maxpool2d(a1_BFUW)  # the next conv's input: its channels are Q
    z2_BFUW = ops.conv2d(p1_BQYZ, w2_FQJL, b2_F, **CONV)
    a2_BFUW = ops.relu(z2_BFUW)
    f_BI = ops.flatten(ops.maxpool2d(a2_BFUW))
    loss, probs_BC = ops.softmax_xent(ops.linear(f_BI, w3_IO, b3_O), labels_B)
    return loss, probs_BC, (x_BQYZ, z1_BFUW, a1_BFUW, p1_BQYZ, z2_BFUW, a2_BFUW, f_BI, probs_BC)


def cnn_backward(ops, params, cache, labels_B, shapes):
    """-> grads in the order of params. shapes: the second pool's output (F, U, W), what the
    head's input gradient unflattens to. The images need no gradient: the first conv2d_bwd's
    dx is dropped (a rung computes it; the FLOPs count it)."""
    _, _, w2_FQJL, _, w3_IO, _ = params
    x_BQYZ, z1_BFUW, a1_BFUW, p1_BQYZ, z2_BFUW, a2_BFUW, f_BI, probs_BC = cache
    df_BI, dw3_IO, db3_O = ops.linear_bwd(f_BI, w3_IO, ops.softmax_xent_bwd(probs_BC, labels_B))
    channels, height, width = shapes
    dp2_BQYZ = ops.unflatten(df_BI, channels=channels, height=height, width=width)
    dz2_BFUW = ops.relu_bwd(z2_BFUW, ops.maxpool2d_bwd(a2_BFUW, dp2_BQYZ))
    dp1_BQYZ, dw2_FQJL, db2_F = ops.conv2d_bwd(p1_BQYZ, w2_FQJL, dz2_BFUW, **CONV)
    dz1_BFUW = ops.relu_bwd(z1_BFUW, ops.maxpool2d_bwd(a1_BFUW, dp1_BQYZ))
    _, dw1_FQJL, db1_F = ops.conv2d_bwd(x_BQYZ, params[0], dz1_BFUW, **CONV)
    return [dw1_FQJL, db1_F, dw2_FQJL, db2_F, dw3_IO, db3_O]


def cnn_step(ops, params, x_BQYZ, labels_B, shapes, opt, state, t):
    """One training step in place; -> the loss before the update."""
    loss, _, cache = cnn_forward(ops, params, x_BQYZ, labels_B)
    apply_update(ops, opt, params, cnn_backward(ops, params, cache, labels_B, shapes), state, t)
    return loss
