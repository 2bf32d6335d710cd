"""The C rung leaks nothing: 10,000 calls of each op leave resident memory flat and every
input's reference count where it was, on success and on the error paths.

Each op's output is at least 4 KiB, so one leaked output (or packing buffer) per call would
add 40 MiB over the run; the bound allows 2 MiB of allocator noise. Reference counts catch
what RSS cannot: a leaked reference to an input keeps it alive without growing anything.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from impls import c_ext

psutil = pytest.importorskip("psutil", reason="psutil (a dev extra) measures resident memory")
pytestmark = pytest.mark.skipif(
    c_ext.CImpl.unavailable_reason() is not None, reason=str(c_ext.CImpl.unavailable_reason())
)

CALLS = 10_000
WARM_UP = 1_000
SLACK_BYTES = 2 << 20


def _cases():
    """op name -> (callable, its input arrays). Products run below rung 4's team threshold
    (a team on a shared 2-core machine can take milliseconds a call); each thread of a team runs
    the same rung-3 call whose packing buffers are checked here."""
    import nnladder_c as c

    rng = np.random.default_rng(0)

    def x(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    a, b, dc = x(32, 64), x(64, 32), x(32, 32)
    a3, b3, dc3 = x(4, 32, 32), x(4, 32, 32), x(4, 32, 32)
    w, bias, dy = x(32, 32), x(32), x(32, 32)
    s3, labels = x(2, 32, 32), rng.integers(0, 32, 32)
    p, g, m, v = x(32, 32), x(32, 32), x(32, 32), np.abs(x(32, 32))
    strided = x(32, 64)[:, ::2]  # copied on the way in, so the copy must be freed too
    frozen = x(32, 32)
    frozen.flags.writeable = False
    mlp, x_mlp = [x(64, 48), x(48), x(48, 32), x(32)], x(32, 64)  # an MLP 64-48-32, batch 32
    _, probs, h = c.mlp_forward(mlp, x_mlp, labels, 3)
    img, kernel, fb = x(2, 4, 8, 8), x(8, 4, 3, 3), x(8)  # a conv: y (2, 8, 8, 8), 4 KiB
    img_strided, dy_img, pool = x(2, 4, 8, 16)[..., ::2], x(2, 8, 8, 8), x(2, 8, 16, 16)
    d32, tokens, table = x(32), rng.integers(0, 40, 32), x(40, 32)
    mean, rstd = np.zeros(32, np.float32), np.ones(32, np.float32)
    return {
        "matmul": (lambda: c.matmul(a, b, 4), [a, b]),
        "matmul_bwd": (lambda: c.matmul_bwd(a, b, dc, 4), [a, b, dc]),
        "bmm": (lambda: c.bmm(a3, b3, 3), [a3, b3]),
        "bmm_bwd": (lambda: c.bmm_bwd(a3, b3, dc3, 3), [a3, b3, dc3]),
        "linear": (lambda: c.linear(strided, w, bias, 4), [strided, w, bias]),
        "linear_bwd": (lambda: c.linear_bwd(dy, w, dy, 4), [dy, w]),
        "add": (lambda: c.add(w, dy), [w, dy]),
        "relu": (lambda: c.relu(w), [w]),
        "relu_bwd": (lambda: c.relu_bwd(w, dy), [w, dy]),
        "softmax": (lambda: c.softmax(s3, True, 0.5), [s3]),
        "softmax_bwd": (lambda: c.softmax_bwd(s3, s3, 0.5), [s3]),
        "softmax_xent": (lambda: c.softmax_xent(w, labels), [w, labels]),
        "softmax_xent_bwd": (lambda: c.softmax_xent_bwd(w, labels), [w, labels]),
        "gelu": (lambda: c.gelu(w), [w]),
        "gelu_bwd": (lambda: c.gelu_bwd(w, dy), [w, dy]),
        "sigmoid": (lambda: c.sigmoid(w), [w]),
        "sigmoid_bwd": (lambda: c.sigmoid_bwd(w, dy), [w, dy]),
        "tanh": (lambda: c.tanh(s3), [s3]),  # any shape: 3-d
        "tanh_bwd": (lambda: c.tanh_bwd(w, dy), [w, dy]),
        "mse": (lambda: c.mse(w, dy), [w, dy]),
        "mse_bwd": (lambda: c.mse_bwd(img, img), [img]),
        "layernorm": (lambda: c.layernorm(w, d32, d32), [w, d32]),
        "layernorm_bwd": (
            lambda: c.layernorm_bwd(w, d32, mean, rstd, dy),
            [w, d32, mean, rstd, dy],
        ),
        "transpose": (lambda: c.transpose(a), [a]),
        "embedding": (lambda: c.embedding(tokens, table), [tokens, table]),
        "embedding_bwd": (lambda: c.embedding_bwd(table, tokens, dy), [table, tokens, dy]),
        "conv2d": (lambda: c.conv2d(img_strided, kernel, fb, 1, 1, 4), [img_strided, kernel, fb]),
        "conv2d_bwd": (lambda: c.conv2d_bwd(img, kernel, dy_img, 1, 1, 4), [img, kernel, dy_img]),
        "maxpool2d": (lambda: c.maxpool2d(pool), [pool]),
        "maxpool2d_bwd": (lambda: c.maxpool2d_bwd(pool, pool[:, :, ::2, ::2]), [pool]),
        "sgd": (lambda: c.sgd(p, g, 0.0, 4), [p, g]),
        "momentum": (lambda: c.momentum(p, g, v, 0.0, 0.0, 4), [p, g, v]),
        "adam": (lambda: c.adam(p, g, m, v, 1, 0.0, 0.9, 0.999, 1e-8, 4), [p, g, m, v]),
        "mlp_forward": (lambda: c.mlp_forward(mlp, x_mlp, labels, 3), [*mlp, x_mlp, labels]),
        "mlp_backward": (
            lambda: c.mlp_backward(mlp, x_mlp, h, probs, labels, 3),
            [*mlp, x_mlp, *h, probs, labels],
        ),
        # error paths: the strided copy is made before the shapes are found to disagree
        "error: shape": (lambda: c.matmul(strided, b, 4), [strided, b]),
        "error: labels": (lambda: c.softmax_xent(w, labels + 100), [w]),
        "error: in place": (lambda: c.sgd(strided, strided, 0.1, 4), [strided]),
        # ... and after other arrays were taken (or copied), each later check of the spec
        "error: dtype after a copy": (
            lambda: c.matmul_bwd(strided, w, dy.astype(np.float64), 4),
            [strided, w],
        ),
        "error: read-only state": (
            lambda: c.adam(p, strided, m, frozen, 1, 0.0, 0.9, 0.999, 1e-8, 4),
            [p, strided, m, frozen],
        ),
        "error: optimizer shapes": (
            lambda: c.momentum(p, strided, bias, 0.0, 0.0, 4),
            [p, strided, bias],
        ),
        "error: labels dtype": (lambda: c.softmax_xent_bwd(strided, labels * 1.0), [strided]),
        # the conv's and the pool's windows, checked after the arrays were taken (and copied)
        "error: conv padding": (
            lambda: c.conv2d(img_strided, kernel, fb, 1, 3, 4),
            [img_strided, kernel, fb],
        ),
        "error: conv dy": (
            lambda: c.conv2d_bwd(img_strided, kernel, dy_img[:, :, :7], 1, 1, 4),
            [img_strided, kernel, dy_img],
        ),
        "error: pool dy": (lambda: c.maxpool2d_bwd(img_strided, img), [img_strided, img]),
        "error: tokens": (lambda: c.embedding(tokens + 40, table), [tokens, table]),
        "error: any shape": (lambda: c.add(img_strided, img[:1]), [img_strided, img]),
        "error: no classes": (lambda: c.softmax_xent(strided[:, :0], labels), [strided, labels]),
        "error: mlp widths": (lambda: c.mlp_forward(mlp[::-1], x_mlp, labels, 3), [*mlp, x_mlp]),
        "error: mlp cache": (
            lambda: c.mlp_backward(mlp, x_mlp, (probs,), probs, labels, 3),
            [*mlp, x_mlp, probs, labels],
        ),
        "error: mlp labels": (lambda: c.mlp_forward(mlp, x_mlp, labels + 100, 3), [*mlp, x_mlp]),
        "error: mlp probs": (
            lambda: c.mlp_backward(mlp, x_mlp, h, probs[:2], labels, 3),
            [*mlp, x_mlp, *h, labels],
        ),
    }


@pytest.mark.parametrize("op", list(_cases()))
def test_ten_thousand_calls_leave_memory_and_refcounts_flat(op):
    fn, inputs = _cases()[op]

    def call():
        try:
            fn()
        except (ValueError, TypeError):
            if not op.startswith("error"):
                raise

    for _ in range(WARM_UP):
        call()
    process = psutil.Process()
    refs = [sys.getrefcount(x) for x in inputs]
    rss = process.memory_info().rss
    for _ in range(CALLS):
        call()
    grown = process.memory_info().rss - rss
    assert [sys.getrefcount(x) for x in inputs] == refs, f"{op} leaks references to its inputs"
    assert grown < SLACK_BYTES, (
        f"{op}: resident memory grew {grown / 2**20:.1f} MiB over {CALLS} calls"
    )


def test_outputs_come_back_with_one_reference_the_callers():
    """One output is returned as it is, several in a tuple, none as None (kernels/c/args.c):
    an output with a reference too many would never be freed, one too few freed under us."""
    import nnladder_c as c

    a = np.ones((4, 4), np.float32)
    y = c.relu(a)
    assert sys.getrefcount(y) == 2  # y, and getrefcount's argument
    outputs = c.linear_bwd(a, a, a, 3)
    assert len(outputs) == 3 and len({id(o) for o in outputs}) == 3
    assert all(o is not a for o in outputs)
    dx, dw, db = outputs
    del outputs
    assert (sys.getrefcount(dx), sys.getrefcount(dw), sys.getrefcount(db)) == (2, 2, 2)
    assert c.sgd(a, a.copy(), 0.0, 3) is None
