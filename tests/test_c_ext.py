"""The C rung (impls/c_ext.py, kernels/c): the correctness gate on every GEMM rung at odd
shapes, threads, the scalar fallback, bad input, the GIL, and the build without a compiler.

Every op of every rung is also checked against the reference by tests/test_ops.py; here the
sizes are larger and odd (1, 3, 17, 129, 1000) so that blocks, panels and tiles all have ragged
edges, and the transposed operands of the backward products are covered on every rung.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from harness import registry
from harness.execute import grid
from harness.execute.check import check
from harness.measure.gate import rel_err
from harness.reference import Reference
from harness.workloads import TOL_PRODUCT
from impls import c_ext

ROOT = Path(__file__).resolve().parent.parent
RUNGS = {"c-naive": 1, "c-loops": 2, "c-blocked": 3, "c": 4}
UNAVAILABLE = c_ext.CImpl.unavailable_reason()
needs_build = pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))

# (M, K, N): each of 1, 3, 17, 129 and 1000 in every position; 1000 crosses the MC and KC
# blocks of rung 3 and 4100 its NC panel. Every rung runs these.
ODD_SHAPES = [
    (1, 1, 1),
    (3, 17, 129),
    (17, 129, 1000),
    (129, 1000, 3),
    (1000, 3, 17),
    (1000, 129, 1),
    (1, 1000, 129),
    (5, 7, 4100),
]
BIG_SHAPES = [(1000, 1000, 1000), (1000, 129, 1000)]  # the blocked rungs only: seconds on naive


def _x(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _check_products(impl, M, K, N, seed=0):
    """matmul, matmul_bwd and linear_bwd (both transposed products) against float64."""
    rng, ref = np.random.default_rng(seed), Reference()
    a_MK, b_KN, dc_MN, b_N = _x(rng, M, K), _x(rng, K, N), _x(rng, M, N), _x(rng, N)
    a64, b64, dc64 = (x.astype(np.float64) for x in (a_MK, b_KN, dc_MN))
    checks = {
        "matmul": ([impl.matmul(a_MK, b_KN)], [ref.matmul(a64, b64)]),
        "matmul_bwd": (impl.matmul_bwd(a_MK, b_KN, dc_MN), ref.matmul_bwd(a64, b64, dc64)),
        "linear": ([impl.linear(a_MK, b_KN, b_N)], [ref.linear(a64, b64, b_N)]),
        "linear_bwd": (impl.linear_bwd(a_MK, b_KN, dc_MN), ref.linear_bwd(a64, b64, dc64)),
    }
    for op, (got, want) in checks.items():
        err = rel_err(got, want)
        assert err <= TOL_PRODUCT, f"{impl.name}.{op} at {(M, K, N)}: rel err {err:.3g}"


@needs_build
@pytest.mark.parametrize("name", list(RUNGS))
def test_every_rung_passes_the_runners_gate_on_every_quick_cell(name):
    impl = registry.create(name)
    cells = grid.plan(impls=[name], quick=True)
    assert {c.workload for c in cells} >= {
        *("matmul", "mnist_mlp", "attention", "optim"),
        *("layernorm", "gelu", "embedding", "conv2d", "maxpool2d", "transformer_block", "cnn"),
    }
    for cell in cells:
        row, fn = check(impl, cell, budget=None)
        if cell.workload == "collectives":  # one process has no ranks (contract.Impl.collective)
            assert row["status"] == "unsupported", (cell, row["reason"])
            continue
        assert row["status"] == "ok", (cell, row["reason"])
        assert fn is not None


@needs_build
@pytest.mark.parametrize("shape", ODD_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", list(RUNGS))
def test_products_match_the_reference_at_odd_shapes(name, shape):
    _check_products(registry.create(name), *shape)


@needs_build
@pytest.mark.parametrize("shape", BIG_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", ["c-blocked", "c"])
def test_blocked_rungs_match_the_reference_at_1000(name, shape):
    _check_products(registry.create(name), *shape)


@pytest.fixture
def scalar_kernel():
    import nnladder_c

    nnladder_c.set_kernel("scalar")
    yield nnladder_c
    nnladder_c.set_kernel("auto")


@pytest.mark.parametrize(
    "shape", ODD_SHAPES[:5] + BIG_SHAPES[1:], ids=lambda s: "x".join(map(str, s))
)
@needs_build
def test_scalar_micro_kernel_fallback_matches_the_reference(scalar_kernel, shape):
    assert scalar_kernel.kernel() == "scalar"
    impl = registry.create("c-blocked")
    assert impl.info()["kernel"] == "3_blocked/scalar"
    _check_products(impl, *shape)


@needs_build
def test_kernel_choice_is_checked_and_auto_picks_the_best_this_cpu_runs(scalar_kernel):
    with pytest.raises(ValueError, match="set_kernel: name must be 'auto'.*got 'fast'"):
        scalar_kernel.set_kernel("fast")
    scalar_kernel.set_kernel("auto")
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " avx2" in flags and " fma" in flags:
        assert scalar_kernel.kernel() == "avx2"


@needs_build
def test_threads_follow_threadpoolctl_like_blas_and_are_in_the_row():
    assert any(lib["user_api"] == "openmp" for lib in threadpool_info()), (
        "threadpoolctl does not see the extension's OpenMP runtime"
    )
    impl = registry.create("c")
    with threadpool_limits(1):
        assert impl.info()["threads"] == 1
    with threadpool_limits(2):
        assert impl.info()["threads"] == 2
        # both slab directions, N >= M and M > N, with work for a team of two
        _check_products(impl, 1000, 129, 1000)
        _check_products(impl, 2000, 129, 70)
    assert registry.create("c-blocked").info()["threads"] == 1
    cell = grid.plan(impls=["c"], workloads=["matmul"], quick=True)[0]
    with threadpool_limits(1):
        assert check(impl, cell, budget=None)[0]["threads"] == 1


@needs_build
@pytest.mark.parametrize("heads", [1, 2, 5])  # fewer heads than threads, and more
def test_bmm_splits_batches_across_threads_correctly(heads):
    # 256^3 per head: work for a team of two (kernels/c: GEMM_MIN_MULADDS_PER_THREAD)
    rng, ref = np.random.default_rng(1), Reference()
    a, b, dc = _x(rng, heads, 256, 256), _x(rng, heads, 256, 256), _x(rng, heads, 256, 256)
    impl = registry.create("c")
    with threadpool_limits(2):
        got = [impl.bmm(a, b), *impl.bmm_bwd(a, b, dc)]
    a64, b64, dc64 = (x.astype(np.float64) for x in (a, b, dc))
    want = [ref.bmm(a64, b64), *ref.bmm_bwd(a64, b64, dc64)]
    assert rel_err(got, want) <= TOL_PRODUCT


# ((J, L), stride, padding) beyond tests/op_cases.py's: kernels/c/conv.c's shifted copy for a
# conv that keeps the width (stride 1, 2 padding = L - 1) with J != L, so U is not Y, and with
# no padding; 5 x 5; strides of 3, and of 2 over an even kernel.
CONV_GEOMETRIES = [((2, 3), 1, 1), ((3, 1), 1, 0), ((5, 5), 1, 2), ((3, 3), 3, 2), ((4, 2), 2, 1)]


def _check_conv(impl, rng, B, Q, Y, Z, F, kernel, stride, padding):
    """conv2d and conv2d_bwd against the float64 reference."""
    ref = Reference()
    x, w, b = _x(rng, B, Q, Y, Z), _x(rng, F, Q, *kernel), _x(rng, F)
    U, W = (Y + 2 * padding - kernel[0]) // stride + 1, (Z + 2 * padding - kernel[1]) // stride + 1
    dy = _x(rng, B, F, U, W)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    got = [impl.conv2d(x, w, b, stride, padding), *impl.conv2d_bwd(x, w, dy, stride, padding)]
    want = [
        ref.conv2d(x64, w64, b, stride, padding),
        *ref.conv2d_bwd(x64, w64, dy64, stride, padding),
    ]
    err = rel_err(got, want)
    assert err <= 1e-5, f"{impl.name} conv {kernel} stride {stride} padding {padding}: {err:.3g}"


@needs_build
@pytest.mark.parametrize("geometry", CONV_GEOMETRIES, ids=str)
@pytest.mark.parametrize("name", list(RUNGS))
def test_conv_matches_the_reference_at_more_geometries(name, geometry):
    impl, rng = registry.create(name), np.random.default_rng(3)
    _check_conv(impl, rng, 2, 3, 9, 11, 5, *geometry)
    # F = 16 fills whole tiles of rung 3, so the last U*W % 16 columns are their own product
    _check_conv(impl, rng, 1, 2, 7, 6, 16, *geometry)


@needs_build
@pytest.mark.parametrize("B", [1, 2, 5])  # fewer images than threads, and more
def test_conv_splits_images_across_threads_correctly(B):
    # 32 x 14 x 14 x 432 multiply-adds an image: with 2 or more images, work for a team of two
    impl = registry.create("c")
    with threadpool_limits(2):
        _check_conv(impl, np.random.default_rng(4), B, 48, 14, 14, 32, (3, 3), 1, 1)
        _check_conv(impl, np.random.default_rng(5), B, 48, 14, 14, 32, (1, 1), 1, 0)


def _sigmoid_and_slope(z):
    """sigmoid(z) and sigmoid'(z) = s (1 - s) in float64 from e = e^-|z|, without the reference's
    1 + tanh, which cancels where sigmoid is tiny (-1e-13 with 1e-3 of its digits wrong)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1, e) / (1 + e), e / (1 + e) ** 2


@needs_build
def test_the_elementwise_ops_keep_their_digits_in_the_tails():
    """gelu, sigmoid, tanh and their backwards entry by entry, not only as a whole array (the
    gate's error): large |x| (no overflow, no NaN), small |x| (tanh from expm1, not 1 - e^-2x;
    tanh_bwd from (1 - y)(1 + y), not 1 - y^2). gelu's e^-|2u| is as good as float32's u:
    its rounding, 2^-24 |2u| absolute, is that much relative error in the exponential."""
    impl = registry.create("c")
    x = np.concatenate([np.geomspace(1e-6, 100, 300), -np.geomspace(1e-6, 100, 300), [0.0]])
    x = x.astype(np.float32)
    x64 = x.astype(np.float64)
    u = np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64**3)
    s, slope = _sigmoid_and_slope(2 * u)
    du_dx = np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x64**2)
    y = impl.tanh(x)
    want = {
        "gelu": (impl.gelu(x), x64 * s),
        "gelu_bwd": (impl.gelu_bwd(x, x), x64 * (s + 2 * x64 * slope * du_dx)),
        "sigmoid": (impl.sigmoid(x), _sigmoid_and_slope(x64)[0]),
        "tanh": (y, np.tanh(x64)),
        "tanh_bwd": (impl.tanh_bwd(y, x), x64 * (1 - y.astype(np.float64) ** 2)),
    }
    conditioning = {"gelu": 2 * np.abs(u) * 2.0**-22, "gelu_bwd": 2 * np.abs(u) * 2.0**-22}
    for op, (got, expected) in want.items():
        assert np.isfinite(got).all(), op
        allowed = (1e-6 + conditioning.get(op, 0)) * np.abs(expected) + 1e-35  # ~ e^-80
        worst = np.argmax(np.abs(got - expected) - allowed)
        assert np.abs(got - expected)[worst] <= allowed[worst], (op, x[worst], got[worst])
    odd = np.array([np.nan, np.inf, -np.inf], np.float32)  # a NaN stays NaN; the limits at inf
    np.testing.assert_array_equal(impl.sigmoid(odd), [np.nan, 1, 0])
    np.testing.assert_array_equal(impl.tanh(odd), [np.nan, 1, -1])
    assert np.isnan(impl.gelu(odd[:1])).all()


@needs_build
@pytest.mark.parametrize("beta2", [0.999, 0.9999])
def test_adam_steps_match_a_float64_update_to_float32_precision(impl, beta2):
    """1 - beta2 taken in float32 (1 - float32(0.999)) put v off by 1.3e-5 relative, 1.7e-4 for
    0.9999, on every step: far above float32's rounding (~1e-7 here), which is what is left.

    m and p pass through zero, so they are compared as whole arrays (the gate's norm-wise
    error); v is a sum of squares, so it is compared entry by entry as well.
    """
    rng, ref = np.random.default_rng(6), Reference()
    p = _x(rng, 64, 33)
    m, v = np.zeros_like(p), np.zeros_like(p)
    p64, m64, v64 = p.astype(np.float64), np.zeros(p.shape), np.zeros(p.shape)
    lr, beta1, eps = 0.1, 0.9, 1e-8  # a large lr, so an error in v shows in p as well
    for t in range(1, 6):
        g = _x(rng, *p.shape)
        impl.adam(p, g, m, v, t, lr, beta1, beta2, eps)
        ref.adam(p64, g.astype(np.float64), m64, v64, t, lr, beta1, beta2, eps)
    for name, got, want in (("m", m, m64), ("v", v, v64), ("p", p, p64)):
        err = rel_err([got], [want])
        assert err <= 1e-6, f"adam's {name} after 5 steps, beta2={beta2}: rel err {err:.3g}"
    np.testing.assert_allclose(v, v64, rtol=1e-6, err_msg=f"adam's v, beta2={beta2}")


# ---- bad input: errors that name the argument, never a crash -------------------------------


# ---- the fused MLP (kernels/c/mlp.c) --------------------------------------------------------

# (B, widths): one layer, a width of 1, widths that cross the micro-kernel's 6 x 16 tile, and
# a batch of one; 784-128-64-10 is the MNIST model the targets time.
MLP_SHAPES = [(3, (5, 4)), (17, (7, 1, 3)), (1, (13, 129, 17, 2)), (64, (784, 128, 64, 10))]


def _mlp(rng, B, widths):
    params = [p for i, o in zip(widths[:-1], widths[1:]) for p in (_x(rng, i, o), _x(rng, o))]
    return params, _x(rng, B, widths[0]), rng.integers(0, widths[-1], B)


@needs_build
@pytest.mark.parametrize("shape", MLP_SHAPES, ids=lambda s: f"B{s[0]}-" + "-".join(map(str, s[1])))
@pytest.mark.parametrize("name", list(RUNGS))
def test_fused_mlp_matches_the_model_composed_from_reference_ops(name, shape):
    from harness import models
    from harness.workloads import TOL_MODEL

    impl, ref, rng = registry.create(name), Reference(), np.random.default_rng(3)
    params, x_BI, labels_B = _mlp(rng, *shape)
    loss, probs_BC, cache = models.mlp_forward(impl, params, x_BI, labels_B)
    grads = models.mlp_backward(impl, params, cache, labels_B)
    params64 = [p.astype(np.float64) for p in params]
    loss64, probs64, cache64 = models.mlp_forward(ref, params64, x_BI.astype(np.float64), labels_B)
    grads64 = models.mlp_backward(ref, params64, cache64, labels_B)
    assert [g.shape for g in grads] == [p.shape for p in params]
    assert abs(loss - loss64) <= TOL_MODEL * max(1.0, abs(loss64))
    err = rel_err([probs_BC, *grads], [probs64, *grads64])
    assert err <= TOL_MODEL, f"{name} at {shape}: rel err {err:.3g}"


@needs_build
def test_fused_mlp_split_between_threads_gives_the_same_bits_as_one_thread():
    """Rung 4 splits the model's rows (forward, dz) and dw's rows (backward) between threads.

    67 rows are 12 micro-kernel tiles with a ragged last one, and 784-130-9 is 6.9M
    multiply-adds, enough for a team of 3: every slab and share boundary is crossed. Each
    output element is summed in the same order whoever computes it, so only the loss (a sum of
    the slabs' sums) may differ, in its last bits.
    """
    impl, rng = registry.create("c"), np.random.default_rng(5)
    params, x_BI, labels_B = _mlp(rng, 67, (784, 130, 9))
    results = {}
    for threads in (1, 2, 3):
        with threadpool_limits(threads):
            loss, probs_BC, cache = impl.mlp_forward(params, x_BI, labels_B)
            results[threads] = (loss, [probs_BC, *impl.mlp_backward(params, cache, labels_B)])
    loss_1, arrays_1 = results[1]
    for threads, (loss, arrays) in results.items():
        assert loss == pytest.approx(loss_1, rel=1e-12), threads
        for name, got, want in zip(
            ["probs_BC", "dw0", "db0", "dw1", "db1"], arrays, arrays_1, strict=True
        ):
            np.testing.assert_array_equal(got, want, err_msg=f"{name} on {threads} threads")


@needs_build
def test_fused_mlp_checks_params_cache_and_labels(impl):
    rng = np.random.default_rng(4)
    params, x_BI, labels_B = _mlp(rng, 3, (5, 4, 2))
    with pytest.raises(TypeError, match="mlp_forward: params must be a list .* got dict"):
        impl.mlp_forward({}, x_BI, labels_B)
    with pytest.raises(ValueError, match="one .w_IO, b_O. pair per layer, got 3 arrays"):
        impl.mlp_forward(params[:3], x_BI, labels_B)
    with pytest.raises(
        ValueError,
        match=r"mlp_forward: x_BI has shape \(3, 5\) but w0_IO has "
        r"shape \(4, 4\): their I axes must agree \(5 vs 4\)",
    ):
        impl.mlp_forward([_x(rng, 4, 4), *params[1:]], x_BI, labels_B)
    with pytest.raises(
        ValueError,
        match=r"w0_IO has shape \(5, 4\) but w1_IO has shape "
        r"\(3, 2\): their O axes must agree \(4 vs 3\)",
    ):
        impl.mlp_forward([params[0], params[1], _x(rng, 3, 2), params[3]], x_BI, labels_B)
    with pytest.raises(ValueError, match=r"w1_IO has shape \(4, 2\) but b1_O has shape \(3,\)"):
        impl.mlp_forward([*params[:3], _x(rng, 3)], x_BI, labels_B)
    with pytest.raises(TypeError, match="mlp_forward: b0_O must have dtype float32"):
        impl.mlp_forward([params[0], params[1].astype(np.float64), *params[2:]], x_BI, labels_B)
    with pytest.raises(ValueError, match=r"labels_B\[0\] is 2, expected a class index in \[0, 2\)"):
        impl.mlp_forward(params, x_BI, np.array([2, 0, 1]))
    with pytest.raises(ValueError, match="x_BI needs at least one row"):
        impl.mlp_forward(params, x_BI[:0], labels_B[:0])
    _, probs_BC, (_, h, _) = impl.mlp_forward(params, x_BI, labels_B)
    with pytest.raises(ValueError, match=r"h must be the tuple of 1 hidden outputs"):
        impl.mlp_backward(params, (x_BI, (), probs_BC), labels_B)
    with pytest.raises(
        ValueError,
        match=r"mlp_backward: h0_BO must have shape \(3, 4\) to match "
        r"x_BI and params, got \(3, 5\)",
    ):
        impl.mlp_backward(params, (x_BI, (_x(rng, 3, 5),), probs_BC), labels_B)
    with pytest.raises(ValueError, match=r"probs_BC must have shape \(3, 2\)"):
        impl.mlp_backward(params, (x_BI, h, probs_BC[:2]), labels_B)
    before = [p.copy() for p in params]
    grads = impl.mlp_backward(params, (x_BI, h, probs_BC), labels_B)
    assert all(np.array_equal(p, q) for p, q in zip(params, before))  # params are only read
    assert [g.shape for g in grads] == [p.shape for p in params]


@pytest.fixture
def impl():
    return registry.create("c")


@needs_build
def test_wrong_dtype_is_a_type_error_naming_argument_dtype_and_shape(impl):
    a = np.ones((3, 4), dtype=np.float64)
    with pytest.raises(
        TypeError,
        match=r"matmul: a_MK must have dtype float32, got "
        r"dtype\('float64'\) with shape \(3, 4\)",
    ):
        impl.matmul(a, np.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match="linear: b_O must be a numpy.ndarray of float32, got list"):
        impl.linear(np.ones((3, 4), np.float32), np.ones((4, 2), np.float32), [0.0, 0.0])


@needs_build
def test_wrong_rank_and_disagreeing_sizes_are_value_errors_with_both_shapes(impl):
    with pytest.raises(ValueError, match=r"matmul: b_KN must have 2 axes \(KN\), got shape \(4,\)"):
        impl.matmul(np.ones((3, 4), np.float32), np.ones(4, np.float32))
    with pytest.raises(
        ValueError,
        match=r"matmul: a_MK has shape \(3, 4\) but b_KN has shape "
        r"\(5, 2\): their K axes must agree \(4 vs 5\)",
    ):
        impl.matmul(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32))
    with pytest.raises(
        ValueError,
        match=r"linear_bwd: x_BI has shape \(3, 4\) but dy_BO has "
        r"shape \(2, 2\): their B axes",
    ):
        impl.linear_bwd(
            np.ones((3, 4), np.float32), np.ones((4, 2), np.float32), np.ones((2, 2), np.float32)
        )
    with pytest.raises(
        ValueError,
        match=r"add: a_\* has shape \(2, 3\) but b_\* has shape "
        r"\(3, 2\): their axes 0 must agree \(2 vs 3\)",
    ):
        impl.add(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="bmm: a_XMK must have 3 axes"):
        impl.bmm(np.ones((3, 4), np.float32), np.ones((1, 4, 2), np.float32))


@needs_build
def test_strided_and_byte_swapped_inputs_are_copied_and_give_right_answers(impl):
    rng = np.random.default_rng(2)
    a_big, b_KN = _x(rng, 17, 258), _x(rng, 129, 5)
    a_MK = a_big[:, ::2]  # (17, 129), strided
    np.testing.assert_allclose(impl.matmul(a_MK, b_KN), a_MK @ b_KN, rtol=1e-4, atol=1e-4)
    a_KM = _x(rng, 129, 17)
    np.testing.assert_allclose(impl.matmul(a_KM.T, b_KN), a_KM.T @ b_KN, rtol=1e-4, atol=1e-4)
    swapped = a_KM.T.astype(">f4")
    np.testing.assert_allclose(impl.matmul(swapped, b_KN), a_KM.T @ b_KN, rtol=1e-4, atol=1e-4)
    x_XTS = _x(rng, 2, 6, 12)[:, :, ::2]
    np.testing.assert_allclose(
        impl.softmax(x_XTS), Reference().softmax(x_XTS.astype(np.float64)), atol=1e-6
    )


@needs_build
def test_arrays_updated_in_place_are_refused_when_strided_or_read_only(impl):
    p = np.ones((4, 6), np.float32)
    with pytest.raises(
        ValueError,
        match=r"sgd: p is updated in place, so it must be "
        r"C-contiguous.*shape \(4, 3\)",
    ):
        impl.sgd(p[:, ::2], np.ones((4, 3), np.float32), 0.1)
    frozen = np.ones((4, 6), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="adam: m is updated in place, so it must be writeable"):
        impl.adam(p, p, frozen, p.copy(), 1, 1e-3, 0.9, 0.999, 1e-8)
    with pytest.raises(
        ValueError,
        match=r"momentum: p has shape \(4, 6\) but v has shape "
        r"\(4, 5\): their axes 1 must agree \(6 vs 5\)",
    ):
        impl.momentum(p, p, np.ones((4, 5), np.float32), 0.1, 0.9)
    with pytest.raises(ValueError, match="adam: t counts steps from 1, got 0"):
        impl.adam(p, p, p.copy(), p.copy(), 0, 1e-3, 0.9, 0.999, 1e-8)
    np.testing.assert_array_equal(p, 1.0)  # nothing was half-applied
    g = np.full((4, 12), 2.0, np.float32)[:, ::2]  # a strided gradient is only read: copied
    impl.sgd(p, g, 0.5)
    np.testing.assert_array_equal(p, 0.0)


@needs_build
def test_bad_labels_are_refused_before_they_index_anything(impl):
    logits = np.zeros((3, 4), np.float32)
    with pytest.raises(
        ValueError,
        match=r"softmax_xent: labels_B\[1\] is 4, expected a class "
        r"index in \[0, 4\)",
    ):
        impl.softmax_xent(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"labels_B\[0\] is -1"):
        impl.softmax_xent_bwd(logits, np.array([-1, 0, 1]))
    with pytest.raises(ValueError, match="labels_B has 2 labels, expected one per row: 3"):
        impl.softmax_xent(logits, np.array([0, 1]))
    with pytest.raises(
        TypeError, match="labels_B must be a 1-d integer array, got dtype numpy.float64"
    ):
        impl.softmax_xent(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(
        ValueError,
        match=r"logits_BC needs at least one row and one class, got "
        r"shape \(0, 4\)",
    ):
        impl.softmax_xent(np.zeros((0, 4), np.float32), np.array([], np.int64))
    loss, _ = impl.softmax_xent(logits, np.array([0, 1, 2], dtype=np.int32))  # any int dtype
    assert loss == pytest.approx(np.log(4.0))


def _f(*shape):
    return np.ones(shape, np.float32)


# (call, error, message): one of each way the argument spec (kernels/c/args.c) refuses a call,
# on ops the tests above leave out: every letter a batched backward shares, a bias, the softmax
# rows, a rank, a dtype checked before a size, empty classes, labels that are not an array,
# optimizer arrays of another rank, an in-place array byte-swapped.
SPEC_ERRORS = [
    (
        lambda c: c.bmm_bwd(_f(2, 3, 4), _f(3, 4, 5), _f(2, 3, 5), 4),
        ValueError,
        r"bmm_bwd: a_XMK has shape \(2, 3, 4\) but b_XKN has shape \(3, 4, 5\): their X axes must "
        r"agree \(2 vs 3\)",
    ),
    (
        lambda c: c.bmm_bwd(_f(2, 3, 4), _f(2, 4, 5), _f(2, 3, 6), 4),
        ValueError,
        r"bmm_bwd: b_XKN has shape \(2, 4, 5\) but dc_XMN has shape \(2, 3, 6\): their N axes",
    ),
    (
        lambda c: c.bmm_bwd(_f(2, 3, 4), _f(2, 4, 5), _f(2, 2, 5), 4),
        ValueError,
        r"bmm_bwd: a_XMK has shape \(2, 3, 4\) but dc_XMN has shape \(2, 2, 5\): their M axes",
    ),
    (
        lambda c: c.linear(_f(3, 4), _f(4, 5), _f(6), 4),
        ValueError,
        r"linear: w_IO has shape \(4, 5\) but b_O has shape \(6,\): their O axes must agree "
        r"\(5 vs 6\)",
    ),
    (
        lambda c: c.softmax_bwd(_f(2, 3, 4), _f(2, 3, 5), 1.0),
        ValueError,
        r"softmax_bwd: y_XTS has shape \(2, 3, 4\) but dy_XTS has shape \(2, 3, 5\): their S axes",
    ),
    (lambda c: c.relu(_f()), ValueError, r"relu: x_\* needs at least one axis, got shape \(\)"),
    (
        lambda c: c.matmul_bwd(_f(3, 4), _f(5, 2), _f(3, 2).astype(np.float64), 4),
        TypeError,
        r"matmul_bwd: dc_MN must have dtype float32, got dtype\('float64'\) with shape \(3, 2\)",
    ),
    (
        lambda c: c.softmax_xent(_f(3, 0), np.array([0, 0, 0])),
        ValueError,
        r"softmax_xent: logits_BC needs at least one row and one class, got shape \(3, 0\)",
    ),
    (
        lambda c: c.softmax_xent_bwd(_f(3, 4), [0, 1, 2]),
        TypeError,
        "softmax_xent_bwd: labels_B must be a 1-d integer numpy.ndarray, got list",
    ),
    (
        lambda c: c.sgd(_f(4, 6), _f(24), 0.1, 4),
        ValueError,
        r"sgd: p has shape \(4, 6\) but g has shape \(24,\): they must have the same shape",
    ),
    (
        lambda c: c.adam(
            _f(4, 6), _f(4, 6), _f(4, 6), _f(4, 6).astype(">f4"), 1, 1e-3, 0.9, 0.999, 1e-8, 4
        ),
        ValueError,
        r"adam: v is updated in place, so it must be C-contiguous, aligned and native-endian; got "
        r"a strided or byte-swapped array of shape \(4, 6\)",
    ),
]


@needs_build
@pytest.mark.parametrize(
    "call, error, message",
    SPEC_ERRORS,
    ids=[f"{message.split(':')[0]}-{i}" for i, (_, _, message) in enumerate(SPEC_ERRORS)],
)
def test_the_argument_spec_refuses_with_the_arrays_shapes_and_letter(call, error, message):
    import nnladder_c

    with pytest.raises(error, match=message):
        call(nnladder_c)


# The same for the wrappers of the transformer's and the CNN's ops (module_nn.c, module_conv.c):
# any-shape arrays that disagree or have no axis, a mean over nothing, the conv's and the
# pool's windows (a rank, a stride, a padding, an image too small, a backward's dy of the wrong
# size), token ids off the table, and the table's rows against the gradient's.
NETWORK_ERRORS = [
    (
        lambda c: c.gelu_bwd(_f(2, 3, 4), _f(2, 4, 3)),
        ValueError,
        r"gelu_bwd: x_\* has shape \(2, 3, 4\) but dy_\* has shape \(2, 4, 3\): their axes 1 "
        r"must agree \(3 vs 4\)",
    ),
    (
        lambda c: c.sigmoid_bwd(_f(6), _f(2, 3)),
        ValueError,
        r"sigmoid_bwd: y_\* has shape \(6,\) but dy_\* has shape \(2, 3\): they must have the "
        r"same shape",
    ),
    (
        lambda c: c.tanh(_f(3).astype(np.float64)),
        TypeError,
        r"tanh: x_\* must have dtype float32, got dtype\('float64'\) with shape \(3,\)",
    ),
    (lambda c: c.mse(_f(0), _f(0)), ValueError, r"mse: y_\* has no entries to average"),
    (
        lambda c: c.layernorm(_f(3, 0), _f(0), _f(0)),
        ValueError,
        r"layernorm: gamma_D has no features to normalise over, got shape \(0,\)",
    ),
    (
        lambda c: c.layernorm_bwd(_f(3, 4), _f(4), _f(2), _f(3), _f(3, 4)),
        ValueError,
        r"layernorm_bwd: x_RD has shape \(3, 4\) but mean_R has shape \(2,\): their R axes",
    ),
    (
        lambda c: c.conv2d(_f(2, 3, 4), _f(1, 3, 3, 3), _f(1), 1, 1, 4),
        ValueError,
        r"conv2d: x_BQYZ must have 4 axes \(BQYZ\), got shape \(2, 3, 4\)",
    ),
    (
        lambda c: c.conv2d(_f(1, 2, 5, 5), _f(1, 3, 3, 3), _f(1), 1, 1, 4),
        ValueError,
        r"conv2d: x_BQYZ has shape \(1, 2, 5, 5\) but w_FQJL has shape \(1, 3, 3, 3\): their Q "
        r"axes must agree \(2 vs 3\)",
    ),
    (
        lambda c: c.conv2d(_f(1, 1, 5, 5), _f(1, 1, 3, 3), _f(1), 0, 1, 4),
        ValueError,
        r"conv2d: stride must be a whole number >= 1, got 0",
    ),
    (
        lambda c: c.conv2d_bwd(_f(1, 1, 5, 5), _f(1, 1, 3, 3), _f(1, 1, 5, 5), 1, -1, 4),
        ValueError,
        r"conv2d_bwd: padding must be a whole number >= 0, got -1",
    ),
    (
        lambda c: c.conv2d(_f(1, 1, 5, 5), _f(1, 1, 3, 2), _f(1), 1, 2, 4),
        ValueError,
        r"conv2d: padding is 2 but the kernel is the L axis of w_FQJL \(2\): padding must be less "
        r"than the kernel",
    ),
    (
        lambda c: c.conv2d(_f(1, 1, 2, 5), _f(1, 1, 5, 3), _f(1), 1, 1, 4),
        ValueError,
        r"conv2d: x_BQYZ has shape \(1, 1, 2, 5\): its Y axis \(2\) with padding 1 on each side "
        r"is smaller than the J axis of w_FQJL \(5\)",
    ),
    (
        lambda c: c.conv2d_bwd(_f(1, 1, 5, 5), _f(1, 1, 3, 3), _f(1, 1, 2, 3), 2, 0, 4),
        ValueError,
        r"conv2d_bwd: dy_BFUW has shape \(1, 1, 2, 3\) but its W axis must be \(5 \+ 2\*0 - 3\) "
        r"// 2 \+ 1 = 2, the windows that fit the Z axis of x_BQYZ \(1, 1, 5, 5\)",
    ),
    (
        lambda c: c.maxpool2d(_f(1, 1, 1, 4)),
        ValueError,
        r"maxpool2d: x_BQYZ has shape \(1, 1, 1, 4\): its Y axis \(1\) with padding 0 on each "
        r"side is smaller than the pool's window \(2\)",
    ),
    (
        lambda c: c.maxpool2d_bwd(_f(1, 2, 5, 4), _f(1, 2, 2, 3)),
        ValueError,
        r"maxpool2d_bwd: dy_BQUW has shape \(1, 2, 2, 3\) but its W axis must be \(4 \+ 2\*0 - 2\) "
        r"// 2 \+ 1 = 2",
    ),
    (
        lambda c: c.embedding(np.array([0, 5, 1]), _f(5, 3)),
        ValueError,
        r"embedding: tokens_R\[1\] is 5, expected a token id in \[0, 5\)",
    ),
    (
        lambda c: c.embedding_bwd(_f(5, 3), np.array([-1, 0]), _f(2, 3)),
        ValueError,
        r"embedding_bwd: tokens_R\[0\] is -1, expected a token id in \[0, 5\)",
    ),
    (
        lambda c: c.embedding(np.array([0, 0]), _f(0, 3)),
        ValueError,
        r"embedding: w_VD has no V entries for tokens_R to index, got shape \(0, 3\)",
    ),
    (
        lambda c: c.embedding_bwd(_f(5, 3), np.array([0, 1, 2]), _f(2, 3)),
        ValueError,
        r"embedding_bwd: tokens_R has shape \(3,\) but dx_RD has shape \(2, 3\): their R axes "
        r"must agree \(3 vs 2\)",
    ),
    (
        lambda c: c.embedding(np.array([[0, 1]]), _f(5, 3)),
        TypeError,
        r"embedding: tokens_R must be a 1-d integer array, got dtype numpy.int64 with shape",
    ),
]


@needs_build
@pytest.mark.parametrize(
    "call, error, message",
    NETWORK_ERRORS,
    ids=[f"{message.split(':')[0]}-{i}" for i, (_, _, message) in enumerate(NETWORK_ERRORS)],
)
def test_the_network_ops_refuse_bad_arguments_naming_them(call, error, message):
    import nnladder_c

    with pytest.raises(error, match=message):
        call(nnladder_c)


@needs_build
def test_every_op_with_a_rung_refuses_one_outside_1_to_4():
    """The rung is checked before any array; 0 is no rung either (the ops without one, such as
    add, pass none to the argument check rather than a 0)."""
    import nnladder_c as c

    a, a3, b = _f(2, 2), _f(1, 2, 2), _f(2)
    calls = {
        "matmul": lambda r: c.matmul(a, a, r),
        "matmul_bwd": lambda r: c.matmul_bwd(a, a, a, r),
        "bmm": lambda r: c.bmm(a3, a3, r),
        "bmm_bwd": lambda r: c.bmm_bwd(a3, a3, a3, r),
        "linear": lambda r: c.linear(a, a, b, r),
        "linear_bwd": lambda r: c.linear_bwd(a, a, a, r),
        "sgd": lambda r: c.sgd(a.copy(), a, 0.1, r),
        "momentum": lambda r: c.momentum(a.copy(), a, a.copy(), 0.1, 0.9, r),
        "adam": lambda r: c.adam(a.copy(), a, a.copy(), a.copy(), 1, 0.1, 0.9, 0.999, 1e-8, r),
        "mlp_forward": lambda r: c.mlp_forward([a, b], a, np.array([0, 1]), r),
        "conv2d": lambda r: c.conv2d(_f(1, 1, 3, 3), _f(1, 1, 2, 2), _f(1), 1, 0, r),
        "conv2d_bwd": lambda r: c.conv2d_bwd(
            _f(1, 1, 3, 3), _f(1, 1, 2, 2), _f(1, 1, 2, 2), 1, 0, r
        ),
    }
    for op, call in calls.items():
        for rung in (0, 5, -1):
            with pytest.raises(ValueError, match=f"rung must be 1 .* got {rung}"):
                call(rung)
                pytest.fail(f"{op} ran on rung {rung}")
        for rung in (1, 2, 3, 4):
            call(rung)  # the same call on a rung runs


@needs_build
def test_empty_products_and_a_bad_rung(impl):
    assert impl.matmul(np.ones((0, 3), np.float32), np.ones((3, 2), np.float32)).shape == (0, 2)
    np.testing.assert_array_equal(
        impl.matmul(np.ones((2, 0), np.float32), np.ones((0, 3), np.float32)), np.zeros((2, 3))
    )
    np.testing.assert_array_equal(
        impl.linear(
            np.ones((2, 0), np.float32), np.ones((0, 3), np.float32), np.arange(3, dtype=np.float32)
        ),
        [[0, 1, 2], [0, 1, 2]],
    )
    import nnladder_c

    with pytest.raises(ValueError, match="rung must be 1 .* got 7"):
        nnladder_c.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), 7)


@needs_build
def test_the_gil_is_released_while_a_kernel_runs():
    """A long naive product in a thread: the main thread keeps running Python meanwhile."""
    import nnladder_c

    a = np.ones((400, 400), np.float32)
    ticks, marks, done = [0], [], threading.Event()

    def work():
        marks.append(ticks[0])
        nnladder_c.matmul(a, a, 1)  # ~0.1 s of C
        marks.append(ticks[0])
        done.set()

    thread = threading.Thread(target=work)
    thread.start()
    while not done.is_set():
        ticks[0] += 1
    thread.join()
    assert marks[1] - marks[0] > 1000, f"main thread ran {marks[1] - marks[0]} loops meanwhile"


@needs_build
@pytest.mark.skipif(os.environ.get("NNLADDER_C_SANITIZE") != "1", reason="tox -e sanitize only")
def test_the_module_under_test_is_the_sanitized_build():
    import nnladder_c

    assert b"__asan_init" in Path(nnladder_c.__file__).read_bytes(), (
        f"{nnladder_c.__file__} is not the AddressSanitizer build"
    )


# ---- without a compiler ---------------------------------------------------------------------


def test_unavailable_reason_names_the_missing_compiler(monkeypatch):
    monkeypatch.setattr(c_ext, "_IMPORT_ERROR", ImportError("No module named 'nnladder_c'"))
    monkeypatch.setattr(c_ext.shutil, "which", lambda name: None)
    reason = c_ext.CNaive.unavailable_reason()
    assert "nnladder_c is not built: no C compiler" in reason and "pip install -e ." in reason
    monkeypatch.setattr(c_ext.shutil, "which", lambda name: "/usr/bin/cc")
    assert "not importable (No module named 'nnladder_c')" in c_ext.CImpl.unavailable_reason()


def test_build_without_a_compiler_warns_and_succeeds(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "CC": str(tmp_path / "no-such-cc"),
        "HOME": str(tmp_path),
        "NNLADDER_C_SANITIZE": "0",
    }
    done = subprocess.run(
        [
            sys.executable,
            "setup.py",
            "-q",
            "build_ext",
            "--build-lib",
            str(tmp_path / "lib"),
            "--build-temp",
            str(tmp_path / "tmp"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING: the C extension nnladder_c was not built" in done.stderr
    assert not list((tmp_path / "lib").glob("nnladder_c*"))


@needs_build
def test_the_targets_benchmark_runs_every_rung_and_stores_its_rows(tmp_path, capsys):
    """A tiny run of benchmarks/c_targets.py: every contender gated, timed and stored."""
    from benchmarks import c_targets

    assert (
        c_targets.main(
            [
                "--gemm",
                "64:1",
                "--mnist-threads",
                "1",
                "--time-per-cell",
                "0.02",
                "--rounds",
                "1",
                "--settle",
                "0",
                "--no-torch",
                "--results",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "matmul M=64 K=64 N=64, 1 thread(s): c / numpy.matmul speed = " in out
    rows = [
        json.loads(line)
        for path in tmp_path.rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    done = {(r["impl"], r["workload"]) for r in rows if r["status"] == "ok"}
    for name in (*RUNGS, "numpy.matmul"):
        assert (name, "matmul") in done
    for name in (*RUNGS, "numpy", "plain-numpy"):
        assert (name, "mnist_mlp") in done
    assert all(r["threads"] == 1 for r in rows)
