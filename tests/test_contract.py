"""The contract's check of every argument, tried through harness.api.call as a user would, on
every impl: a bad input gets one clear sentence, never a wrong answer."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

from harness import models
from harness.api import call
from harness.contract import ANY, DIMS, OPS, Impl, ShapeError, check_shapes
from harness.measure.gate import rel_err
from harness.reference import Reference
from harness.signatures import suffix
from impls.cuda_naive import CudaNaive
from impls.cuda_tiled import CudaTiled
from tests.conftest import impl_params

ADAM = {"t": 1, **models.HYPER["adam"]}
HYPER = {**models.HYPER, "adam": ADAM}
STATE = models.OPT_STATE  # the arrays after p and g


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(11)


# ---- the table itself ----------------------------------------------------------------------


def test_the_table_names_every_argument_of_the_impl_stubs():
    """OPS and contract.Impl agree: the arrays in order, then the keywords, the optional ones
    being those with a default; every suffix letter is in the key."""
    for op, spec in OPS.items():
        stub = list(inspect.signature(getattr(Impl, op)).parameters.values())[1:]
        arrays, keywords = stub[: len(spec.arrays)], stub[len(spec.arrays) :]
        assert [a.name for a in arrays] == [n.removesuffix(f"_{ANY}") for n in spec.arrays], op
        assert [k.name for k in keywords] == list(spec.params), op
        assert tuple(k.name for k in keywords if k.default is not k.empty) == spec.optional, op
        assert all(letter in DIMS for name in spec.arrays for letter in suffix(name)), op


def test_a_shape_mismatch_names_both_arrays_and_their_letter():
    with pytest.raises(
        ShapeError,
        match=re.escape(
            "matmul: a_MK has shape (3, 4) but b_KN has shape (5, 2): their K (contraction "
            "dim of a plain matmul) axes must agree (4 vs 5)"
        ),
    ):
        check_shapes("matmul", (3, 4), (5, 2))
    assert check_shapes("adam", (2, 3), (2, 3), (2, 3), (2, 3)) == {ANY: (2, 3)}


def test_keywords_are_named_counted_and_typed():
    p, g = np.ones((2, 3), np.float32), np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="sgd: missing keyword argument 'lr', a finite number"):
        call("numpy", "sgd", p, g)
    with pytest.raises(TypeError, match="sgd: unknown keyword argument 'mu'; it takes lr"):
        call("numpy", "sgd", p, g, lr=0.1, mu=0.9)
    with pytest.raises(
        TypeError,
        match=r"split_heads takes 1 arrays \(x_RD\), got 3; batch, "
        r"heads, transpose go by keyword",
    ):
        call("numpy", "split_heads", p, 1, 3)
    with pytest.raises(ValueError, match="softmax: causal must be True or False, got 'yes'"):
        call("numpy", "softmax", np.ones((1, 2, 2), np.float32), causal="yes")
    with pytest.raises(ValueError, match="softmax: scale must be a finite number, got nan"):
        call("numpy", "softmax", np.ones((1, 2, 2), np.float32), scale=float("nan"))


# ---- 1. labels outside [0, C) --------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 3, 70])
@pytest.mark.parametrize("op", ["softmax_xent", "softmax_xent_bwd"])
@pytest.mark.parametrize("impl_name", impl_params())
def test_labels_outside_the_classes_are_refused(impl_name, op, bad, rng):
    x_BC = np.full((4, 3), 1 / 3, np.float32)
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{op}: labels_B has 1 of 4 entries outside [0, C) for C = 3 (classes; "
            f"{'logits_BC' if op == 'softmax_xent' else 'probs_BC'} has shape (4, 3)): "
            f"{bad} at index 2"
        )
        + "$",
    ):
        call(impl_name, op, x_BC, np.array([0, 2, bad, 1]))
    with pytest.raises(ValueError, match=r"2 of 2 entries .*: -1 at index 0, 3 at index 1$"):
        call(impl_name, op, x_BC[:2], np.array([-1, 3]))


# ---- 2. optimizer arrays: one shape, any number of axes ------------------------------------


@pytest.mark.parametrize("op", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("impl_name", impl_params())
def test_update_arrays_of_different_shapes_are_refused(impl_name, op, rng):
    for odd in range(1, 2 + STATE[op]):  # g, then each state array, of another shape
        arrays = [f32(rng, 3, 4) for _ in range(2 + STATE[op])]
        arrays[odd] = f32(rng, 4)
        name = OPS[op].arrays[odd]
        with pytest.raises(
            ShapeError,
            match=re.escape(f"{op}: p_* has shape (3, 4) but {name} has shape (4,): their shapes"),
        ):
            call(impl_name, op, *arrays, **HYPER[op])
    with pytest.raises(
        ShapeError, match=re.escape(f"{op}: p_* has shape (): it needs at least one axis")
    ):
        call(impl_name, op, *[np.ones((), np.float32)] * (2 + STATE[op]), **HYPER[op])


@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 3, 4), (2, 1, 3, 2)], ids=str)
@pytest.mark.parametrize("op", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("impl_name", impl_params())
def test_updates_take_any_number_of_axes(impl_name, op, shape, rng):
    arrays = [f32(rng, *shape) for _ in range(2)] + [
        np.abs(f32(rng, *shape)) for _ in range(STATE[op])
    ]
    expected = [x.astype(np.float64) for x in arrays]
    getattr(Reference(), op)(*expected, **HYPER[op])
    got = call(impl_name, op, *arrays, **HYPER[op])
    assert [x.shape for x in got] == [shape] * len(arrays)
    assert rel_err(got, expected) <= 1e-5


# ---- 3. adam's step and the hyper-parameters -----------------------------------------------


@pytest.mark.parametrize("t", [0, -1, 1.5, 2.0, True])
@pytest.mark.parametrize("impl_name", impl_params())
def test_adam_counts_its_steps_from_1(impl_name, t, rng):
    arrays = [f32(rng, 3) for _ in range(4)]
    with pytest.raises(
        ValueError,
        match=re.escape(f"adam: t must be a whole number >= 1 (steps count from 1), got {t!r}"),
    ):
        call(impl_name, "adam", *arrays, **{**ADAM, "t": t})


BAD_HYPER = [
    ("sgd", "lr", float("nan")),
    ("sgd", "lr", float("inf")),
    ("momentum", "lr", -float("inf")),
    ("momentum", "mu", 1.0),
    ("momentum", "mu", -0.1),
    ("adam", "beta1", 1.0),
    ("adam", "beta2", -0.5),
    ("adam", "beta1", float("nan")),
    ("adam", "eps", 0.0),
    ("adam", "eps", -1e-8),
    ("adam", "eps", float("inf")),
    ("adam", "lr", "0.1"),
]


@pytest.mark.parametrize("op, key, value", BAD_HYPER, ids=lambda v: str(v))
@pytest.mark.parametrize("impl_name", impl_params())
def test_hyper_parameters_out_of_range_are_refused(impl_name, op, key, value, rng):
    arrays = [f32(rng, 2, 3) for _ in range(2 + STATE[op])]
    wanted = {
        "lr": "a finite number",
        "mu": "a number in [0, 1)",
        "beta1": "a number in [0, 1)",
        "beta2": "a number in [0, 1)",
        "eps": "a finite number > 0",
    }[key]
    with pytest.raises(ValueError, match=re.escape(f"{op}: {key} must be {wanted}, got {value!r}")):
        call(impl_name, op, *arrays, **{**HYPER[op], key: value})


# ---- 4. heads and batch that do not divide -------------------------------------------------


@pytest.mark.parametrize("impl_name", impl_params())
def test_heads_and_batch_that_do_not_divide_are_refused(impl_name, rng):
    x_RD = f32(rng, 4, 6)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "split_heads: x_RD has shape (4, 6) but heads is 4: its D axis (model dim "
            "(D = G*E)) must be a whole multiple of heads (6 is not)"
        ),
    ):
        call(impl_name, "split_heads", x_RD, batch=2, heads=4)
    with pytest.raises(
        ValueError, match=re.escape("split_heads: x_RD has shape (4, 6) but batch is 3: its R axis")
    ):
        call(impl_name, "split_heads", x_RD, batch=3, heads=2, transpose=True)
    with pytest.raises(ValueError, match="split_heads: heads must be a whole number >= 1, got 0"):
        call(impl_name, "split_heads", x_RD, batch=2, heads=0)
    for transposed in (False, True):
        with pytest.raises(
            ValueError,
            match=re.escape(
                "merge_heads: x_XTE has shape (6, 5, 3) but batch is 2 and heads is 4: its X "
                "axis (batch x heads, flattened (X = B*G)) must be batch * heads = 8 (it is 6)"
            ),
        ):
            call(
                impl_name, "merge_heads", f32(rng, 6, 5, 3), batch=2, heads=4, transposed=transposed
            )


@pytest.mark.parametrize("impl_name", impl_params())
def test_windows_that_do_not_fit_are_refused(impl_name, rng):
    x_BQYZ, w_FQJL, b_F = f32(rng, 2, 3, 5, 5), f32(rng, 4, 3, 3, 3), f32(rng, 4)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "conv2d: padding is 3 but w_FQJL has shape (4, 3, 3, 3): its J axis (height of a "
            "conv's kernel) is 3, and padding must be less than the kernel"
        ),
    ):
        call(impl_name, "conv2d", x_BQYZ, w_FQJL, b_F, stride=1, padding=3)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "conv2d: x_BQYZ has shape (2, 3, 1, 5): its Y axis (height of an image a conv or a "
            "pool reads) is 1, with padding 0 on each side smaller than the J axis"
        ),
    ):
        call(impl_name, "conv2d", f32(rng, 2, 3, 1, 5), w_FQJL, b_F, stride=1, padding=0)
    with pytest.raises(ValueError, match="conv2d: stride must be a whole number >= 1, got 0"):
        call(impl_name, "conv2d", x_BQYZ, w_FQJL, b_F, stride=0, padding=1)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "conv2d_bwd: dy_BFUW has shape (2, 4, 5, 3) but its U axis (height of the image a "
            "conv or a pool writes) must be (5 + 2*1 - 3) // 2 + 1 = 3"
        ),
    ):
        call(impl_name, "conv2d_bwd", x_BQYZ, w_FQJL, f32(rng, 2, 4, 5, 3), stride=2, padding=1)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "maxpool2d_bwd: dy_BQUW has shape (2, 3, 3, 2) but its U axis (height of the image a "
            "conv or a pool writes) must be (5 + 2*0 - 2) // 2 + 1 = 2"
        ),
    ):
        call(impl_name, "maxpool2d_bwd", x_BQYZ, f32(rng, 2, 3, 3, 2))


# ---- 5. empty axes: a sum over none is 0, anything else is refused ------------------------


@pytest.mark.parametrize("impl_name", impl_params())
def test_a_product_over_an_empty_contraction_is_zeros(impl_name, rng):
    b_O = f32(rng, 4)
    c_MN = call(impl_name, "matmul", np.ones((3, 0), np.float32), np.ones((0, 4), np.float32))
    np.testing.assert_array_equal(c_MN, np.zeros((3, 4)))
    c_XMN = call(impl_name, "bmm", np.ones((2, 3, 0), np.float32), np.ones((2, 0, 4), np.float32))
    np.testing.assert_array_equal(c_XMN, np.zeros((2, 3, 4)))
    y_BO = call(impl_name, "linear", np.ones((3, 0), np.float32), np.ones((0, 4), np.float32), b_O)
    np.testing.assert_array_equal(y_BO, np.broadcast_to(b_O, (3, 4)))


class NoLaunch:
    """A CUDA backend on the host that refuses every kernel launch."""

    xp = np

    def empty(self, shape, dtype=np.float32):
        return np.full(shape, np.nan, dtype=dtype)  # what no kernel writes stays NaN

    def launch(self, kernel, grid, block, args):
        raise AssertionError(f"{kernel} launched for a product over an empty contraction")


@pytest.mark.parametrize("cls", [CudaNaive, CudaTiled])
def test_a_cuda_product_over_an_empty_contraction_is_zeros_without_a_launch(cls):
    """No GPU here: the CUDA rungs' shared product code on the host (a prefetching kernel
    would read a and b although there is nothing to read)."""
    ops = cls(backend=NoLaunch())
    np.testing.assert_array_equal(ops.matmul(empty(3, 0), empty(0, 4)), np.zeros((3, 4)))
    np.testing.assert_array_equal(ops.bmm(empty(2, 3, 0), empty(2, 0, 4)), np.zeros((2, 3, 4)))


def empty(*shape):
    return np.zeros(shape, np.float32)


CONV = {"stride": 1, "padding": 0}
EMPTY = [
    ("matmul", [empty(0, 2), empty(2, 3)], {}, "a_MK", "M"),
    ("matmul", [empty(2, 2), empty(2, 0)], {}, "b_KN", "N"),
    ("matmul_bwd", [empty(2, 0), empty(0, 3), empty(2, 3)], {}, "a_MK", "K"),
    ("bmm", [empty(0, 2, 2), empty(0, 2, 2)], {}, "a_XMK", "X"),
    ("linear", [empty(0, 2), empty(2, 3), empty(3)], {}, "x_BI", "B"),
    ("linear_bwd", [empty(2, 0), empty(0, 3), empty(2, 3)], {}, "x_BI", "I"),
    ("add", [empty(0, 3), empty(0, 3)], {}, "a_*", "axis 0"),
    ("relu", [empty(3, 0)], {}, "x_*", "axis 1"),
    ("layernorm", [empty(2, 0), empty(0), empty(0)], {}, "x_RD", "D"),
    ("conv2d", [empty(1, 0, 3, 3), empty(2, 0, 1, 1), empty(2)], CONV, "x_BQYZ", "Q"),
    ("maxpool2d", [empty(0, 1, 2, 2)], {}, "x_BQYZ", "B"),
    ("embedding", [np.zeros(0, np.int64), empty(3, 2)], {}, "tokens_R", "R"),
    ("softmax", [empty(1, 2, 0)], {"causal": True}, "x_XTS", "S"),
    ("softmax_bwd", [empty(1, 0, 2), empty(1, 0, 2)], {}, "y_XTS", "T"),
    ("softmax_xent", [empty(0, 3), np.zeros(0, np.int64)], {}, "logits_BC", "B"),
    ("softmax_xent_bwd", [empty(2, 0), np.zeros(2, np.int64)], {}, "probs_BC", "C"),
    ("split_heads", [empty(0, 4)], {"batch": 1, "heads": 2}, "x_RD", "R"),
    ("merge_heads", [empty(2, 3, 0)], {"batch": 1, "heads": 2}, "x_XTE", "E"),
    ("sgd", [empty(0), empty(0)], HYPER["sgd"], "p_*", "axis 0"),
    ("adam", [empty(2, 0)] * 4, ADAM, "p_*", "axis 1"),
]


@pytest.mark.parametrize(
    "op, arrays, kwargs, name, axis", EMPTY, ids=[f"{op}-{axis}" for op, *_, axis in EMPTY]
)
@pytest.mark.parametrize("impl_name", impl_params())
def test_every_other_empty_axis_is_refused(impl_name, op, arrays, kwargs, name, axis):
    axis_name = axis if axis.startswith("axis") else f"{axis} axis ({DIMS[axis]})"
    shape = arrays[OPS[op].arrays.index(name)].shape
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{op}: {name} has shape {shape}: its {axis_name} has no entries, and {op} takes "
            "no empty axis"
        ),
    ):
        call(impl_name, op, *arrays, **kwargs)
