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
