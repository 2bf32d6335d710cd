"""Call one op of one impl on host arrays, with every input checked: the library entry point.

    >>> from harness.api import call
    >>> c_MN = call("numpy", "matmul", a_MK, b_KN)

The arrays are checked before the impl sees them (float32, finite, the shape letters of
contract.OPS agreeing), so a mistake reads as a sentence naming the arrays, not as a crash
deep inside a kernel.
"""

from __future__ import annotations

import numpy as np

from harness import registry
from harness.contract import OPS, check_host_array, check_shapes
from harness.measure.gate import to_host


def call(impl_name: str, op: str, *arrays: np.ndarray, **kwargs):
    """-> the op's outputs as host arrays (a tuple when the op returns several)."""
    registry.get_class(impl_name)  # an unknown name fails first, listing the valid ones
    if op not in OPS:
        raise KeyError(f"unknown op {op!r}: expected one of {', '.join(OPS)}")
    names = OPS[op][0]
    if len(arrays) != len(names):
        raise TypeError(f"{op} takes {len(names)} arrays ({', '.join(names)}), "
                        f"got {len(arrays)}")
    for name, x in zip(names, arrays):
        check_host_array(name, x, "label" if name.startswith("labels") else "activation")
    check_shapes(op, **{name: x.shape for name, x in zip(names, arrays)})
    impl = registry.create(impl_name)
    placed = [impl.put(x, "label" if name.startswith("labels") else "activation")
              for name, x in zip(names, arrays)]
    result = getattr(impl, op)(*placed, **kwargs)
    impl.sync()
    if result is None:  # an optimizer update: its outputs are its updated inputs
        return tuple(impl.get(x) for x in placed)
    outputs = to_host(impl, result if isinstance(result, tuple) else (result,))
    return tuple(outputs) if isinstance(result, tuple) else outputs[0]
