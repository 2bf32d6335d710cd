"""Every op of every impl against the float64 reference, five seeds per shape."""

from __future__ import annotations

import numpy as np
import pytest

from harness import registry
from harness.contract import OPS
from harness.measure.gate import rel_err
from harness.reference import Reference
from tests import op_cases
from tests.conftest import impl_params

TOL = 1e-5


@pytest.mark.parametrize("shape", op_cases.SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("impl_name", impl_params())
def test_op_matches_reference(impl_name, op, shape):
    impl = registry.create(impl_name)
    for seed in op_cases.SEEDS:
        inputs, kwargs = op_cases.make(op, np.random.default_rng(seed), shape)
        expected = op_cases.run(Reference(), op, inputs, kwargs)
        try:
            got = op_cases.run(impl, op, inputs, kwargs)
        except NotImplementedError:
            pytest.skip(f"{impl_name} does not implement {op} (recorded as unsupported)")
        assert [g.shape for g in got] == [e.shape for e in expected], (impl_name, op)
        err = rel_err(got, expected)
        assert err <= TOL, f"{impl_name}.{op} at {shape}, seed {seed}: rel err {err:.3g}"


def test_reference_split_and_merge_heads_are_inverse():
    ref = Reference()
    x_RD = np.random.default_rng(0).standard_normal((6 * 5, 12))
    for transpose in (False, True):
        heads = ref.split_heads(x_RD, 6, 4, transpose=transpose)
        assert heads.shape == ((24, 3, 5) if transpose else (24, 5, 3))
        np.testing.assert_array_equal(ref.merge_heads(heads, 6, 4, transposed=transpose), x_RD)


def test_causal_softmax_gives_masked_positions_exactly_zero():
    x_XTS = np.random.default_rng(1).standard_normal((2, 5, 5)).astype(np.float32)
    for name in registry.names():
        if registry.unavailable_reason(name):
            continue
        impl = registry.create(name)
        try:
            y_XTS = impl.get(impl.softmax(impl.put(x_XTS, "activation"), causal=True))
        except NotImplementedError:
            continue
        assert np.all(y_XTS[:, ~np.tri(5, 5, dtype=bool)] == 0), name
        np.testing.assert_allclose(y_XTS.sum(axis=-1), 1.0, rtol=1e-5)
