"""Finite-difference checks (float64) of every backward of the reference, and of the models.

The impls are checked against the reference's backward (test_ops.py); these tests check that
backward against the derivative of the reference's own forward, so the chain is closed.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness import models
from harness.reference import Reference

REF = Reference()
H = 1e-6


def numeric_grad(loss, x):
    """d loss / d x by central differences, one entry at a time (x is changed and restored)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        keep = x[idx]
        x[idx] = keep + H
        up = loss()
        x[idx] = keep - H
        down = loss()
        x[idx] = keep
        grad[idx] = (up - down) / (2 * H)
    return grad


def assert_close(analytic, numeric):
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def test_matmul_bwd(rng):
    a_MK, b_KN, dc_MN = (
        rng.standard_normal((3, 5)),
        rng.standard_normal((5, 7)),
        rng.standard_normal((3, 7)),
    )
    da_MK, db_KN = REF.matmul_bwd(a_MK, b_KN, dc_MN)
    loss = lambda: np.sum(REF.matmul(a_MK, b_KN) * dc_MN)
    assert_close(da_MK, numeric_grad(loss, a_MK))
    assert_close(db_KN, numeric_grad(loss, b_KN))


def test_bmm_bwd(rng):
    a_XMK, b_XKN, dc_XMN = (rng.standard_normal(s) for s in ((2, 3, 4), (2, 4, 5), (2, 3, 5)))
    da_XMK, db_XKN = REF.bmm_bwd(a_XMK, b_XKN, dc_XMN)
    loss = lambda: np.sum(REF.bmm(a_XMK, b_XKN) * dc_XMN)
    assert_close(da_XMK, numeric_grad(loss, a_XMK))
    assert_close(db_XKN, numeric_grad(loss, b_XKN))


def test_linear_bwd(rng):
    x_BI, w_IO, b_O, dy_BO = (rng.standard_normal(s) for s in ((4, 3), (3, 5), (5,), (4, 5)))
    dx_BI, dw_IO, db_O = REF.linear_bwd(x_BI, w_IO, dy_BO)
    loss = lambda: np.sum(REF.linear(x_BI, w_IO, b_O) * dy_BO)
    assert_close(dx_BI, numeric_grad(loss, x_BI))
    assert_close(dw_IO, numeric_grad(loss, w_IO))
    assert_close(db_O, numeric_grad(loss, b_O))


def test_relu_bwd(rng):
    x_BI = rng.standard_normal((4, 6))
    x_BI[np.abs(x_BI) < 1e-3] = 0.5  # keep away from the kink, where no derivative exists
    dy_BI = rng.standard_normal((4, 6))
    loss = lambda: np.sum(REF.relu(x_BI) * dy_BI)
    assert_close(REF.relu_bwd(x_BI, dy_BI), numeric_grad(loss, x_BI))


@pytest.mark.parametrize("causal", [False, True])
def test_softmax_bwd(rng, causal):
    x_XTS, dy_XTS = rng.standard_normal((2, 4, 4)), rng.standard_normal((2, 4, 4))
    loss = lambda: np.sum(REF.softmax(x_XTS, causal=causal, scale=0.6) * dy_XTS)
    y_XTS = REF.softmax(x_XTS, causal=causal, scale=0.6)
    assert_close(REF.softmax_bwd(y_XTS, dy_XTS, scale=0.6), numeric_grad(loss, x_XTS))


def test_softmax_xent_bwd(rng):
    logits_BC, labels_B = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    loss = lambda: REF.softmax_xent(logits_BC, labels_B)[0]
    _, probs_BC = REF.softmax_xent(logits_BC, labels_B)
    assert_close(REF.softmax_xent_bwd(probs_BC, labels_B), numeric_grad(loss, logits_BC))


def test_mlp_backward_through_the_model(rng):
    dims = [6, 5, 4, 3]
    params = [
        rng.standard_normal(s) * 0.5 for i, o in zip(dims[:-1], dims[1:]) for s in ((i, o), (o,))
    ]
    x_BI, labels_B = rng.standard_normal((7, dims[0])), rng.integers(0, dims[-1], 7)
    loss = lambda: models.mlp_forward(REF, params, x_BI, labels_B)[0]
    _, _, cache = models.mlp_forward(REF, params, x_BI, labels_B)
    grads = models.mlp_backward(REF, params, cache, labels_B)
    for p, g in zip(params, grads):
        assert_close(g, numeric_grad(loss, p))


def test_attention_backward_through_the_model(rng):
    B, T, D, G = 2, 4, 6, 2
    params = [rng.standard_normal(s) * 0.5 for _ in range(4) for s in ((D, D), (D,))]
    x_RD, dy_RD = rng.standard_normal((B * T, D)), rng.standard_normal((B * T, D))
    loss = lambda: np.sum(models.attention_forward(REF, params, x_RD, B, G, D)[0] * dy_RD)
    _, cache = models.attention_forward(REF, params, x_RD, B, G, D)
    dx_RD, grads = models.attention_backward(REF, params, cache, dy_RD, B, G)
    assert_close(dx_RD, numeric_grad(loss, x_RD))
    for p, g in zip(params, grads):
        assert_close(g, numeric_grad(loss, p))


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_optimizer_updates_follow_their_formulas(rng, opt):
    p, g = rng.standard_normal(5), rng.standard_normal(5)
    state = [[np.zeros(5) for _ in range(models.OPT_STATE[opt])]]
    before = p.copy()
    models.apply_update(REF, opt, [p], [g], state, 1)
    hyper = models.HYPER[opt]
    if opt == "sgd":
        expected = before - hyper["lr"] * g
    elif opt == "momentum":
        expected = before - hyper["lr"] * g  # v starts at 0, so v = g after one step
    else:  # Adam's first step: m_hat = g, v_hat = g^2, so the step is lr * sign(g)
        expected = before - hyper["lr"] * g / (np.abs(g) + hyper["eps"])
    np.testing.assert_allclose(p, expected, rtol=1e-12)


# ---- the CNN's and the transformer's ops, and the whole models ----------------------------


@pytest.mark.parametrize("op", ["gelu", "sigmoid", "tanh"])
def test_activation_bwd(rng, op):
    x, dy = rng.standard_normal((3, 2, 4)) * 3, rng.standard_normal((3, 2, 4))
    loss = lambda: np.sum(getattr(REF, op)(x) * dy)
    given = x if op == "gelu" else getattr(REF, op)(x)  # sigmoid and tanh read their output
    assert_close(getattr(REF, f"{op}_bwd")(given, dy), numeric_grad(loss, x))


def test_mse_bwd(rng):
    y, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    assert_close(REF.mse_bwd(y, target), numeric_grad(lambda: REF.mse(y, target), y))


def test_layernorm_bwd(rng):
    x_RD, gamma_D, beta_D = rng.standard_normal((5, 7)) * 2 + 1, *rng.standard_normal((2, 7))
    dy_RD = rng.standard_normal((5, 7))
    loss = lambda: np.sum(REF.layernorm(x_RD, gamma_D, beta_D)[0] * dy_RD)
    _, mean_R, rstd_R = REF.layernorm(x_RD, gamma_D, beta_D)
    dx_RD, dgamma_D, dbeta_D = REF.layernorm_bwd(x_RD, gamma_D, mean_R, rstd_R, dy_RD)
    assert_close(dx_RD, numeric_grad(loss, x_RD))
    assert_close(dgamma_D, numeric_grad(loss, gamma_D))
    assert_close(dbeta_D, numeric_grad(loss, beta_D))


def test_embedding_bwd_sums_repeated_tokens(rng):
    w_VD, tokens_R = rng.standard_normal((4, 3)), np.array([2, 0, 2, 3, 2])
    dx_RD = rng.standard_normal((5, 3))
    loss = lambda: np.sum(REF.embedding(tokens_R, w_VD) * dx_RD)
    assert_close(REF.embedding_bwd(w_VD, tokens_R, dx_RD), numeric_grad(loss, w_VD))


@pytest.mark.parametrize("J, L, stride, padding", [(1, 1, 1, 0), (3, 3, 1, 1), (3, 2, 2, 1)])
def test_conv2d_bwd(rng, J, L, stride, padding):
    x_BQYZ, w_FQJL, b_F = (rng.standard_normal(s) for s in ((2, 3, 5, 6), (4, 3, J, L), (4,)))
    y_BFUW = REF.conv2d(x_BQYZ, w_FQJL, b_F, stride, padding)
    dy_BFUW = rng.standard_normal(y_BFUW.shape)
    loss = lambda: np.sum(REF.conv2d(x_BQYZ, w_FQJL, b_F, stride, padding) * dy_BFUW)
    dx_BQYZ, dw_FQJL, db_F = REF.conv2d_bwd(x_BQYZ, w_FQJL, dy_BFUW, stride, padding)
    assert_close(dx_BQYZ, numeric_grad(loss, x_BQYZ))
    assert_close(dw_FQJL, numeric_grad(loss, w_FQJL))
    assert_close(db_F, numeric_grad(loss, b_F))


def test_maxpool2d_bwd(rng):
    x_BQYZ = rng.standard_normal((2, 2, 5, 4))  # odd height: the last row is dropped
    dy_BQUW = rng.standard_normal((2, 2, 2, 2))
    loss = lambda: np.sum(REF.maxpool2d(x_BQYZ) * dy_BQUW)
    assert_close(REF.maxpool2d_bwd(x_BQYZ, dy_BQUW), numeric_grad(loss, x_BQYZ))


def _params(rng, shapes, scale=0.5):
    return [rng.standard_normal(s) * scale for s in shapes]


def _block_shapes(D):
    sizes = {"D": D, "H": 4 * D}
    return [tuple(sizes[c] for c in name.rsplit("_", 1)[1]) for name in models.BLOCK_PARAMS]


def test_transformer_block_backward_through_the_model(rng):
    B, T, D, G = 2, 3, 4, 2
    params = _params(rng, _block_shapes(D))
    x_RD, dy_RD = rng.standard_normal((B * T, D)), rng.standard_normal((B * T, D))
    loss = lambda: np.sum(models.block_forward(REF, params, x_RD, B, G, D)[0] * dy_RD)
    _, cache = models.block_forward(REF, params, x_RD, B, G, D)
    dx_RD, grads = models.block_backward(REF, params, cache, dy_RD, B, G)
    assert_close(dx_RD, numeric_grad(loss, x_RD))
    for name, p, g in zip(models.BLOCK_PARAMS, params, grads, strict=True):
        assert g.shape == p.shape, name
        assert_close(g, numeric_grad(loss, p))


def test_gpt_backward_through_the_model(rng):
    B, T, D, G, V, layers = 2, 3, 4, 2, 5, 2
    shapes = [(V, D), (T, D), *_block_shapes(D) * layers, (D,), (D,)]
    params = _params(rng, shapes)
    tokens_R, labels_R = rng.integers(0, V, B * T), rng.integers(0, V, B * T)
    positions_R = np.tile(np.arange(T), B)
    args = (tokens_R, positions_R, labels_R, B, G, D)
    loss = lambda: models.gpt_forward(REF, params, *args)[0]
    _, cache = models.gpt_forward(REF, params, *args)
    grads = models.gpt_backward(REF, params, cache, labels_R, B, G)
    assert len(grads) == len(models.gpt_params(layers)) == len(params)
    for p, g in zip(params, grads, strict=True):
        assert_close(g, numeric_grad(loss, p))


def test_cnn_backward_through_the_model(rng):
    B, Q, F1, F2, Y, C = 2, 1, 3, 2, 9, 4  # 9 -> pool 4 -> pool 2: odd edges dropped on the way
    shapes = [(F1, Q, 3, 3), (F1,), (F2, F1, 3, 3), (F2,), (F2 * 2 * 2, C), (C,)]
    params = _params(rng, shapes)
    x_BQYZ, labels_B = rng.standard_normal((B, Q, Y, Y)), rng.integers(0, C, B)
    loss = lambda: models.cnn_forward(REF, params, x_BQYZ, labels_B)[0]
    _, _, cache = models.cnn_forward(REF, params, x_BQYZ, labels_B)
    grads = models.cnn_backward(REF, params, cache, labels_B, (F2, 2, 2))
    for p, g in zip(params, grads, strict=True):
        assert_close(g, numeric_grad(loss, p))
