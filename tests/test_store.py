"""Stored results: round trips, never overwritten, readable after a kill, no pickle."""

from __future__ import annotations

import json
import math

import pytest

from harness.results import store


def row(i, **extra):
    return {"run_id": "r", "impl": "numpy", "workload": "matmul", "size": f"M={i}",
            "phase": "fwd", "status": "ok", "t_median_s": 0.001 * i,
            "samples_s": [0.001 * i] * 3, **extra}


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


def test_a_run_killed_midway_leaves_its_finished_cells_and_earlier_runs(tmp_path):
    store.RunWriter("run-a", "box", tmp_path).append(row(1))
    killed = store.RunWriter("run-b", "box", tmp_path)
    killed.append(row(2))
    # A kill between cells leaves the file as of the last append; no temp file survives.
    assert [p.name for p in (tmp_path / "box").iterdir()] in (
        ["run-a.jsonl", "run-b.jsonl"], ["run-b.jsonl", "run-a.jsonl"])
    assert sorted(store.load(tmp_path)["run_id"].value_counts()) == [2]


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
