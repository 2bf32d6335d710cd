"""Datasets for training: scikit-learn's digits, MNIST from IDX files, a synthetic MNIST shape.

Every loader returns a `Dataset` of host arrays: float32 pixels in [0, 1] as rows x_BI (the
whole set is one batch of samples) and int64 labels_B. Digits is real data bundled with
scikit-learn (the `data` extra), so it needs no download; MNIST is read from IDX files the
user points to; the synthetic set has MNIST's shape and learnable classes, for timing when
neither is present.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The split of digits is fixed (not the training seed) so runs with different seeds are
# evaluated on the same test set.
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2
MNIST_CLASSES = 10
SYNTHETIC_KEEP = 0.2  # share of its class prototype's pixels a synthetic sample lights
SYNTHETIC_NOISE = 0.1  # share of all pixels lit at random

# IDX header: 0, 0, a type code, the number of dimensions; then one big-endian uint32 per
# dimension; then the values, big-endian, row-major.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train_BI: np.ndarray  # float32 in [0, 1]
    labels_train_B: np.ndarray  # int64 in [0, classes)
    x_test_BI: np.ndarray
    labels_test_B: np.ndarray
    classes: int

    @property
    def features(self) -> int:
        return self.x_train_BI.shape[1]

    def describe(self) -> str:
        return (
            f"{self.name}: {len(self.labels_train_B)} train, {len(self.labels_test_B)} "
            f"test, {self.features} features, {self.classes} classes"
        )


class DatasetError(ValueError):
    """A data file that cannot be used, said with the file, what was found and what was due."""


# ---- digits (scikit-learn) ----------------------------------------------------------------


def digits() -> Dataset:
    """scikit-learn's 1,797 handwritten 8x8 digits, 16 grey levels, split 80/20 (fixed)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "the digits dataset needs scikit-learn: pip install 'nnladder[data]' "
            f"(the `data` extra), or choose --dataset mnist or synthetic ({error})"
        ) from error
    bunch = load_digits()
    x_BI = (bunch.data / 16.0).astype(np.float32)  # grey levels 0..16 -> [0, 1]
    labels_B = bunch.target.astype(np.int64)
    order_B = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(labels_B))
    n_test = int(round(len(labels_B) * DIGITS_TEST_FRACTION))
    test_B, train_B = order_B[:n_test], order_B[n_test:]
    return Dataset(
        "digits", x_BI[train_B], labels_B[train_B], x_BI[test_B], labels_B[test_B], classes=10
    )


# ---- MNIST from IDX files ----------------------------------------------------------------


def read_idx(path: Path | str, ndim: int) -> np.ndarray:
    """One IDX file (raw or gzip, told by its first bytes) -> array in native byte order.

    Checks the magic number, the type code, the number of dimensions (`ndim` expected) and
    that the file holds exactly as many values as its header says (a truncated download
    fails here, naming the file, rather than training on garbage).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise DatasetError(
            f"{path}: cannot read it as an IDX file (raw or gzip): {error}"
        ) from error
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise DatasetError(
            f"{path}: not an IDX file: the magic number must start with two zero "
            f"bytes, got {raw[:4].hex(' ') or 'an empty file'}"
        )
    code, got_ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise DatasetError(
            f"{path}: unknown IDX type code 0x{code:02x}: expected one of "
            f"{', '.join(f'0x{c:02x}' for c in IDX_TYPES)}"
        )
    if got_ndim != ndim:
        raise DatasetError(
            f"{path}: header says {got_ndim} dimensions, expected {ndim} "
            f"(magic number {raw[:4].hex(' ')})"
        )
    header_bytes = 4 + 4 * ndim
    if len(raw) < header_bytes:
        raise DatasetError(
            f"{path}: truncated header: {len(raw)} bytes, the {ndim} sizes need {header_bytes}"
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    got = len(raw) - header_bytes
    if got != expected:
        kind = "truncated" if got < expected else "has trailing bytes"
        raise DatasetError(
            f"{path}: {kind}: shape {shape} of {dtype.name} needs {expected} "
            f"bytes of data after the header, the file has {got}"
        )
    values = np.frombuffer(raw, dtype, offset=header_bytes).reshape(shape)  # shape from header
    return values.astype(dtype.newbyteorder("="))


def _find(folder: Path, prefix: str, kind: str, ndim: int) -> Path:
    """The IDX file of one split and kind, under the names MNIST is distributed with."""
    names = [f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"]
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DatasetError(
        f"{folder}: no {prefix} {kind} file: looked for {', '.join(n + '[.gz]' for n in names)}"
    )


def _split(folder: Path, prefix: str) -> tuple:
    images_path = _find(folder, prefix, "images", 3)
    labels_path = _find(folder, prefix, "labels", 1)
    images = read_idx(images_path, 3)  # (count, pixel rows, pixel columns)
    labels_B = read_idx(labels_path, 1)
    if len(images) != len(labels_B):
        raise DatasetError(
            f"{images_path} holds {len(images)} images but {labels_path} "
            f"holds {len(labels_B)} labels: they must be equal"
        )
    if images.dtype != np.uint8:
        raise DatasetError(
            f"{images_path}: pixels must be unsigned bytes (type 0x08), got {images.dtype}"
        )
    if labels_B.size and (labels_B.min() < 0 or labels_B.max() >= MNIST_CLASSES):
        raise DatasetError(
            f"{labels_path}: labels must lie in 0..{MNIST_CLASSES - 1}, got "
            f"{labels_B.min()}..{labels_B.max()}"
        )
    x_BI = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return x_BI, labels_B.astype(np.int64), images_path


def mnist(folder: Path | str) -> Dataset:
    """MNIST (or any IDX set shaped like it) from `folder`: train-* and t10k-* files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(
            f"--mnist {folder}: not a folder (expected the folder holding "
            f"train-images-idx3-ubyte[.gz] and its three siblings)"
        )
    x_train_BI, labels_train_B, train_path = _split(folder, "train")
    x_test_BI, labels_test_B, test_path = _split(folder, "t10k")
    if x_train_BI.shape[1] != x_test_BI.shape[1]:
        raise DatasetError(
            f"{train_path} has {x_train_BI.shape[1]} pixels per image but "
            f"{test_path} has {x_test_BI.shape[1]}: they must be equal"
        )
    return Dataset(
        "mnist", x_train_BI, labels_train_B, x_test_BI, labels_test_B, classes=MNIST_CLASSES
    )


# ---- synthetic, MNIST-shaped ------------------------------------------------------------


def synthetic(
    n_train: int = 60_000,
    n_test: int = 10_000,
    features: int = 784,
    classes: int = MNIST_CLASSES,
    seed: int = 0,
) -> Dataset:
    """MNIST's shape and sparsity with learnable classes: strokes drawn from a class prototype.

    Each class has a random prototype (~20% of the pixels); a sample lights a random
    SYNTHETIC_KEEP of its prototype's pixels plus SYNTHETIC_NOISE of all pixels, at random
    intensities, on a black background like MNIST's. Not a benchmark of learning, but its
    loss and accuracy move like a real set's (an epoch of 60,000 takes an MLP past 95%), so
    the timing runs of `train` also exercise time-to-accuracy.
    """
    rng = np.random.default_rng(seed)
    prototypes_CI = rng.random((classes, features), dtype=np.float32) < 0.2

    def draw(count):
        labels_B = rng.integers(0, classes, count)
        shape = (count, features)
        lit_BI = prototypes_CI[labels_B] & (rng.random(shape, np.float32) < SYNTHETIC_KEEP)
        lit_BI |= rng.random(shape, np.float32) < SYNTHETIC_NOISE
        x_BI = rng.random(shape, np.float32)
        x_BI *= lit_BI
        return x_BI, labels_B.astype(np.int64)

    x_train_BI, labels_train_B = draw(n_train)
    x_test_BI, labels_test_B = draw(n_test)
    return Dataset("synthetic", x_train_BI, labels_train_B, x_test_BI, labels_test_B, classes)


DATASETS = ("digits", "mnist", "synthetic")


def load(name: str, mnist_dir: Path | str | None = None) -> Dataset:
    """A dataset by name, as the `train` command's --dataset and --mnist give it."""
    if name == "digits":
        return digits()
    if name == "mnist":
        if mnist_dir is None:
            raise DatasetError(
                "--dataset mnist needs --mnist DIR, the folder of the IDX files "
                "(or use --dataset synthetic for an MNIST-shaped timing set)"
            )
        return mnist(mnist_dir)
    if name == "synthetic":
        return synthetic()
    raise KeyError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}")
