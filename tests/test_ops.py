"""Every op of every impl against the float64 reference, at every shape of op_cases."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from harness import registry
from harness.contract import OPS, check_call
from harness.measure.gate import rel_err
from harness.reference import Reference
from tests import op_cases
from tests.conftest import impl_params

TOL = 1e-5
# What each rung does not implement, by impl name. An op listed here must raise
# NotImplementedError; any other must match the reference, so a rung that loses an op fails
# instead of skipping. Today every rung runs every op.
NOT_IMPLEMENTED: dict = {}


def seeded(*key) -> np.random.Generator:
    """The one generator of a test, seeded by its parameters (the same on every run)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def test_the_list_of_what_is_not_implemented_names_real_impls_and_ops():
    for impl_name, ops in NOT_IMPLEMENTED.items():
        assert impl_name in registry.names(), impl_name
        assert set(ops) <= set(OPS), (impl_name, set(ops) - set(OPS))


@pytest.mark.parametrize("shape", op_cases.SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("impl_name", impl_params())
def test_op_matches_reference(impl_name, op, shape):
    impl, rng = registry.create(impl_name), seeded(op, shape)
    if op in NOT_IMPLEMENTED.get(impl_name, ()):
        case = op_cases.make(op, rng, shape)[0]
        with pytest.raises(NotImplementedError):
            op_cases.run(impl, op, case)
        return
    for repeat in range(op_cases.REPEATS):
        for case in op_cases.make(op, rng, shape):
            check_call(op, [x for x, _ in case.inputs], case.steps[0])  # a valid call
            expected = op_cases.run(Reference(), op, case)
            got = op_cases.run(impl, op, case)
            assert [g.shape for g in got] == [e.shape for e in expected], (impl_name, op)
            err = rel_err(got, expected)
            assert err <= TOL, (
                f"{impl_name}.{op} at {shape} {case.steps[0]}, repeat {repeat}: rel err {err:.3g}"
            )


def test_cases_hold_both_ends_of_every_label_range():
    for shape in op_cases.SHAPES:
        for op in ("softmax_xent", "softmax_xent_bwd"):
            for case in op_cases.make(op, seeded(op, shape), shape):
                (x_BC, _), (labels_B, _) = case.inputs
                assert {0, x_BC.shape[1] - 1} <= set(labels_B.tolist()), (op, shape)


def test_reference_split_and_merge_heads_are_inverse():
    ref = Reference()
    x_RD = seeded("heads").standard_normal((6 * 5, 12))
    for transpose in (False, True):
        heads = ref.split_heads(x_RD, 6, 4, transpose=transpose)
        assert heads.shape == ((24, 3, 5) if transpose else (24, 5, 3))
        np.testing.assert_array_equal(ref.merge_heads(heads, 6, 4, transposed=transpose), x_RD)


@pytest.mark.parametrize("T, S", [(5, 5), (3, 7), (7, 3)])
@pytest.mark.parametrize("impl_name", impl_params())
def test_causal_softmax_gives_masked_positions_exactly_zero(impl_name, T, S):
    x_XTS = seeded(T, S).standard_normal((2, T, S)).astype(np.float32)
    impl = registry.create(impl_name)
    if "softmax" in NOT_IMPLEMENTED.get(impl_name, ()):
        pytest.skip(f"{impl_name} does not implement softmax (listed above)")
    y_XTS = impl.get(impl.softmax(impl.put(x_XTS, "activation"), causal=True))
    assert np.all(y_XTS[:, ~np.tri(T, S, dtype=bool)] == 0), impl_name
    np.testing.assert_allclose(y_XTS.sum(axis=-1), 1.0, rtol=1e-5)
