"""A model's weights in npz files (save, check, load); an MLP's names, shapes and seeded init.

A weights file comes from the user (`train --load`), so it is trusted no more than any input:
each member's .npy header is read and checked against the shape and dtype the model needs
before any of its data is, so a truncated or tampered file, or a header claiming a huge
shape, costs a WeightsError naming the file, never a traceback or a huge allocation. No
pickle: an array of objects is refused by its dtype, unread.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from harness.results import atomic
from harness.workloads import layer_params  # the He-scaled init of the MLP workloads

NPY_HEADERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
# What reading a damaged zip or .npy member can raise (zlib: a corrupt deflate stream;
# NotImplementedError: an unknown compression; RuntimeError: an encrypted member).
UNREADABLE = (
    OSError,
    EOFError,
    ValueError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
)


class WeightsError(ValueError):
    """A weights file that does not fit the model: every mismatch, by name."""


def role(name: str, shape) -> str:
    """How an impl places a parameter: a vector named b... (after a GPT block's h<l>_) is a
    bias, anything else (matrices, kernels, tables, layernorm gains) a weight."""
    base = name.split("_", 1)[1] if re.match(r"h\d+_", name) else name
    return "bias" if len(shape) == 1 and base.startswith("b") else "weight"


def weight_shapes(layers) -> dict:
    """{w0_IO: (I, O), b0_O: (O,), w1_IO: ...}: the names and shapes of an MLP's weights."""
    shapes = {}
    for layer, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
        shapes[f"w{layer}_IO"] = (n_in, n_out)
        shapes[f"b{layer}_O"] = (n_out,)
    return shapes


def init_weights(layers, seed: int) -> dict:
    """Host float32 weights by name, the same for every impl given the same seed."""
    return {
        name: array
        for name, (array, _) in layer_params(np.random.default_rng(seed), list(layers)).items()
    }


def npz_path(path: Path | str) -> Path:
    """The file save_weights writes for `path`: .npz added where it has another suffix."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def check_save_path(path: Path | str) -> Path:
    """The file save_weights(path, ...) would write -> that path, if it can be written now.

    Otherwise atomic.WriteError (a ValueError) names it and the cause: a folder, a file in
    place of a folder, a folder where no file can be created. Leaves nothing behind, so it can
    run before training, which then never ends in weights that cannot be saved.
    """
    return atomic.check_writable(npz_path(path))


def save_weights(path: Path | str, weights: dict) -> Path:
    """Weights by name -> an npz file (no pickle), written atomically; returns its path."""
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    return atomic.write_atomic(npz_path(path), buffer.getvalue())


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, wanted: tuple | None) -> tuple:
    """(shape, dtype, array) of one .npy member; array is None (its data unread) unless the
    header says float32 of the `wanted` shape. Raises ValueError where the data is short."""
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in NPY_HEADERS:
            raise ValueError(f"{info.filename}: .npy format {version} is not 1.0 or 2.0")
        shape, fortran_order, dtype = NPY_HEADERS[version](member)
        if shape != wanted or dtype != np.float32:
            return shape, dtype, None
        nbytes = math.prod(shape) * dtype.itemsize
        data = member.read(nbytes)
        if len(data) != nbytes or member.read(1):  # reading to the end checks the CRC too
            raise ValueError(
                f"{info.filename}: its header says shape {shape} of float32 "
                f"({nbytes} bytes) but its data is "
                f"{'shorter' if len(data) < nbytes else 'longer'}"
            )
        array = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C")
        return shape, dtype, array.copy()  # writable and C-contiguous, as impls expect


def load_weights(path: Path | str, layers) -> dict:
    """An npz of weights, checked against the MLP `layers` (load_params)."""
    return load_params(path, weight_shapes(layers), f"the MLP {'-'.join(map(str, layers))}")


def load_params(path: Path | str, expected: dict, model: str) -> dict:
    """An npz of weights, checked against `expected` ({name: shape}) of `model` (its name in
    the error): names, shapes, dtype and finite values.

    Raises WeightsError naming the file: one that cannot be read as an npz of .npy arrays,
    or one that lists every missing or unexpected array and every shape or dtype that
    differs from what the model needs, and every array holding NaN or infinity.
    """
    path = Path(path)
    found = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                found[name] = _member(archive, info, expected.get(name))
    except UNREADABLE as error:
        raise WeightsError(f"{path}: cannot read it as an npz of weights: {error}") from error
    problems = [
        f"missing {name} (shape {shape})" for name, shape in expected.items() if name not in found
    ]
    problems += [
        f"unexpected {name} (shape {found[name][0]})" for name in found if name not in expected
    ]
    for name in expected.keys() & found.keys():
        shape, dtype, array = found[name]
        if shape != expected[name]:
            problems.append(f"{name} has shape {shape}, expected {expected[name]}")
        if dtype != np.float32:
            problems.append(f"{name} has dtype {dtype}, expected float32")
        if array is not None and not np.isfinite(array).all():
            problems.append(f"{name} holds NaN or infinity, expected finite values")
    if problems:
        raise WeightsError(f"{path} does not fit {model}: " + "; ".join(sorted(problems)))
    return {name: found[name][2] for name in expected}
