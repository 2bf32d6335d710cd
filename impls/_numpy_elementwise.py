"""The NumPy rung's elementwise ops: any shape, the same for all of an op's arrays.

Each is a chain of ufuncs writing in place (`out=`) into the few fresh arrays it returns or
needs, every constant a float32.
"""

from __future__ import annotations

import math

import numpy as np

# gelu's tanh form, 0.5 (1 + tanh z) = sigmoid(2 z) with z = x (GELU_C + GELU_AC x^2): the
# sigmoid keeps relative precision in the left tail, where 1 + tanh z cancels to nothing.
GELU_C = np.float32(math.sqrt(2.0 / math.pi))
GELU_AC = np.float32(0.044715 * math.sqrt(2.0 / math.pi))
# exp's argument is clipped to +-EXP_CAP: exp stays finite and normal (no overflow warning, no
# subnormals, which x86 handles 50x slower), and 1 / (1 + exp(80)) = 2e-35 stands for 0.
EXP_CAP = np.float32(80)


def _exp_clipped(u):
    """exp(u) in place, u clipped to [-EXP_CAP, EXP_CAP] first."""
    np.clip(u, -EXP_CAP, EXP_CAP, out=u)
    return np.exp(u, out=u)


def _minus_2z(x):
    """-2 z = -2 x (GELU_C + GELU_AC x^2), gelu's tanh argument, and x^2 (both new arrays)."""
    x2 = x * x
    u = x2 * (-2 * GELU_AC)
    u -= 2 * GELU_C
    u *= x
    return u, x2


class NumpyElementwise:
    """add, the activations with their backwards and the squared error, mixed into NumpyImpl."""

    def add(self, a, b):
        return a + b

    def relu(self, x):
        return np.maximum(x, np.float32(0))

    def relu_bwd(self, x, dy):
        return dy * (x > 0)

    def gelu(self, x):
        # x sigmoid(2 z) = x / (1 + exp(-2 z))
        d, _ = _minus_2z(x)
        _exp_clipped(d)
        d += 1
        return np.divide(x, d, out=d)

    def gelu_bwd(self, x, dy):
        # With s = sigmoid(2 z) and k = x dz/dx = x (C + 3 AC x^2), dgelu/dx = s + 2 k s (1 - s),
        # and s (1 - s) = e s^2 with e = exp(-2 z): no 1 - s to cancel.
        e, k = _minus_2z(x)
        _exp_clipped(e)
        s = np.add(e, 1)
        np.divide(1, s, out=s)
        e *= s
        e *= s  # s (1 - s)
        k *= 6 * GELU_AC
        k += 2 * GELU_C
        k *= x  # 2 k
        k *= e
        k += s
        k *= dy
        return k

    def sigmoid(self, x):
        # 1 / (1 + exp(-x)): for x < 0 exp(-x) is large and the quotient keeps its precision.
        d = _exp_clipped(np.negative(x))
        d += 1
        return np.divide(1, d, out=d)

    def sigmoid_bwd(self, y, dy):
        dx = np.subtract(1, y)
        dx *= y
        dx *= dy
        return dx

    def tanh(self, x):
        return np.tanh(x)

    def tanh_bwd(self, y, dy):
        # 1 - y^2 as (1 - y)(1 + y): both factors are exact where y nears +-1, and 1 - y*y
        # would cancel the rounding of y*y into a relative error of the gradient.
        dx = np.subtract(1, y)
        dx *= np.add(1, y)
        dx *= dy
        return dx

    def mse(self, y, target):
        d = y - target
        np.square(d, out=d)
        return float(d.sum()) / d.size  # a pairwise float32 sum, divided in double

    def mse_bwd(self, y, target):
        dy = y - target
        dy *= np.float32(2.0 / dy.size)
        return dy
