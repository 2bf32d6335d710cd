"""Stored results: round trips, never overwritten, readable after a real kill, files 0644, one
clear error where they cannot be written, no pickle."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.results import atomic, store


def row(i, **extra):
    return {
        "run_id": "r",
        "impl": "numpy",
        "workload": "matmul",
        "size": f"M={i}",
        "phase": "fwd",
        "status": "ok",
        "t_median_s": 0.001 * i,
        "samples_s": [0.001 * i] * 3,
        **extra,
    }


def test_rows_round_trip_through_load(tmp_path):
    writer = store.RunWriter("run-a", "box", tmp_path)
    for i in range(3):
        writer.append(row(i))
    table = store.load(tmp_path)
    assert list(table["size"]) == ["M=0", "M=1", "M=2"]
    assert table["samples_s"][2] == [0.002] * 3
    assert list(table.columns[:2]) == ["run_id", "impl"]  # schema order first


def test_nan_is_stored_as_null_and_read_back_as_nan(tmp_path):
    writer = store.RunWriter("run-a", "box", tmp_path)
    writer.append(row(1, rel_err=float("nan")))
    assert json.loads(writer.path.read_text())["rel_err"] is None
    assert math.isnan(store.load(tmp_path)["rel_err"][0])


def test_a_run_never_overwrites_another(tmp_path):
    store.RunWriter("run-a", "box", tmp_path).append(row(1))
    with pytest.raises(FileExistsError):
        store.RunWriter("run-a", "box", tmp_path)
    assert len(store.load(tmp_path)) == 1


# A writer in a process of its own, appending rows until killed; it prints each row's index
# once that row is stored. With KILL_AT set, os.replace kills the process on that append:
# after the temporary file is written and fsynced, before the rename.
WRITER = """
import os, signal, sys
from harness.results import store
root, kill_at = sys.argv[1], int(sys.argv[2])
real_replace, calls = os.replace, []
def replace(src, dst):
    calls.append(src)
    if len(calls) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
os.replace = replace
writer = store.RunWriter("run-b", "box", root)
for i in range(1_000_000):
    writer.append({"run_id": "run-b", "impl": "numpy", "workload": "matmul",
                   "size": f"M={i}", "phase": "fwd", "status": "ok", "t_median_s": 0.001,
                   "samples_s": [0.001] * 50})
    print(i, flush=True)
"""


ROOT = Path(__file__).resolve().parent.parent  # the project whose harness the writer runs


def start_writer(root, kill_at=0):
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(kill_at)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


def stored_sizes(root):
    table = store.load(root)
    return list(table[table["run_id"] == "run-b"]["size"])


def test_a_run_killed_midway_leaves_its_finished_cells_and_earlier_runs(tmp_path):
    store.RunWriter("run-a", "box", tmp_path).append(row(1))
    earlier = (tmp_path / "box" / "run-a.jsonl").read_bytes()
    writer = start_writer(tmp_path)
    done = [int(writer.stdout.readline()) for _ in range(40)]  # 40 rows stored, still going
    writer.send_signal(signal.SIGKILL)  # wherever it is: writing, fsyncing, renaming
    writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL and done == list(range(40))
    sizes = stored_sizes(tmp_path)
    assert len(sizes) >= 40  # every row it said it stored, and perhaps the next ones
    assert sizes == [f"M={i}" for i in range(len(sizes))]  # in order, each once
    assert (tmp_path / "box" / "run-a.jsonl").read_bytes() == earlier


def test_a_kill_between_fsync_and_rename_loads_nothing_twice(tmp_path):
    writer = start_writer(tmp_path, kill_at=5)
    out, _ = writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL and out.split() == ["0", "1", "2", "3"]
    assert stored_sizes(tmp_path) == ["M=0", "M=1", "M=2", "M=3"]
    left = [p.name for p in (tmp_path / "box").iterdir() if p.name != "run-b.jsonl"]
    assert len(left) == 1 and left[0].startswith(".run-b.jsonl.") and left[0].endswith(".tmp")
    assert len((tmp_path / "box" / left[0]).read_text().splitlines()) == 5  # fsynced, unnamed


def test_dot_files_are_never_results(tmp_path):
    store.RunWriter("run-a", "box", tmp_path).append(row(1))
    for hidden in ("box/.run-a.jsonl", ".hidden/run-c.jsonl"):
        (tmp_path / hidden).parent.mkdir(exist_ok=True)
        (tmp_path / hidden).write_text(json.dumps(row(2)) + "\n")
    assert list(store.load(tmp_path)["size"]) == ["M=1"]


def test_result_files_are_readable_by_others_as_a_plain_open_makes_them(tmp_path):
    old = os.umask(0o022)
    try:
        writer = store.RunWriter("run-a", "box", tmp_path)
        writer.append(row(1))
        writer.append(row(2))
    finally:
        os.umask(old)
    assert stat.S_IMODE(writer.path.stat().st_mode) == 0o644


@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_a_full_disk_is_one_clear_error_and_the_stored_rows_stay(tmp_path, monkeypatch, failing):
    writer = store.RunWriter("run-a", "box", tmp_path)
    writer.append(row(1))
    writer.append(row(2))
    before = writer.path.read_bytes()

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(os, failing, full)
        with pytest.raises(atomic.WriteError) as caught:
            writer.append(row(3))
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, OSError)  # the CLI: one line
    assert error.errno == errno.ENOSPC
    assert str(error) == f"cannot write {writer.path}: No space left on device"
    assert writer.path.read_bytes() == before and len(writer.rows) == 2
    assert [p.name for p in (tmp_path / "box").iterdir()] == ["run-a.jsonl"]  # no temp left
    writer.append(row(3))  # room again: the run goes on where it was
    assert list(store.load(tmp_path)["size"]) == ["M=1", "M=2", "M=3"]


def test_results_that_is_a_file_is_one_clear_error_and_the_file_stays(tmp_path):
    results = tmp_path / "results"
    results.write_text("my notes\n")
    with pytest.raises(
        atomic.WriteError,
        match=rf"cannot make the folder {results}/box: "
        rf"{results} is a file, not a folder",
    ):
        store.RunWriter("run-a", "box", results)
    assert results.read_text() == "my notes\n"


def test_results_where_no_file_can_be_made_is_one_clear_error():
    # /proc refuses new files even to root, who may write a read-only folder.
    with pytest.raises(atomic.WriteError, match="cannot make the folder /proc/nnladder/box: "):
        store.RunWriter("run-a", "box", Path("/proc/nnladder"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only folders")
def test_a_read_only_results_folder_is_one_clear_error(tmp_path):
    (tmp_path / "box").mkdir()
    (tmp_path / "box").chmod(0o555)
    try:
        with pytest.raises(
            atomic.WriteError,
            match=rf"cannot create {tmp_path}/box/run-a"
            r"\.jsonl: Permission denied",
        ):
            store.RunWriter("run-a", "box", tmp_path)
    finally:
        (tmp_path / "box").chmod(0o755)


def test_an_unreadable_file_is_skipped_with_a_warning(tmp_path):
    store.RunWriter("run-a", "box", tmp_path).append(row(1))
    (tmp_path / "box" / "broken.jsonl").write_text("{not json\n")
    with pytest.warns(UserWarning, match="broken.jsonl"):
        table = store.load(tmp_path)
    assert len(table) == 1


def test_no_results_gives_an_empty_table_with_the_schema(tmp_path):
    table = store.load(tmp_path)
    assert table.empty and list(table.columns) == store.COLUMNS


def test_run_ids_are_unique_and_name_the_commit():
    ids = {store.new_run_id("abcdef123456") for _ in range(20)}
    assert len(ids) == 20 and all("-abcdef1-" in i for i in ids)
