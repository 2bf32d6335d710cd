"""The one check of a call of an op against the op table, before an impl sees its inputs.

`check_call` (run by harness/api.py) checks every array, every keyword and what ties them
against the op table of harness/signatures.py (shared letters, labels inside [0, C), heads
dividing D, t from 1), a failure one sentence naming the argument, what it got and what was
expected. It reads every entry (NaN, labels), so it runs where a caller hands over arrays,
never in a timed loop: the workloads make their own inputs and skip it.
"""

from __future__ import annotations

import math

import numpy as np

from harness.signatures import ANY, DIMS, OPS, POOL, ROLES, Op, check_shapes, role_of, suffix


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
    "whole": (lambda v: _whole(v) and v >= 0, "a whole number >= 0"),
    "step": (lambda v: _whole(v) and v >= 1, "a whole number >= 1 (steps count from 1)"),
    "flag": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "real": (_real, "a finite number"),
    "decay": (lambda v: _real(v) and 0 <= v < 1, "a number in [0, 1)"),
    "positive": (lambda v: _real(v) and v > 0, "a finite number > 0"),
}


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
    for out, into, kernel in spec.windows:
        _check_window(op, holder, sizes, params, out, into, kernel)


def _check_window(op, holder, sizes, params, out, into, kernel) -> None:
    """A sliding window's sizes: the padded image holds the kernel at least once, padding is
    less than the kernel (no window of padding alone), and an output's size is the windows'."""
    size_k = sizes[kernel] if isinstance(kernel, str) else kernel
    stride, padding = params.get("stride", POOL), params.get("padding", 0)
    of_kernel = f"{kernel} axis ({DIMS[kernel]})" if isinstance(kernel, str) else "window"
    if padding >= size_k:
        raise ValueError(
            f"{op}: padding is {padding} but {holder(kernel)}: its {of_kernel} is {size_k}, "
            "and padding must be less than the kernel (no window of padding alone)"
        )
    fits = (sizes[into] + 2 * padding - size_k) // stride + 1
    if fits < 1:
        raise ValueError(
            f"{op}: {holder(into)}: its {into} axis ({DIMS[into]}) is {sizes[into]}, with "
            f"padding {padding} on each side smaller than the {of_kernel} of {size_k}"
        )
    if out in sizes and sizes[out] != fits:
        raise ValueError(
            f"{op}: {holder(out)} but its {out} axis ({DIMS[out]}) must be "
            f"({sizes[into]} + 2*{padding} - {size_k}) // {stride} + 1 = {fits}, the windows "
            f"that fit its input's {into} axis"
        )
