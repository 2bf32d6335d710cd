"""Weights files from anywhere (`train --load`): truncated, tampered, a header that claims a
huge shape, an array of pickled objects. Each is a WeightsError naming the file, found from
the headers before any data is read. And `--save` targets checked before training."""

from __future__ import annotations

import io
import os
import pathlib
import zipfile

import numpy as np
import pytest

from harness.results import atomic
from harness.train import loop as train

LAYERS = (5, 4, 3)


@pytest.fixture
def saved(tmp_path):
    weights = train.init_weights(LAYERS, seed=0)
    return train.save_weights(tmp_path / "w.npz", weights), weights


def npz_with(path, members: dict) -> pathlib.Path:
    """An npz whose members are the given raw .npy bytes, by array name."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, raw in members.items():
            archive.writestr(f"{name}.npy", raw)
    return path


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npy_header(shape, descr="<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def test_a_file_cut_anywhere_is_named(saved, tmp_path):
    path, _ = saved
    raw = path.read_bytes()
    for end in range(0, len(raw), 37):
        cut = tmp_path / "cut.npz"
        cut.write_bytes(raw[:end])
        with pytest.raises(train.WeightsError, match=rf"^{cut}: cannot read it as an npz"):
            train.load_weights(cut, LAYERS)


def test_any_flipped_byte_is_named_or_harmless(saved, tmp_path):
    path, weights = saved
    raw = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for offset in rng.choice(len(raw), 300, replace=False):
        tampered = raw.copy()
        tampered[offset] ^= 0xFF
        (tmp_path / "t.npz").write_bytes(tampered)
        try:  # a flip in a zip field nobody reads changes nothing
            loaded = train.load_weights(tmp_path / "t.npz", LAYERS)
        except train.WeightsError as error:
            assert str(error).startswith(f"{tmp_path / 't.npz'}")
            continue
        for name in weights:
            np.testing.assert_array_equal(loaded[name], weights[name])


def test_tampered_data_fails_its_checksum(saved):
    path, weights = saved
    raw = path.read_bytes()
    at = raw.index(weights["w0_IO"].tobytes()) + 5  # np.savez stores, so the data lies bare
    path.write_bytes(raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1 :])
    with pytest.raises(train.WeightsError, match="Bad CRC-32"):
        train.load_weights(path, LAYERS)


def test_a_header_claiming_a_huge_shape_is_refused_unread(saved, tmp_path):
    _, weights = saved
    members = {name: npy(w) for name, w in weights.items()}
    members["b0_O"] = npy_header((100_000_000_000,)) + b"\0" * 64  # 373 GiB of float32
    members["w1_IO"] = npy_header((1 << 40, 1 << 20))
    path = npz_with(tmp_path / "huge.npz", members)
    with pytest.raises(train.WeightsError) as caught:
        train.load_weights(path, LAYERS)
    assert str(caught.value) == (
        f"{path} does not fit the MLP 5-4-3: b0_O has shape (100000000000,), expected (4,); "
        "w1_IO has shape (1099511627776, 1048576), expected (4, 3)"
    )


def test_data_shorter_or_longer_than_its_header_is_named(saved, tmp_path):
    _, weights = saved
    for data, which in ((b"\0" * 8, "shorter"), (b"\0" * 20, "longer")):
        members = {name: npy(w) for name, w in weights.items()}
        members["b0_O"] = npy_header((4,)) + data
        path = npz_with(tmp_path / f"{which}.npz", members)
        with pytest.raises(
            train.WeightsError,
            match=rf"b0_O\.npy: its header says shape \(4,\) "
            rf"of float32 \(16 bytes\) but its data is "
            rf"{which}",
        ):
            train.load_weights(path, LAYERS)


class Payload:
    """Unpickling it would create a file: the proof that nothing was unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_pickled_objects_are_refused_unread(saved, tmp_path):
    _, weights = saved
    marker = tmp_path / "unpickled"
    objects = np.empty(4, dtype=object)
    objects[:] = [Payload(marker)] * 4
    members = {name: npy(w) for name, w in weights.items()}
    members["b0_O"] = npy(objects)
    path = npz_with(tmp_path / "pickle.npz", members)
    with pytest.raises(train.WeightsError, match="b0_O has dtype object, expected float32"):
        train.load_weights(path, LAYERS)
    assert not marker.exists()


def test_headers_that_are_not_npy_are_named(saved, tmp_path):
    _, weights = saved
    bad = [
        b"hello",  # no .npy magic
        b"\x93NUMPY\x09\x00" + b"\0" * 20,  # a format version that does not exist
        b"\x93NUMPY\x01\x00" + (20).to_bytes(2, "little") + b"{'descr': '<f4'}    ",  # no shape
        npy_header((4,))[:10] + b"\xff" * 30,
    ]  # a header that is not a dict
    for raw in bad:
        path = npz_with(
            tmp_path / "bad.npz", {**{n: npy(w) for n, w in weights.items()}, "b0_O": raw}
        )
        with pytest.raises(train.WeightsError, match=rf"^{path}: cannot read it as an npz"):
            train.load_weights(path, LAYERS)
        path.unlink()


def test_a_folder_is_named(tmp_path):
    with pytest.raises(train.WeightsError, match=rf"^{tmp_path}: cannot read it as an npz"):
        train.load_weights(tmp_path, LAYERS)


def test_loaded_weights_are_writable_c_arrays(saved):
    path, _ = saved
    loaded = train.load_weights(path, LAYERS)
    assert all(w.flags.writeable and w.flags.c_contiguous for w in loaded.values())


def test_save_path_is_checked_without_leaving_anything(tmp_path):
    (tmp_path / "notes").write_text("mine")
    (tmp_path / "taken.npz").mkdir()
    for path, why in (
        (tmp_path / "notes" / "w", "notes is a file, not a folder"),
        (tmp_path / "taken", "taken.npz: it is a folder"),
        ("/proc/nnladder-w.npz", "cannot create a file in /proc"),
    ):
        with pytest.raises(atomic.WriteError, match=why) as caught:
            train.check_save_path(path)
        assert isinstance(caught.value, ValueError)  # the CLI prints it as one line
    assert train.check_save_path(tmp_path / "new" / "w") == tmp_path / "new" / "w.npz"
    assert train.check_save_path(tmp_path / "w.npz") == tmp_path / "w.npz"
    assert sorted(os.listdir(tmp_path)) == ["notes", "taken.npz"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only folders")
def test_save_path_in_a_read_only_folder_is_refused(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(atomic.WriteError, match="Permission denied"):
        train.check_save_path(tmp_path / "ro" / "w.npz")
