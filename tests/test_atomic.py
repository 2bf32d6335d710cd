"""Atomic writes: whole or not at all, 0644 less the umask, a unique temporary file that no
glob of results matches, removed on any failure; and every file the harness keeps goes
through them (run store, ceilings, report, saved weights)."""

from __future__ import annotations

import os
import stat

import pytest

from harness.report import summary as report
from harness.results import atomic, ceilings, machine, store
from harness.train import loop as train
from tests.test_report import CEILINGS


@pytest.fixture
def umask():
    """Set the process's umask for one test, then restore it."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_write_replaces_the_file_whole_and_makes_its_folder(tmp_path):
    path = tmp_path / "deep" / "er" / "f.txt"
    assert atomic.write_atomic(path, "old") == path
    atomic.write_atomic(path, b"new \xff")
    assert path.read_bytes() == b"new \xff"
    assert os.listdir(path.parent) == ["f.txt"]


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o644)])
def test_files_get_0644_less_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert mode(atomic.write_atomic(tmp_path / "f", "x")) == expected
    assert mode(atomic.reserve(tmp_path / "g")) == expected


def test_every_file_the_harness_keeps_is_written_atomically_and_0644(tmp_path, umask, monkeypatch):
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(
        os, "replace", lambda src, dst: renamed.append(src) or real_replace(src, dst)
    )
    writer = store.RunWriter("run-a", "box", tmp_path / "results")
    writer.append({"impl": "numpy"})
    kept = [
        writer.path,
        ceilings.write(CEILINGS, tmp_path / "results"),
        report.render(store.load(tmp_path / "none"), tmp_path / "out" / "summary.html"),
        train.save_weights(tmp_path / "w", train.init_weights((3, 2), 0)),
    ]
    assert [mode(p) for p in kept] == [0o644] * 4
    assert [os.path.dirname(src) for src in renamed] == [str(p.parent) for p in kept]
    assert all(
        os.path.basename(src).startswith(".") and str(src).endswith(".tmp") for src in renamed
    )
    assert sorted(os.listdir(tmp_path / "results" / machine.machine_name())) == ["ceilings.json"]


def test_temporary_names_are_unique(tmp_path, monkeypatch):
    """Two reports rendered at once (run's end, a `report` by hand) must not share one."""
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(
        os, "replace", lambda src, dst: renamed.append(src) or real_replace(src, dst)
    )
    for _ in range(2):
        report.render(store.load(tmp_path / "none"), tmp_path / "summary.html")
    assert len(set(renamed)) == 2


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch, failing):
    path = atomic.write_atomic(tmp_path / "f.json", "old")

    def broken(*args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(atomic.WriteError, match=f"cannot write {path}: Input/output error"):
        atomic.write_atomic(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["f.json"]


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_atomic(tmp_path / "f", "x")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_a_short_os_write_is_continued(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:3]))
    atomic.write_atomic(tmp_path / "f", "0123456789")
    monkeypatch.undo()
    assert (tmp_path / "f").read_text() == "0123456789"


def test_a_folder_or_a_device_is_never_replaced(tmp_path):
    with pytest.raises(atomic.WriteError, match="it is a folder"):
        atomic.write_atomic(tmp_path, "x")
    with pytest.raises(atomic.WriteError, match="/dev/null: it is not a regular file"):
        atomic.write_atomic("/dev/null", "x")
    assert os.listdir(tmp_path) == [] and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_link_is_written_through(tmp_path):
    (tmp_path / "real").mkdir()
    target = atomic.write_atomic(tmp_path / "real" / "summary.html", "old")
    (tmp_path / "link.html").symlink_to(target)
    atomic.write_atomic(tmp_path / "link.html", "new")
    assert (tmp_path / "link.html").is_symlink() and target.read_text() == "new"


def test_a_file_in_place_of_a_folder_is_named(tmp_path):
    (tmp_path / "notes").write_text("mine")
    with pytest.raises(
        atomic.WriteError,
        match=f"cannot write {tmp_path}/notes/a/f: {tmp_path}/notes is a file, not a folder",
    ):
        atomic.write_atomic(tmp_path / "notes" / "a" / "f", "x")
    assert (tmp_path / "notes").read_text() == "mine"


def test_reserve_never_replaces(tmp_path):
    atomic.write_atomic(tmp_path / "run.jsonl", "rows")
    with pytest.raises(FileExistsError):
        atomic.reserve(tmp_path / "run.jsonl")
    assert (tmp_path / "run.jsonl").read_text() == "rows"


def test_check_writable_says_why_and_leaves_nothing(tmp_path):
    (tmp_path / "notes").write_text("mine")
    (tmp_path / "folder.npz").mkdir()
    cases = {
        tmp_path / "notes" / "w.npz": "notes is a file, not a folder",
        tmp_path / "folder.npz": "it is a folder",
        "/proc/w.npz": "cannot create a file in /proc",  # refused even to root
        "/dev/null": "it is not a regular file",
    }
    for path, why in cases.items():
        with pytest.raises(atomic.WriteError, match=why):
            atomic.check_writable(path)
    for fine in (tmp_path / "w.npz", tmp_path / "new" / "deeper" / "w.npz", tmp_path / "notes"):
        assert atomic.check_writable(fine) == fine
    assert sorted(os.listdir(tmp_path)) == ["folder.npz", "notes"]
