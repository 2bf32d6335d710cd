"""What every op of the contract takes, and whether the shapes of a call agree.

The dimension key (DIMS) and the op table (OPS) live here, re-exported by harness/contract.py
(an impl imports the contract alone). `check_shapes` reads shapes alone, so it is cheap enough
for an impl to run on every call (the CUDA rungs do); the check of a caller's values against
the table, keywords and labels included, is harness/arguments.py's `check_call`.
"""

from __future__ import annotations

from typing import NamedTuple

# The shape-suffix key. Every array name ends in its axes, in order (`x_BI` is batch x input
# features), and einsum subscripts use the same letters in lower case.
ANY = "*"
DIMS = {
    "B": "batch",
    "I": "input features of a layer",
    "H": "hidden features",
    "O": "output features of a layer",
    "C": "classes",
    "R": "rows of a token matrix (B*T tokens flattened)",
    "T": "time: query positions",
    "S": "source positions (keys and values)",
    "D": "model dim (D = G*E)",
    "G": "attention heads",
    "E": "per-head dim",
    "X": "batch x heads, flattened (X = B*G)",
    "M": "rows of a plain matmul",
    "K": "contraction dim of a plain matmul",
    "N": "columns of a plain matmul",
    "P": "shards (ranks)",
    "V": "vocabulary: the token ids an embedding table holds",
    "Q": "channels of an image: what a conv or a pool reads per pixel",
    "F": "filters: a conv's output channels",
    "Y": "height of an image a conv or a pool reads",
    "Z": "width of an image a conv or a pool reads",
    "J": "height of a conv's kernel",
    "L": "width of a conv's kernel",
    "U": "height of the image a conv or a pool writes",
    "W": "width of the image a conv or a pool writes",
    ANY: "any shape of one axis or more, the same for every array of the op",
}

# What an array placed by `put` is for. A sharded impl keeps only its shard of a weight, and
# may split an activation or a label (data-parallel: the batch); a message is one rank's whole
# operand of a collective (the collectives workload), never split.
ROLES = ("weight", "bias", "activation", "label", "message")

# The collectives an impl on ranks may offer through Impl.collective (the collectives workload).
COLLECTIVES = ("allreduce", "allgather", "reducescatter")


class Op(NamedTuple):
    """An op's signature: its arrays (suffixed names), returns, keywords and what ties them."""

    arrays: tuple
    returns: str
    params: dict = {}  # keyword -> the kind of value it takes (arguments.KINDS)
    optional: tuple = ()  # keywords a caller may leave out: the impl's default holds
    # Letters whose axes may have no entries: a product's sum over none is 0. Any other empty
    # axis is refused: a mean over no rows, a softmax over no positions or an output with no
    # entries is a mistake upstream, and a list of no rows cannot even say how wide it is.
    may_be_empty: str = ""
    indexes: tuple = ()  # (array, letter): its entries index that axis, in [0, size)
    multiple_of: dict = {}  # letter -> the keyword its size must be a whole multiple of
    product_of: dict = {}  # letter -> the keywords whose product its size must be
    # (out, in, kernel): a sliding window's output size, out = (in + 2 padding - kernel) //
    # stride + 1 >= 1, with kernel a letter (a conv's) or a fixed size (the pool's), stride and
    # padding the call's keywords or, without them, the pool's fixed POOL and 0.
    windows: tuple = ()


POOL = 2  # maxpool2d's window and stride: 2 x 2, stride 2, no padding (odd edges dropped)
LN_EPS = 1e-5  # layernorm's epsilon, GPT-2's, inside the square root with the variance


_HEADS = {"batch": "count", "heads": "count"}
_CONV = {"stride": "count", "padding": "whole"}
_CONV_WINDOWS = (("U", "Y", "J"), ("W", "Z", "L"))
_POOL_WINDOWS = (("U", "Y", POOL), ("W", "Z", POOL))

# Every op of the contract. This table drives check_call (harness/arguments.py), the unit tests
# and the report's "unsupported" cells.
OPS = {
    "matmul": Op(("a_MK", "b_KN"), "c_MN", may_be_empty="K"),
    "matmul_bwd": Op(("a_MK", "b_KN", "dc_MN"), "da_MK, db_KN"),
    "bmm": Op(("a_XMK", "b_XKN"), "c_XMN", may_be_empty="K"),
    "bmm_bwd": Op(("a_XMK", "b_XKN", "dc_XMN"), "da_XMK, db_XKN"),
    "linear": Op(("x_BI", "w_IO", "b_O"), "y_BO", may_be_empty="I"),
    "linear_bwd": Op(("x_BI", "w_IO", "dy_BO"), "dx_BI, dw_IO, db_O"),
    # Elementwise ops take any shape, the same for all their arrays: rows of features, images.
    "add": Op(("a_*", "b_*"), "c_*"),
    "relu": Op(("x_*",), "y_*"),
    "relu_bwd": Op(("x_*", "dy_*"), "dx_*"),
    "gelu": Op(("x_*",), "y_*"),
    "gelu_bwd": Op(("x_*", "dy_*"), "dx_*"),
    "sigmoid": Op(("x_*",), "y_*"),
    "sigmoid_bwd": Op(("y_*", "dy_*"), "dx_*"),  # from the forward's output y
    "tanh": Op(("x_*",), "y_*"),
    "tanh_bwd": Op(("y_*", "dy_*"), "dx_*"),  # from the forward's output y
    "mse": Op(("y_*", "target_*"), "loss"),
    "mse_bwd": Op(("y_*", "target_*"), "dy_*"),
    "layernorm": Op(("x_RD", "gamma_D", "beta_D"), "y_RD, mean_R, rstd_R"),
    "layernorm_bwd": Op(
        ("x_RD", "gamma_D", "mean_R", "rstd_R", "dy_RD"), "dx_RD, dgamma_D, dbeta_D"
    ),
    "transpose": Op(("a_MK",), "at_KM"),
    # A CNN's images as rows of features for its linear head, and the head's gradient back.
    "flatten": Op(("x_BQYZ",), "x_BI (I = Q*Y*Z)"),
    "unflatten": Op(
        ("x_BI",),
        "x_BQYZ",
        {"channels": "count", "height": "count", "width": "count"},
        product_of={"I": ("channels", "height", "width")},
    ),
    "embedding": Op(("tokens_R", "w_VD"), "x_RD", indexes=("tokens_R", "V")),
    "embedding_bwd": Op(("w_VD", "tokens_R", "dx_RD"), "dw_VD", indexes=("tokens_R", "V")),
    "conv2d": Op(("x_BQYZ", "w_FQJL", "b_F"), "y_BFUW", _CONV, windows=_CONV_WINDOWS),
    "conv2d_bwd": Op(
        ("x_BQYZ", "w_FQJL", "dy_BFUW"), "dx_BQYZ, dw_FQJL, db_F", _CONV, windows=_CONV_WINDOWS
    ),
    "maxpool2d": Op(("x_BQYZ",), "y_BQUW", windows=_POOL_WINDOWS),
    "maxpool2d_bwd": Op(("x_BQYZ", "dy_BQUW"), "dx_BQYZ", windows=_POOL_WINDOWS),
    "softmax": Op(
        ("x_XTS",), "y_XTS", {"causal": "flag", "scale": "real"}, optional=("causal", "scale")
    ),
    "softmax_bwd": Op(("y_XTS", "dy_XTS"), "dx_XTS", {"scale": "real"}, optional=("scale",)),
    "softmax_xent": Op(("logits_BC", "labels_B"), "loss, probs_BC", indexes=("labels_B", "C")),
    "softmax_xent_bwd": Op(("probs_BC", "labels_B"), "dlogits_BC", indexes=("labels_B", "C")),
    "split_heads": Op(
        ("x_RD",),
        "x_XTE (or x_XET when transposed)",
        {**_HEADS, "transpose": "flag"},
        optional=("transpose",),
        multiple_of={"R": "batch", "D": "heads"},
    ),
    "merge_heads": Op(
        ("x_XTE",),
        "x_RD",
        {**_HEADS, "transposed": "flag"},
        optional=("transposed",),
        product_of={"X": ("batch", "heads")},
    ),
    "sgd": Op(("p_*", "g_*"), "None (p updated in place)", {"lr": "real"}),
    "momentum": Op(
        ("p_*", "g_*", "v_*"), "None (p, v updated in place)", {"lr": "real", "mu": "decay"}
    ),
    "adam": Op(
        ("p_*", "g_*", "m_*", "v_*"),
        "None (p, m, v updated in place)",
        {"t": "step", "lr": "real", "beta1": "decay", "beta2": "decay", "eps": "positive"},
    ),
}


class ShapeError(ValueError):
    """Arrays whose shape suffixes do not agree, said with both shapes and their letters."""


def suffix(name: str) -> str:
    """The axis letters of a suffixed name: "BI" of "x_BI", "*" of "p_*"."""
    return name.rsplit("_", 1)[-1]


def role_of(name: str) -> str:
    """The role a caller's array of this name is placed with: labels and token ids as labels
    (integers), the rest as activations (whole on every rank of a sharded impl)."""
    return "label" if name.startswith(("labels", "tokens")) else "activation"


def check_shapes(op: str, *shapes: tuple) -> dict:
    """Check that the axis sizes agree wherever two arrays of `op` share a suffix letter.

    `shapes` are the shapes of the op's arrays in the order of OPS[op].arrays, e.g.
    check_shapes("matmul", (3, 4), (5, 2)). Returns the sizes by letter ({"M": 3, "K": 4,
    "N": 2}; an update's "*" maps to its arrays' one shape) or raises ShapeError naming both
    arrays.
    """
    sizes: dict = {}
    first_seen: dict = {}
    for name, shape in zip(OPS[op].arrays, shapes, strict=True):
        shape, letters = tuple(shape), suffix(name)
        if letters == ANY and not shape:
            raise ShapeError(
                f"{op}: {name} has shape (): it needs at least one axis ({ANY}: {DIMS[ANY]})"
            )
        if letters != ANY and len(letters) != len(shape):
            raise ShapeError(
                f"{op}: {name} must have {len(letters)} axes "
                f"({', '.join(letters)}), got shape {shape}"
            )
        for letter, size in [(ANY, shape)] if letters == ANY else zip(letters, shape):
            if letter in sizes and sizes[letter] != size:
                other, other_shape = first_seen[letter]
                what = (
                    f"shapes ({DIMS[ANY]})" if letter == ANY else f"{letter} ({DIMS[letter]}) axes"
                )
                raise ShapeError(
                    f"{op}: {other} has shape {other_shape} but {name} has shape "
                    f"{shape}: their {what} must agree ({sizes[letter]} vs {size})"
                )
            sizes[letter] = size
            first_seen.setdefault(letter, (name, shape))
    return sizes
