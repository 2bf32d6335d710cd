"""The one contract every rung of the ladder implements.

An implementation ("impl") is a subclass of `Impl` in its own file under impls/. It imports
this module and nothing else of the harness. The harness reaches impls only through the
registry (harness/registry.py), composes models from the ops below (harness/models.py) and
checks every output against a float64 reference (harness/reference.py).

What each op takes is declared once, in the op table (OPS) and its shape-suffix key (DIMS):
every array name ends in its axes, in order (`x_BI` is batch x input features), and einsum
subscripts use the same letters in lower case. A caller's arguments are checked against
that table before an impl sees them (check_call, run by harness/api.py): shapes agree,
labels are classes, heads divide the model dim, t counts from 1.
"""

from __future__ import annotations

import numpy as np

# The dimension key and the op table (harness/signatures.py) and the checks of a call against
# them (harness/arguments.py), re-exported here so that an impl imports this module alone.
from harness.arguments import check_call, check_host_array
from harness.signatures import (
    ANY,
    COLLECTIVES,
    DIMS,
    LN_EPS,
    OPS,
    POOL,
    ROLES,
    ShapeError,
    check_shapes,
)

__all__ = [
    "ANY",
    "COLLECTIVES",
    "DIMS",
    "LN_EPS",
    "OPS",
    "POOL",
    "ROLES",
    "Impl",
    "ShapeError",
    "check_call",
    "check_host_array",
    "check_shapes",
]


class Impl:
    """One rung of the ladder. Subclasses set `name` and `device` and implement the ops.

    Arrays are float32 on the way in and out; an impl keeps them in its own form (lists of
    floats, ndarrays, CuPy arrays, shards). An op an impl lacks raises NotImplementedError,
    which the harness records as status "unsupported".
    """

    name: str = ""
    device: str = "cpu"  # "cpu" or "cuda"
    # The kind of rung, for the report's ordering: python < numpy < c < cuda < sharded.
    rung: int = 0

    # -- availability -------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this impl cannot run on this machine (no compiler, GPU, MPI...), or None."""
        return None

    def info(self) -> dict:
        """Extra facts for the result rows of this impl, e.g. {"threads": 2}."""
        return {}

    # -- hooks the harness calls; the defaults are those of a rung in one process ---------
    # True for an impl whose ops run as the ranks of an MPI job: the harness starts its worker
    # through `launch_prefix`, runs each cell on every rank in step and times the slowest
    # (harness/execute/ranks.py), reading `traffic()` for the compute / communication split.
    runs_on_ranks: bool = False
    # The mpi4py communicator of such an impl (set by its constructor); None in one process.
    comm = None
    # Models this impl runs whole with its own code instead of op by op (harness/models.py):
    # "mlp" means it offers mlp_forward and mlp_backward below, "block" block_forward and
    # block_backward (the transformer block).
    fused: frozenset = frozenset()

    @classmethod
    def launch_prefix(cls, ranks: int) -> list:
        """The command prefix that starts the harness's worker for this impl with `ranks`
        processes (mpiexec -n P ...); [] for an impl that runs in one plain process."""
        return []

    def traffic(self) -> dict:
        """Running counters of an impl that runs on ranks: "comm_s" (seconds in collectives),
        "weight_bytes" (weights and biases this rank holds) and, per collective,
        "<name>_calls" and "<name>_bytes" (bytes this rank sent)."""
        return {}

    def device_peak_bytes(self, fn) -> int | None:
        """Peak device memory of one fn() call, for impls whose arrays live off the host."""
        return None

    def mlp_forward(self, params, x_BI, labels_B):
        """The fused MLP forward and loss, called when "mlp" is in `fused`: params is
        [w0_IO, b0_O, w1_IO, ...]; -> (loss, probs_BC, cache for mlp_backward)."""
        raise NotImplementedError

    def mlp_backward(self, params, cache, labels_B):
        """The fused MLP backward, called when "mlp" is in `fused`: -> grads in the order of
        params."""
        raise NotImplementedError

    def block_forward(self, params, x_RD, batch, heads, dim):
        """The fused transformer block, called when "block" is in `fused`: params in the order
        of models.BLOCK_PARAMS; -> (y_RD, cache for block_backward)."""
        raise NotImplementedError

    def block_backward(self, params, cache, dy_RD, batch, heads):
        """The fused block's backward: -> (dx_RD, grads in the order of params)."""
        raise NotImplementedError

    def collective(self, name: str, x):
        """One collective over the ranks of an impl that runs on them (the collectives
        workload): name is "allreduce", "allgather" or "reducescatter", x a float32 vector,
        this rank's whole message. -> allreduce: the sum over ranks of x; allgather: every
        rank's block of x (np.array_split's) in rank order; reducescatter: this rank's block of
        the sum, as the impl holds a block (get gives the whole). One process has no ranks:
        NotImplementedError, recorded as unsupported."""
        raise NotImplementedError("collective")

    # -- placement ------------------------------------------------------------------------
    def put(self, x_np: np.ndarray, role: str):
        """Host float32 array (int for labels) -> impl-native array."""
        raise NotImplementedError

    def get(self, x) -> np.ndarray:
        """Impl-native array -> host ndarray (float32, or int for labels)."""
        raise NotImplementedError

    def sync(self) -> None:
        """Wait until all work handed to a device is done: timing depends on it."""

    # -- ops, each with its backward ------------------------------------------------------
    def matmul(self, a_MK, b_KN):
        raise NotImplementedError

    def matmul_bwd(self, a_MK, b_KN, dc_MN):
        """-> (da_MK, db_KN)"""
        raise NotImplementedError

    def bmm(self, a_XMK, b_XKN):
        raise NotImplementedError

    def bmm_bwd(self, a_XMK, b_XKN, dc_XMN):
        """-> (da_XMK, db_XKN)"""
        raise NotImplementedError

    def linear(self, x_BI, w_IO, b_O):
        """y_BO = x_BI @ w_IO + b_O"""
        raise NotImplementedError

    def linear_bwd(self, x_BI, w_IO, dy_BO):
        """-> (dx_BI, dw_IO, db_O)"""
        raise NotImplementedError

    def add(self, a, b):
        """Elementwise sum: where two gradient paths meet (a residual, attention's q, k, v)."""
        raise NotImplementedError

    # Elementwise ops take arrays of any shape, one for all of their arrays (`x_*` in OPS).
    def relu(self, x):
        raise NotImplementedError

    def relu_bwd(self, x, dy):
        """dx = dy where x > 0, else 0."""
        raise NotImplementedError

    def gelu(self, x):
        """GPT-2's tanh form: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
        raise NotImplementedError

    def gelu_bwd(self, x, dy):
        """dy times the derivative of gelu's tanh form at x."""
        raise NotImplementedError

    def sigmoid(self, x):
        """1 / (1 + exp(-x)), without overflow for large |x|."""
        raise NotImplementedError

    def sigmoid_bwd(self, y, dy):
        """dy * y * (1 - y), from the forward's output y."""
        raise NotImplementedError

    def tanh(self, x):
        raise NotImplementedError

    def tanh_bwd(self, y, dy):
        """dy * (1 - y^2), from the forward's output y."""
        raise NotImplementedError

    def mse(self, y, target):
        """-> the mean over every entry of (y - target)^2, a float."""
        raise NotImplementedError

    def mse_bwd(self, y, target):
        """-> 2 (y - target) / n, n the number of entries."""
        raise NotImplementedError

    def layernorm(self, x_RD, gamma_D, beta_D):
        """Each row normalised over D (biased variance, eps LN_EPS), then gamma * . + beta;
        -> (y_RD, mean_R, rstd_R): the mean and 1 / sqrt(var + eps) the backward reads."""
        raise NotImplementedError

    def layernorm_bwd(self, x_RD, gamma_D, mean_R, rstd_R, dy_RD):
        """-> (dx_RD, dgamma_D, dbeta_D)"""
        raise NotImplementedError

    def transpose(self, a_MK):
        """-> at_KM, a copy: the GPT's tied head reads the embedding table as w_DV."""
        raise NotImplementedError

    def flatten(self, x_BQYZ):
        """-> x_BI, each image's entries in row-major order (I = Q*Y*Z)."""
        raise NotImplementedError

    def unflatten(self, x_BI, channels: int, height: int, width: int):
        """The inverse of flatten: -> x_BQYZ with (Q, Y, Z) = (channels, height, width)."""
        raise NotImplementedError

    def embedding(self, tokens_R, w_VD):
        """Row tokens_R[r] of the table for every r: x_RD."""
        raise NotImplementedError

    def embedding_bwd(self, w_VD, tokens_R, dx_RD):
        """-> dw_VD, the table's shape: row v sums dx's rows whose token is v (a scatter-add)."""
        raise NotImplementedError

    def conv2d(self, x_BQYZ, w_FQJL, b_F, stride: int, padding: int):
        """Cross-correlation of every image with every filter, zero-padded on each side, plus
        the filter's bias: y_BFUW, U = (Y + 2 padding - J) // stride + 1 (W alike)."""
        raise NotImplementedError

    def conv2d_bwd(self, x_BQYZ, w_FQJL, dy_BFUW, stride: int, padding: int):
        """-> (dx_BQYZ, dw_FQJL, db_F)"""
        raise NotImplementedError

    def maxpool2d(self, x_BQYZ):
        """The max of every POOL x POOL window, stride POOL: y_BQUW with U = Y // POOL (an odd
        last row or column is dropped)."""
        raise NotImplementedError

    def maxpool2d_bwd(self, x_BQYZ, dy_BQUW):
        """dy routed to each window's max, the first in row-major order on a tie; else 0."""
        raise NotImplementedError

    def softmax(self, x_XTS, causal: bool = False, scale: float = 1.0):
        """Softmax over S of scale * x; with causal, positions s > t get probability 0."""
        raise NotImplementedError

    def softmax_bwd(self, y_XTS, dy_XTS, scale: float = 1.0):
        """Gradient with respect to x of softmax(scale * x), given its output y."""
        raise NotImplementedError

    def softmax_xent(self, logits_BC, labels_B):
        """-> (loss: float, the mean cross-entropy over B; probs_BC)"""
        raise NotImplementedError

    def softmax_xent_bwd(self, probs_BC, labels_B):
        """Gradient of the mean loss with respect to the logits: (probs - onehot) / B."""
        raise NotImplementedError

    def split_heads(self, x_RD, batch: int, heads: int, transpose: bool = False):
        """x_RD with R = B*T -> x_XTE (X = B*G, D = G*E), or x_XET when transpose."""
        raise NotImplementedError

    def merge_heads(self, x_XTE, batch: int, heads: int, transposed: bool = False):
        """The inverse of split_heads: x_XTE (or x_XET when transposed) -> x_RD."""
        raise NotImplementedError

    # -- optimizer updates, in place on a weight or bias and its state -------------------
    # p, g and the state take any shape, one for all of them (`p_*` in OPS).
    def sgd(self, p, g, lr: float) -> None:
        """p -= lr * g"""
        raise NotImplementedError

    def momentum(self, p, g, v, lr: float, mu: float) -> None:
        """v = mu * v + g; p -= lr * v"""
        raise NotImplementedError

    def adam(self, p, g, m, v, t: int, lr: float, beta1: float, beta2: float, eps: float) -> None:
        """Adam (Kingma & Ba) with bias correction; t counts steps from 1."""
        raise NotImplementedError
