"""Datasets: scikit-learn digits, MNIST IDX files (raw and gzip) with every check, synthetic."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest

from harness.train import datasets
from harness.train.datasets import DatasetError, read_idx

IDX_CODES = {
    np.dtype("u1"): 0x08,
    np.dtype("i1"): 0x09,
    np.dtype("i2"): 0x0B,
    np.dtype("i4"): 0x0C,
    np.dtype("f4"): 0x0D,
    np.dtype("f8"): 0x0E,
}


def idx_bytes(values: np.ndarray) -> bytes:
    """An IDX file's bytes, written here independently of the reader under test."""
    header = bytes([0, 0, IDX_CODES[values.dtype], values.ndim])
    sizes = np.array(values.shape, dtype=">u4").tobytes()
    return header + sizes + values.astype(values.dtype.newbyteorder(">")).tobytes()


def write_idx(path, values, gz=False):
    data = idx_bytes(values)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_mnist(folder, n_train=6, n_test=4, rows=5, cols=3, gz=False, dotted=False):
    """A tiny MNIST-shaped IDX set; -> the images and labels written, by split."""
    rng = np.random.default_rng(1)
    written = {}
    for prefix, count in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (count, rows, cols), dtype=np.uint8)  # (count, rows, cols)
        labels_B = rng.integers(0, 10, count).astype(np.uint8)
        sep = "." if dotted else "-"
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images{sep}idx3-ubyte{suffix}", images, gz)
        write_idx(folder / f"{prefix}-labels{sep}idx1-ubyte{suffix}", labels_B, gz)
        written[prefix] = (images, labels_B)
    return written


# ---- IDX reader ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(IDX_CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_every_type(tmp_path, dtype, gz):
    values = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write_idx(tmp_path / "x.idx", values, gz)
    got = read_idx(path, 3)
    assert got.dtype == dtype and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, values)


def test_read_idx_rejects_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x01\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x07")
    with pytest.raises(DatasetError, match=r"bad\.idx: not an IDX file.*01 00 08 01"):
        read_idx(path, 1)


def test_read_idx_rejects_empty_file(tmp_path):
    path = tmp_path / "empty.idx"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match="empty.idx: not an IDX file.*empty file"):
        read_idx(path, 1)


def test_read_idx_rejects_unknown_type_code(tmp_path):
    path = tmp_path / "code.idx"
    path.write_bytes(b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01" + b"\x07")
    with pytest.raises(DatasetError, match=r"code\.idx: unknown IDX type code 0x07"):
        read_idx(path, 1)


def test_read_idx_rejects_wrong_number_of_dimensions(tmp_path):
    path = write_idx(tmp_path / "labels.idx", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match=r"labels\.idx: header says 1 dimensions, expected 3"):
        read_idx(path, 3)


def test_read_idx_rejects_truncated_data(tmp_path):
    path = tmp_path / "cut.idx"
    path.write_bytes(idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-3])
    with pytest.raises(
        DatasetError,
        match=r"cut\.idx: truncated: shape \(4, 2, 2\).*16 bytes.*"
        r"has 13",
    ):
        read_idx(path, 3)


def test_read_idx_rejects_truncated_header(tmp_path):
    path = tmp_path / "head.idx"
    path.write_bytes(idx_bytes(np.zeros((4, 2, 2), np.uint8))[:9])
    with pytest.raises(DatasetError, match=r"head\.idx: truncated header: 9 bytes.*need 16"):
        read_idx(path, 3)


def test_read_idx_rejects_trailing_bytes(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(idx_bytes(np.zeros(3, np.uint8)) + b"\x00\x00")
    with pytest.raises(DatasetError, match=r"long\.idx: has trailing bytes.*needs 3 .*has 5"):
        read_idx(path, 1)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    path = tmp_path / "cut.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 4), np.uint8)))[:-10])
    with pytest.raises(DatasetError, match=r"cut\.idx\.gz: cannot read it as an IDX file"):
        read_idx(path, 2)


def test_read_idx_names_a_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere\.idx: cannot read"):
        read_idx(tmp_path / "nowhere.idx", 1)


# ---- MNIST folders ------------------------------------------------------------------------


@pytest.mark.parametrize("gz,dotted", [(False, False), (True, False), (False, True)])
def test_mnist_reads_a_folder(tmp_path, gz, dotted):
    written = write_mnist(tmp_path, gz=gz, dotted=dotted)
    data = datasets.mnist(tmp_path)
    images, labels_B = written["train"]
    assert data.x_train_BI.shape == (6, 15) and data.x_test_BI.shape == (4, 15)
    assert data.x_train_BI.dtype == np.float32 and data.labels_train_B.dtype == np.int64
    np.testing.assert_allclose(data.x_train_BI, images.reshape(6, 15) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.labels_train_B, labels_B)
    np.testing.assert_array_equal(data.labels_test_B, written["t10k"][1])
    assert data.classes == 10 and data.features == 15


def test_mnist_rejects_count_mismatch(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(
        DatasetError,
        match="train-images-idx3-ubyte holds 6 images but .*train-labels-idx1-ubyte holds 5 labels",
    ):
        datasets.mnist(tmp_path)


def test_mnist_rejects_labels_out_of_range(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 2, 12, 3], np.uint8))
    with pytest.raises(
        DatasetError,
        match=r"t10k-labels-idx1-ubyte: labels must lie in 0\.\.9, "
        r"got 1\.\.12",
    ):
        datasets.mnist(tmp_path)


def test_mnist_rejects_pixels_that_are_not_bytes(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((6, 5, 3), np.float32))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte: pixels must be unsigned"):
        datasets.mnist(tmp_path)


def test_mnist_rejects_image_size_mismatch(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((4, 2, 2), np.uint8))
    with pytest.raises(DatasetError, match="has 15 pixels per image but .*t10k-images.* has 4"):
        datasets.mnist(tmp_path)


def test_mnist_names_the_missing_file(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(
        DatasetError,
        match="no t10k labels file: looked for "
        r"t10k-labels-idx1-ubyte\[\.gz\]",
    ):
        datasets.mnist(tmp_path)


def test_mnist_rejects_a_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="--mnist .*nope: not a folder"):
        datasets.mnist(tmp_path / "nope")


# ---- digits, synthetic, load --------------------------------------------------------------


def test_digits_is_real_normalised_and_split_the_same_way_every_time():
    pytest.importorskip("sklearn", reason="digits needs scikit-learn (the `data` extra)")
    data = datasets.digits()
    assert data.x_train_BI.shape == (1438, 64) and data.x_test_BI.shape == (359, 64)
    assert data.x_train_BI.dtype == np.float32
    assert 0.0 == data.x_train_BI.min() and data.x_train_BI.max() == 1.0
    assert set(np.unique(data.labels_test_B)) == set(range(10))
    again = datasets.digits()
    np.testing.assert_array_equal(again.labels_test_B, data.labels_test_B)
    np.testing.assert_array_equal(again.x_train_BI, data.x_train_BI)


def test_digits_without_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import now fails
    with pytest.raises(ImportError, match=r"nnladder\[data\].*`data` extra"):
        datasets.digits()


def test_synthetic_is_mnist_shaped_seeded_and_learnable():
    data = datasets.synthetic(n_train=2000, n_test=500, seed=3)
    assert data.x_train_BI.shape == (2000, 784) and data.x_test_BI.shape == (500, 784)
    assert data.x_train_BI.dtype == np.float32 and 0 <= data.x_train_BI.min()
    assert data.x_train_BI.max() < 1.0
    np.testing.assert_array_equal(datasets.synthetic(2000, 500, seed=3).x_test_BI, data.x_test_BI)
    # Learnable: the nearest class mean of the training set classifies the test set.
    means_CI = np.stack([data.x_train_BI[data.labels_train_B == c].mean(axis=0) for c in range(10)])
    dist_BC = ((data.x_test_BI[:, None, :] - means_CI[None]) ** 2).sum(axis=2)
    assert np.mean(dist_BC.argmin(axis=1) == data.labels_test_B) > 0.9


def test_load_by_name(tmp_path):
    write_mnist(tmp_path)
    assert datasets.load("mnist", tmp_path).name == "mnist"
    with pytest.raises(DatasetError, match="--dataset mnist needs --mnist DIR"):
        datasets.load("mnist")
    with pytest.raises(KeyError, match="unknown dataset 'cifar'.*digits, mnist, synthetic"):
        datasets.load("cifar")
