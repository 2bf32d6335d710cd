"""Call one op of one impl on host arrays, with every input checked: the library entry point.

    >>> from harness.api import call
    >>> c_MN = call("numpy", "matmul", a_MK, b_KN)

Every argument is checked against contract.OPS before the impl sees it (float32 and finite,
the shape letters agreeing, labels inside [0, C), heads dividing the model dim, the optimizer
hyper-parameters in range), so a mistake reads as a sentence naming the argument, not as a
crash deep inside a kernel or, worse, a wrong answer.
"""

from __future__ import annotations

import numpy as np

from harness import registry
from harness.contract import OPS, check_call
from harness.measure.gate import to_host
from harness.signatures import role_of


def call(impl_name: str, op: str, *arrays: np.ndarray, **params):
    """-> the op's outputs as host arrays (a tuple when the op returns several)."""
    registry.get_class(impl_name)  # an unknown name fails first, listing the valid ones
    check_call(op, arrays, params)
    impl = registry.create(impl_name)
    placed = [impl.put(x, role_of(name)) for name, x in zip(OPS[op].arrays, arrays)]
    result = getattr(impl, op)(*placed, **params)
    impl.sync()
    if result is None:  # an optimizer update: its outputs are its updated inputs
        return tuple(impl.get(x) for x in placed)
    outputs = to_host(impl, result if isinstance(result, tuple) else (result,))
    return tuple(outputs) if isinstance(result, tuple) else outputs[0]
