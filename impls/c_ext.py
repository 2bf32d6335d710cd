"""The C rung: every contract op in C (kernels/c), through the extension module nnladder_c.

One class per rung of the CPU GEMM ladder, so the report shows what each idea buys. The
products (matmul, bmm, linear) and the conv's (im2col, then the rung's GEMM: kernels/c/conv.c)
run on the class's rung; every other op is shared (softmax, cross-entropy, optimizers:
kernels/c/ops.c; gelu, layernorm, embedding and the other elementwise ops: kernels/c/nn.c):

    c-naive    GEMM rung 1: i-j-k, one dot product per output     (kernels/c/gemm_1_naive.c)
    c-loops    GEMM rung 2: i-k-j, unit-stride inner loop          (kernels/c/gemm_2_loops.c)
    c-blocked  GEMM rung 3: blocked, packed, AVX2/FMA micro-kernel (kernels/c/gemm_3_blocked.c)
    c          GEMM rung 4: rung 3 on every thread                 (kernels/c/gemm_4_threads.c)

The MLP model is fused: its forward and its backward are one call into C each (kernels/c/mlp.c,
the contract's `fused` hook), and the backward skips the first layer's input gradient. On `c` the
threads split the model by rows of the batch rather than each product by itself.

Threads: only `c` uses more than one, as many as OpenMP's max threads at each call: set it as
for BLAS, with threadpoolctl (`with threadpool_limits(n):` limits OpenBLAS and OpenMP alike) or
OMP_NUM_THREADS at start-up. `info()` puts the count in every result row. A conv of at least
as many images as threads gives each thread whole images. The elementwise ops run on one
thread (memory-bound and small here), but for the optimizer updates of large parameters.
OpenMP's idle threads spin between parallel regions (its default, as for every OpenMP
library): on a 2-core machine busy with other work a spinning thread takes the core the
caller needs (README, "Measured figures": the training epoch on a busy machine). There, run
on one thread. The micro-kernel is picked at import (AVX2+FMA where the CPU has them, else
scalar); `nnladder_c.set_kernel("scalar")` forces the fallback.

Arrays are float32 ndarrays, C-contiguous (put copies them so). The module checks every
argument: wrong type or dtype is a TypeError, a wrong number of axes or disagreeing sizes a
ValueError, naming the argument and its shape; a non-contiguous input is copied, a
non-contiguous array to update in place is refused. split_heads, merge_heads, flatten and
unflatten only move data, so they are NumPy reshapes and transposes here, not C.

The extension is built by `pip install -e .` (setup.py). Where it could not be built (no C
compiler) or imported, every class here is unavailable and says why.
"""

from __future__ import annotations

import os
import shutil
import sysconfig

import numpy as np

from harness.contract import Impl

try:
    import nnladder_c as _c

    _IMPORT_ERROR = None
except ImportError as error:  # not built: the classes below say why instead of running
    _c, _IMPORT_ERROR = None, error


def _why_unavailable(import_error) -> str | None:
    if import_error is None:
        return None
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return (
            f"the C extension nnladder_c is not built: no C compiler ({compiler}) was "
            "found; install one and reinstall the project (pip install -e .)"
        )
    return (
        f"the C extension nnladder_c is not importable ({import_error}); rebuild it with "
        "pip install -e . and read the build's warning"
    )


class CImpl(Impl):
    name = "c"
    device = "cpu"
    rung = 2
    gemm = 4  # the GEMM rung of kernels/c/gemm_<gemm>_*.c that this class uses
    fused = frozenset({"mlp"})  # kernels/c/mlp.c

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return _why_unavailable(_IMPORT_ERROR)

    def info(self) -> dict:
        """Threads, and the GEMM as rung/file name plus the micro-kernel: "4_threads/avx2"."""
        kernel = f"{self.gemm}_{self.name.removeprefix('c-') if self.gemm < 4 else 'threads'}"
        return {
            "threads": _c.threads() if self.gemm == 4 else 1,
            "kernel": f"{kernel}/{_c.kernel()}" if self.gemm >= 3 else kernel,
        }

    def put(self, x_np, role):
        return np.array(x_np, dtype=np.int64 if role == "label" else np.float32, order="C")

    def get(self, x):
        return np.asarray(x)

    def matmul(self, a_MK, b_KN):
        return _c.matmul(a_MK, b_KN, self.gemm)

    def matmul_bwd(self, a_MK, b_KN, dc_MN):
        return _c.matmul_bwd(a_MK, b_KN, dc_MN, self.gemm)

    def bmm(self, a_XMK, b_XKN):
        return _c.bmm(a_XMK, b_XKN, self.gemm)

    def bmm_bwd(self, a_XMK, b_XKN, dc_XMN):
        return _c.bmm_bwd(a_XMK, b_XKN, dc_XMN, self.gemm)

    def linear(self, x_BI, w_IO, b_O):
        return _c.linear(x_BI, w_IO, b_O, self.gemm)

    def linear_bwd(self, x_BI, w_IO, dy_BO):
        return _c.linear_bwd(x_BI, w_IO, dy_BO, self.gemm)

    def mlp_forward(self, params, x_BI, labels_B):
        """The whole MLP forward and loss in one call into C (kernels/c/mlp.c); the cache is
        what mlp_backward needs: the input, the hidden layers' relu outputs and the probs."""
        loss, probs_BC, h = _c.mlp_forward(params, x_BI, labels_B, self.gemm)
        return loss, probs_BC, (x_BI, h, probs_BC)

    def mlp_backward(self, params, cache, labels_B):
        """The MLP's gradients in one call into C, in the order of params. The first layer's
        input gradient is not computed: nothing reads it (models.mlp_backward computes and
        drops it)."""
        x_BI, h, probs_BC = cache
        return _c.mlp_backward(params, x_BI, h, probs_BC, labels_B, self.gemm)

    # Elementwise ops take any shape (the contract's x_*), one for all of their arrays.
    def add(self, a, b):
        return _c.add(a, b)

    def relu(self, x):
        return _c.relu(x)

    def relu_bwd(self, x, dy):
        return _c.relu_bwd(x, dy)

    def gelu(self, x):
        return _c.gelu(x)

    def gelu_bwd(self, x, dy):
        return _c.gelu_bwd(x, dy)

    def sigmoid(self, x):
        return _c.sigmoid(x)

    def sigmoid_bwd(self, y, dy):
        return _c.sigmoid_bwd(y, dy)

    def tanh(self, x):
        return _c.tanh(x)

    def tanh_bwd(self, y, dy):
        return _c.tanh_bwd(y, dy)

    def mse(self, y, target):
        return _c.mse(y, target)

    def mse_bwd(self, y, target):
        return _c.mse_bwd(y, target)

    def layernorm(self, x_RD, gamma_D, beta_D):
        return _c.layernorm(x_RD, gamma_D, beta_D)

    def layernorm_bwd(self, x_RD, gamma_D, mean_R, rstd_R, dy_RD):
        return _c.layernorm_bwd(x_RD, gamma_D, mean_R, rstd_R, dy_RD)

    def transpose(self, a_MK):
        return _c.transpose(a_MK)

    # Only moves of data, as split_heads: NumPy reshapes of C-contiguous arrays, no copy.
    def flatten(self, x_BQYZ):
        return x_BQYZ.reshape(len(x_BQYZ), -1)

    def unflatten(self, x_BI, channels, height, width):
        return x_BI.reshape(len(x_BI), channels, height, width)

    def embedding(self, tokens_R, w_VD):
        return _c.embedding(tokens_R, w_VD)

    def embedding_bwd(self, w_VD, tokens_R, dx_RD):
        return _c.embedding_bwd(w_VD, tokens_R, dx_RD)

    # The conv's products run on this class's GEMM rung (kernels/c/conv.c), as linear's do.
    def conv2d(self, x_BQYZ, w_FQJL, b_F, stride, padding):
        return _c.conv2d(x_BQYZ, w_FQJL, b_F, stride, padding, self.gemm)

    def conv2d_bwd(self, x_BQYZ, w_FQJL, dy_BFUW, stride, padding):
        return _c.conv2d_bwd(x_BQYZ, w_FQJL, dy_BFUW, stride, padding, self.gemm)

    def maxpool2d(self, x_BQYZ):
        return _c.maxpool2d(x_BQYZ)

    def maxpool2d_bwd(self, x_BQYZ, dy_BQUW):
        return _c.maxpool2d_bwd(x_BQYZ, dy_BQUW)

    def softmax(self, x_XTS, causal=False, scale=1.0):
        return _c.softmax(x_XTS, causal, scale)

    def softmax_bwd(self, y_XTS, dy_XTS, scale=1.0):
        return _c.softmax_bwd(y_XTS, dy_XTS, scale)

    def softmax_xent(self, logits_BC, labels_B):
        return _c.softmax_xent(logits_BC, labels_B)

    def softmax_xent_bwd(self, probs_BC, labels_B):
        return _c.softmax_xent_bwd(probs_BC, labels_B)

    def split_heads(self, x_RD, batch, heads, transpose=False):
        R, D = x_RD.shape
        T, E = R // batch, D // heads
        x_BGTE = x_RD.reshape(batch, T, heads, E).transpose(0, 2, 1, 3)
        x_XTE = x_BGTE.reshape(batch * heads, T, E)
        return np.ascontiguousarray(x_XTE.transpose(0, 2, 1) if transpose else x_XTE)

    def merge_heads(self, x_XTE, batch, heads, transposed=False):
        x_XTE = x_XTE.transpose(0, 2, 1) if transposed else x_XTE
        X, T, E = x_XTE.shape
        x_BTGE = x_XTE.reshape(batch, heads, T, E).transpose(0, 2, 1, 3)
        return np.ascontiguousarray(x_BTGE).reshape(batch * T, heads * E)

    def sgd(self, p, g, lr):
        _c.sgd(p, g, lr, self.gemm)

    def momentum(self, p, g, v, lr, mu):
        _c.momentum(p, g, v, lr, mu, self.gemm)

    def adam(self, p, g, m, v, t, lr, beta1, beta2, eps):
        _c.adam(p, g, m, v, t, lr, beta1, beta2, eps, self.gemm)


class CBlocked(CImpl):
    name = "c-blocked"
    gemm = 3


class CLoops(CImpl):
    name = "c-loops"
    gemm = 2


class CNaive(CImpl):
    name = "c-naive"
    gemm = 1
