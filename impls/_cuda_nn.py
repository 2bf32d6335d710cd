"""The CUDA rungs' activations, squared error, layernorm, transpose and embedding.

They run the kernels of kernels/cuda/nn.cu, the same in every rung, through the launch
helpers of NetworkOps (impls/_cuda_ops.py). NnOps is mixed into CudaImpl with it; its
`_row_sums` is also the conv's bias gradient (impls/_cuda_conv.py).
"""

from __future__ import annotations

import numpy as np

from harness.contract import LN_EPS
from impls._cuda_ops import cdiv, checked

REDUCE_BLOCK = 256  # threads of a reducing block: nn.cu's NN_WARPS warps of 32
SQ_ERR_BLOCKS = 128  # at most this many partial sums of the squared error, one per block
LN_BLOCK = (32, 4)  # layernorm: a warp per row, nn.cu's LN_ROWS rows a block
LNP_BLOCK = (32, 8)  # layernorm_dparams: 32 columns x nn.cu's LNP_ROWS row strides
TRANSPOSE_BLOCK = (32, 8)  # transpose: a 32 x 32 tile (nn.cu's T_TILE) by 32 x 8 threads
TRANSPOSE_TILE = 32


class NnOps:
    """The ops of kernels/cuda/nn.cu, for a CudaImpl (see NetworkOps for what it sets)."""

    def _row_sums(self, x_RC):
        """out_R[r] = the sum of row r of x_RC, one block of REDUCE_BLOCK threads a row."""
        R, C = x_RC.shape
        out_R = self.backend.empty((R,))
        if R:
            self.backend.launch("row_sums", (R,), (REDUCE_BLOCK,), (x_RC, out_R, np.int32(C)))
        return out_R

    # -- activations: any shape, one thread per entry -------------------------------------
    def gelu(self, x):
        return self._map("gelu", "gelu", x)

    def gelu_bwd(self, x, dy):
        return self._map("gelu_bwd", "gelu_bwd", x, dy)

    def sigmoid(self, x):
        return self._map("sigmoid", "sigmoid", x)

    def sigmoid_bwd(self, y, dy):
        return self._map("sigmoid_bwd", "sigmoid_bwd", y, dy)

    def tanh(self, x):
        return self._map("tanh", "tanh_fwd", x)  # "tanh" is the C library's

    def tanh_bwd(self, y, dy):
        return self._map("tanh_bwd", "tanh_bwd", y, dy)

    # -- mean squared error -----------------------------------------------------------------
    def mse(self, y, target):
        checked("mse", y.shape, target.shape)
        n = y.size
        G = min(cdiv(n, REDUCE_BLOCK), SQ_ERR_BLOCKS)
        part_1G = self.backend.empty((1, G))
        self.backend.launch(
            "sq_err_partials", (G,), (REDUCE_BLOCK,), (y, target, part_1G, np.int32(n))
        )
        # The partial sums' total on the GPU, then one float to the host.
        total_1 = self.get(self._row_sums(part_1G))
        return float(total_1[0]) / n

    def mse_bwd(self, y, target):
        checked("mse_bwd", y.shape, target.shape)
        dy = self.backend.empty(y.shape)
        scale = np.float32(2.0 / y.size)  # in double, rounded once
        self._elementwise("mse_bwd", y.size, y, target, dy, scale, np.int32(y.size))
        return dy

    # -- layernorm: a warp per row ----------------------------------------------------------
    def layernorm(self, x_RD, gamma_D, beta_D):
        R, D = checked("layernorm", x_RD.shape, gamma_D.shape, beta_D.shape).values()
        y_RD = self.backend.empty((R, D))
        mean_R, rstd_R = self.backend.empty((R,)), self.backend.empty((R,))
        if R:
            self.backend.launch(
                "layernorm_rows",
                (cdiv(R, LN_BLOCK[1]),),
                LN_BLOCK,
                (x_RD, gamma_D, beta_D, y_RD, mean_R, rstd_R)
                + (np.int32(R), np.int32(D), np.float32(LN_EPS)),
            )
        return y_RD, mean_R, rstd_R

    def layernorm_bwd(self, x_RD, gamma_D, mean_R, rstd_R, dy_RD):
        R, D = checked(
            "layernorm_bwd", x_RD.shape, gamma_D.shape, mean_R.shape, rstd_R.shape, dy_RD.shape
        ).values()
        dx_RD = self.backend.empty((R, D))
        dgamma_D, dbeta_D = self.backend.empty((D,)), self.backend.empty((D,))
        sizes = (np.int32(R), np.int32(D))
        if R:
            self.backend.launch(
                "layernorm_bwd_rows",
                (cdiv(R, LN_BLOCK[1]),),
                LN_BLOCK,
                (x_RD, gamma_D, mean_R, rstd_R, dy_RD, dx_RD, *sizes),
            )
        self.backend.launch(
            "layernorm_dparams",
            (cdiv(D, LNP_BLOCK[0]),),
            LNP_BLOCK,
            (x_RD, mean_R, rstd_R, dy_RD, dgamma_D, dbeta_D, *sizes),
        )
        return dx_RD, dgamma_D, dbeta_D

    # -- layout -----------------------------------------------------------------------------
    def transpose(self, a_MK):
        M, K = checked("transpose", a_MK.shape).values()
        at_KM = self.backend.empty((K, M))
        if at_KM.size:
            grid = (cdiv(K, TRANSPOSE_TILE), cdiv(M, TRANSPOSE_TILE))
            self.backend.launch(
                "transpose", grid, TRANSPOSE_BLOCK, (a_MK, at_KM, np.int32(M), np.int32(K))
            )
        return at_KM

    # -- embedding --------------------------------------------------------------------------
    def embedding(self, tokens_R, w_VD):
        R, V, D = checked("embedding", tokens_R.shape, w_VD.shape).values()
        x_RD = self.backend.empty((R, D))
        self._elementwise(
            "embedding", R * D, tokens_R, w_VD, x_RD, np.int32(R), np.int32(V), np.int32(D)
        )
        return x_RD

    def embedding_bwd(self, w_VD, tokens_R, dx_RD):
        V, D, R = checked("embedding_bwd", w_VD.shape, tokens_R.shape, dx_RD.shape).values()
        dw_VD = self.backend.empty((V, D))
        dw_VD.fill(0)  # the kernel adds every row of dx into it
        self._elementwise(
            "embedding_bwd", R * D, tokens_R, dx_RD, dw_VD, np.int32(R), np.int32(V), np.int32(D)
        )
        return dw_VD
