"""What every op of the contract takes, and the one check of a call against it.

The dimension key (DIMS) and the op table (OPS) live here, re-exported by harness/contract.py
(an impl imports the contract alone). `check_call` runs before an impl sees a caller's inputs
(harness/api.py): every array, every keyword and what ties them (shared letters, labels
inside [0, C), heads dividing D, t from 1), a failure one sentence naming the argument, what
it got and what was expected. It reads every entry (NaN, labels), so it runs where a caller
hands over arrays, never in a timed loop: the workloads make their own inputs and skip it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

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
    ANY: "any shape of one axis or more, the same for every array of the op",
}

# What an array placed by `put` is for. A sharded impl keeps only its shard of a weight.
ROLES = ("weight", "bias", "activation", "label")


class Op(NamedTuple):
    """An op's signature: its arrays (suffixed names), returns, keywords and what ties them."""

    arrays: tuple
    returns: str
    params: dict = {}  # keyword -> the kind of value it takes (KINDS)
    optional: tuple = ()  # keywords a caller may leave out: the impl's default holds
    # Letters whose axes may have no entries: a product's sum over none is 0. Any other empty
    # axis is refused: a mean over no rows, a softmax over no positions or an output with no
    # entries is a mistake upstream, and a list of no rows cannot even say how wide it is.
    may_be_empty: str = ""
    indexes: tuple = ()  # (array, letter): its entries index that axis, in [0, size)
    multiple_of: dict = {}  # letter -> the keyword its size must be a whole multiple of
    product_of: dict = {}  # letter -> the keywords whose product its size must be


_HEADS = {"batch": "count", "heads": "count"}

# Every op of the contract. This table drives check_call, the unit tests and the report's
# "unsupported" cells.
OPS = {
    "matmul": Op(("a_MK", "b_KN"), "c_MN", may_be_empty="K"),
    "matmul_bwd": Op(("a_MK", "b_KN", "dc_MN"), "da_MK, db_KN"),
    "bmm": Op(("a_XMK", "b_XKN"), "c_XMN", may_be_empty="K"),
    "bmm_bwd": Op(("a_XMK", "b_XKN", "dc_XMN"), "da_XMK, db_XKN"),
    "linear": Op(("x_BI", "w_IO", "b_O"), "y_BO", may_be_empty="I"),
    "linear_bwd": Op(("x_BI", "w_IO", "dy_BO"), "dx_BI, dw_IO, db_O"),
    "add": Op(("a_BI", "b_BI"), "c_BI"),
    "relu": Op(("x_BI",), "y_BI"),
    "relu_bwd": Op(("x_BI", "dy_BI"), "dx_BI"),
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


def _whole(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _real(v) -> bool:
    return (
        isinstance(v, (int, float, np.integer, np.floating))
        and not isinstance(v, bool)
        and math.isfinite(v)
    )


# The kinds of keyword argument: kind -> (test, what the test wants, as a sentence ends it).
KINDS = {
    "count": (lambda v: _whole(v) and v >= 1, "a whole number >= 1"),
    "step": (lambda v: _whole(v) and v >= 1, "a whole number >= 1 (steps count from 1)"),
    "flag": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "real": (_real, "a finite number"),
    "decay": (lambda v: _real(v) and 0 <= v < 1, "a number in [0, 1)"),
    "positive": (lambda v: _real(v) and v > 0, "a finite number > 0"),
}


class ShapeError(ValueError):
    """Arrays whose shape suffixes do not agree, said with both shapes and their letters."""


def suffix(name: str) -> str:
    """The axis letters of a suffixed name: "BI" of "x_BI", "*" of "p_*"."""
    return name.rsplit("_", 1)[-1]


def role_of(name: str) -> str:
    """The role a caller's array of this name is placed with: labels as labels, the rest as
    activations (whole on every rank of a sharded impl)."""
    return "label" if name.startswith("labels") else "activation"


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


def check_host_array(name: str, x, role: str) -> None:
    """Reject a host array that would give silently wrong numbers: wrong type, dtype or NaN."""
    if role not in ROLES:
        raise ValueError(f"{name}: role must be one of {ROLES}, got {role!r}")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if role == "label":
        if x.dtype.kind not in "iu" or x.ndim != 1:
            raise TypeError(
                f"{name}: labels must be a 1-d integer array, got dtype {x.dtype} "
                f"with shape {x.shape}"
            )
        return
    if x.dtype != np.float32:
        raise TypeError(f"{name}: expected dtype float32, got {x.dtype} with shape {x.shape}")
    if not np.isfinite(x).all():
        bad = int(x.size - np.isfinite(x).sum())
        raise ValueError(f"{name}: {bad} of {x.size} entries are NaN or Inf (shape {x.shape})")


def check_call(op: str, arrays, params: dict) -> dict:
    """Check one call of `op` before an impl sees it; -> the sizes by letter.

    `arrays` are host arrays in the order of OPS[op].arrays, `params` the keyword arguments.
    """
    if op not in OPS:
        raise KeyError(f"unknown op {op!r}: expected one of {', '.join(OPS)}")
    spec = OPS[op]
    if len(arrays) != len(spec.arrays):
        by_keyword = f"; {', '.join(spec.params)} go by keyword" if spec.params else ""
        raise TypeError(
            f"{op} takes {len(spec.arrays)} arrays ({', '.join(spec.arrays)}), "
            f"got {len(arrays)}{by_keyword}"
        )
    named = dict(zip(spec.arrays, arrays))
    for name, x in named.items():
        check_host_array(name, x, role_of(name))
    sizes = check_shapes(op, *(x.shape for x in arrays))
    for name, x in named.items():
        for axis, size in enumerate(x.shape):
            letter = ANY if suffix(name) == ANY else suffix(name)[axis]
            if size == 0 and letter not in spec.may_be_empty:
                but = (
                    f" but {', '.join(spec.may_be_empty)} (a sum of no terms is 0)"
                    if spec.may_be_empty
                    else ""
                )
                what = f"axis {axis}" if letter == ANY else f"{letter} axis ({DIMS[letter]})"
                raise ValueError(
                    f"{op}: {name} has shape {x.shape}: its {what} has no "
                    f"entries, and {op} takes no empty axis{but}"
                )
    _check_params(op, spec, params)
    _check_ties(op, spec, named, sizes, params)
    return sizes


def _check_params(op: str, spec: Op, params: dict) -> None:
    for keyword in params:
        if keyword not in spec.params:
            takes = ", ".join(spec.params) or "none"
            raise TypeError(f"{op}: unknown keyword argument {keyword!r}; it takes {takes}")
    for keyword, kind in spec.params.items():
        valid, wanted = KINDS[kind]
        if keyword not in params:
            if keyword not in spec.optional:
                raise TypeError(f"{op}: missing keyword argument {keyword!r}, {wanted}")
        elif not valid(params[keyword]):
            raise ValueError(f"{op}: {keyword} must be {wanted}, got {params[keyword]!r}")


def _check_ties(op: str, spec: Op, named: dict, sizes: dict, params: dict) -> None:
    """What ties values to sizes: labels index an axis (a label of -1 would read the last
    class, one past it other memory), heads and batch divide the axes they split."""

    def holder(letter):  # "x_RD has shape (4, 6)": the first array with the letter
        return next(f"{n} has shape {x.shape}" for n, x in named.items() if letter in suffix(n))

    if spec.indexes:
        name, letter = spec.indexes
        labels = named[name]
        bad = np.flatnonzero((labels < 0) | (labels >= sizes[letter]))
        if bad.size:
            shown = ", ".join(f"{labels[i]} at index {i}" for i in bad[:5])
            raise ValueError(
                f"{op}: {name} has {bad.size} of {labels.size} entries outside "
                f"[0, {letter}) for {letter} = {sizes[letter]} ({DIMS[letter]}; "
                f"{holder(letter)}): {shown}{', ...' if bad.size > 5 else ''}"
            )
    for letter, keyword in spec.multiple_of.items():
        if sizes[letter] % params[keyword]:
            raise ValueError(
                f"{op}: {holder(letter)} but {keyword} is {params[keyword]}: its "
                f"{letter} axis ({DIMS[letter]}) must be a whole multiple of "
                f"{keyword} ({sizes[letter]} is not)"
            )
    for letter, keywords in spec.product_of.items():
        want = math.prod(params[k] for k in keywords)
        if sizes[letter] != want:
            given = " and ".join(f"{k} is {params[k]}" for k in keywords)
            raise ValueError(
                f"{op}: {holder(letter)} but {given}: its {letter} axis "
                f"({DIMS[letter]}) must be {' * '.join(keywords)} = {want} "
                f"(it is {sizes[letter]})"
            )
