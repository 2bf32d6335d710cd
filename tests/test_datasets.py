"""Datasets: scikit-learn digits, MNIST IDX files (raw and gzip) with every check, synthetic;
the GPT's character corpus, its vocabulary, split and seeded batches."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest

from harness.train import corpus, datasets
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


# ---- the character corpus ----------------------------------------------------------------


def test_the_shipped_corpus_is_alice_with_its_characters_as_vocabulary():
    text = corpus.load()
    raw = corpus.CORPUS.read_text(encoding="utf-8")
    assert raw.startswith("\n\n\n\n                ALICE'S ADVENTURES IN WONDERLAND")
    assert "\r" not in raw and len(raw) < 300_000  # LF line ends; a few hundred KB at most
    assert text.chars == "".join(sorted(set(raw))) and text.vocab == 72
    assert len(text.train_R) == int(len(raw) * corpus.TRAIN_FRACTION)  # contiguous 90/10
    assert text.decode(np.concatenate([text.train_R, text.val_R])) == raw
    at = raw.index("Alice was beginning")
    np.testing.assert_array_equal(text.encode("Alice"), text.train_R[at : at + 5])
    with pytest.raises(corpus.CorpusError, match=r"characters \['~'\] are not in the vocabulary"):
        text.encode("a~b")


def test_a_corpus_that_cannot_be_read_or_is_too_short_is_named(tmp_path):
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(corpus.CorpusError, match=rf"^{binary}: cannot read it as UTF-8 text"):
        corpus.load(binary)
    short = tmp_path / "short.txt"
    short.write_text("abcdefghijklmnopqrst")  # 20 characters: a validation split of 2
    with pytest.raises(corpus.CorpusError, match=r"a split of 2, too short for one window of 8"):
        corpus.load(short, context=8)
    assert corpus.load(short, context=1).vocab == 20


def test_batches_are_seeded_windows_whose_labels_are_the_next_characters():
    ids_R = np.arange(1000, dtype=np.int64) % 97
    tokens_R, labels_R, positions_R = corpus.batch(ids_R, 4, 16, seed=3, step=7)
    assert tokens_R.shape == labels_R.shape == positions_R.shape == (64,)
    tokens_BT, labels_BT = tokens_R.reshape(4, 16), labels_R.reshape(4, 16)
    np.testing.assert_array_equal(labels_BT[:, :-1], tokens_BT[:, 1:])  # each one's successor
    np.testing.assert_array_equal(labels_BT[:, -1], (tokens_BT[:, -1] + 1) % 97)
    np.testing.assert_array_equal(positions_R, np.tile(np.arange(16), 4))
    again = corpus.batch(ids_R, 4, 16, seed=3, step=7)
    np.testing.assert_array_equal(again[0], tokens_R)
    assert not np.array_equal(corpus.batch(ids_R, 4, 16, seed=3, step=8)[0], tokens_R)
    assert not np.array_equal(corpus.batch(ids_R, 4, 16, seed=4, step=7)[0], tokens_R)
    # every window fits, the last one included
    ends = [corpus.batch(ids_R[:20], 8, 16, 0, s)[1][-1] for s in range(50)]
    assert max(ends) == ids_R[19]


def test_validation_batches_are_fixed_and_spread_over_the_text():
    ids_R = np.arange(500, dtype=np.int64)
    batches = corpus.fixed_batches(ids_R, 2, 10, count=3)
    assert len(batches) == 3 and all(len(tokens) == 20 for tokens, _, _ in batches)
    starts = [int(tokens[0]) for b in batches for tokens in (b[0][:10], b[0][10:])]
    assert starts[0] == 0 and starts[-1] == 500 - 10 - 1 and starts == sorted(starts)
    np.testing.assert_array_equal(corpus.fixed_batches(ids_R, 2, 10, 3)[1][1], batches[1][1])
