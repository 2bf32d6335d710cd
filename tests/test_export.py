"""export and import: a stored run as pytest-benchmark JSON (read back by pytest-benchmark's own
loader and `compare`) and as Bencher's metric format; a pytest-benchmark file stored as a run,
and bad files refused before anything is stored."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from jsonschema import Draft7Validator
from pytest_benchmark.logger import Logger
from pytest_benchmark.storage.file import FileStorage

from harness import cli, compare
from harness.results import ingest, machine, schema, store
from tests.test_compare import rows
from tests.test_schema import quick_run

# Bencher's own schema of its metric format (https://bencher.dev/docs/reference/bencher-metric-format)
BMF = {
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "patternProperties": {
        ".+": {
            "type": "object",
            "patternProperties": {
                ".+": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "number"},
                        "lower_value": {"type": "number"},
                        "upper_value": {"type": "number"},
                    },
                    "required": ["value"],
                }
            },
        }
    },
}
TINY = """
import pytest

@pytest.mark.parametrize("n", [10, 100])
def test_sum(benchmark, n):
    benchmark(sum, range(n))
"""


@pytest.fixture
def stored(tmp_path):
    """Two runs of one commit under tmp_path/results: ok, wrong and counted cells."""
    rng = np.random.default_rng(2)
    root = tmp_path / "results"
    for run_id in ("20261201T000000Z-aaaaaaa-0001", "20261201T000001Z-aaaaaaa-0002"):
        writer = store.RunWriter(run_id, machine.machine_name(), root)
        cells = {
            ("c-blocked", "B=4 layers=2-4-2 opt=sgd"): list(rng.lognormal(-9, 0.02, 20)),
            ("numpy", "M=16 K=16 N=16"): list(rng.lognormal(-8, 0.02, 20)),
        }
        for row in rows(run_id, "a" * 40, cells):
            writer.append({**row, "loops": 40, "flops": 8192, "M": 16})
        writer.append({**rows(run_id, "a" * 40, {("c", "M=17"): []}, "wrong")[0]})
        counted = rows(run_id, "a" * 40, {("c", "M=16"): []})[0]
        writer.append({**counted, "measure": "instructions", "instructions": 2.5e4})
    return root


def export(root, *args) -> int:
    return cli.main(["export", *args, "--results", str(root)])


def test_pytest_benchmark_reads_the_export_with_its_own_loader_and_compare(stored, tmp_path):
    out, first = tmp_path / "run.json", tmp_path / "first.json"
    assert export(stored, "latest", "--format", "pytest-benchmark", "-o", str(out)) == 0
    run_id = "20261201T000000Z-aaaaaaa-0001"
    assert export(stored, run_id, "--format", "pytest-benchmark", "-o", str(first)) == 0
    logger = Logger(Logger.QUIET)
    (loaded,) = FileStorage(tmp_path, logger=logger).load(str(out))
    assert loaded[1]["commit_info"]["id"] == "a" * 40
    benchmarks = list(FileStorage(tmp_path, logger=logger).load_benchmarks(str(out)))
    names = sorted(b["name"] for b in benchmarks)
    assert names == [
        "test_cell[c-blocked-matmul-B=4,layers=2-4-2,opt=sgd-fwd]",
        "test_cell[numpy-matmul-M=16,K=16,N=16-fwd]",
    ]  # the wrong cell and the counted one have no rounds to give
    table = store.load(stored)
    newest = table[(table["run_id"].str.endswith("0002")) & (table["impl"] == "numpy")].iloc[0]
    numpy = next(b for b in benchmarks if "numpy" in b["name"])
    assert numpy["median"] == pytest.approx(np.median(newest["samples_s"]))
    assert numpy["data"] == list(newest["samples_s"]) and numpy["iterations"] == 40
    assert numpy["rounds"] == 20 and numpy["extra_info"]["flops"] == 8192
    done = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", str(first), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Failed to load" not in done.stdout + done.stderr
    assert done.stdout.count("test_cell[numpy-matmul-M=16,K=16,N=16-fwd]") == 2  # both runs


def test_bencher_metric_format_follows_bencher_schema(stored, capsys):
    assert export(stored, "aaaaaaa", "--format", "bencher") == 0
    out, err = capsys.readouterr()
    assert "has 2 runs; exporting the newest, 20261201T000001Z-aaaaaaa-0002" in err
    document = json.loads(out)
    Draft7Validator(BMF).validate(document)
    latency = document["numpy-matmul-M=16,K=16,N=16-fwd"]["latency"]
    assert latency["lower_value"] < latency["value"] < latency["upper_value"]
    throughput = document["numpy-matmul-M=16,K=16,N=16-fwd"]["throughput"]
    assert throughput["value"] == pytest.approx(1e9 / latency["value"])
    assert document["c-matmul-M=16-fwd"] == {"instructions": {"value": 2.5e4}}
    assert "c-matmul-M=17-fwd" not in document  # wrong: nothing measured


def test_a_run_exported_and_imported_compares_the_same(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    quick_run(results, monkeypatch)
    (path,) = results.glob("*/*.jsonl")
    out = tmp_path / "run.json"
    assert export(results, str(path), "--format", "pytest-benchmark", "-o", str(out)) == 0
    assert cli.main(["import", str(out), "--results", str(results)]) == 0
    table = store.load(results)
    imported = table[table["run_id"] != path.stem]
    timed = table[(table["run_id"] == path.stem) & (table["status"] == "ok")]
    assert f"imported {len(timed)} benchmarks" in capsys.readouterr().out
    assert set(imported["imported_from"]) == {str(out)} and set(imported["status"]) == {"ok"}
    assert list(imported["M"].dropna()) == list(timed["M"].dropna())
    result = compare.compare(table[table["run_id"] == path.stem], imported)
    compared = result[result["ratio"].notna()]
    assert len(compared) == len(timed) and (compared["ratio"] == 1).all()
    assert set(compared["verdict"]) == {"same"}


def test_an_imported_run_that_knows_no_machine_exports_and_imports_again(tmp_path):
    """A file with no machine_info or datetime, imported, then exported: what the run does
    not know is left out of the export, not written as null its own import would refuse."""
    good = {"min": 1e-3, "median": 1e-3, "iqr": 0, "mean": 1e-3, "stddev": 0, "rounds": 1}
    good["data"] = [1e-3]  # its rounds: what an export is made of
    (tmp_path / "bare.json").write_text(json.dumps({"benchmarks": [{"name": "t", "stats": good}]}))
    results, again = tmp_path / "r", tmp_path / "again.json"
    assert cli.main(["import", str(tmp_path / "bare.json"), "--results", str(results)]) == 0
    (run,) = results.glob("*/*.jsonl")
    assert export(results, str(run), "--format", "pytest-benchmark", "-o", str(again)) == 0
    document = json.loads(again.read_text())
    assert "datetime" not in document and None not in document["machine_info"].values()
    assert cli.main(["import", str(again), "--results", str(results)]) == 0


def test_a_file_pytest_benchmark_wrote_is_stored_as_a_run(tmp_path, capsys):
    (tmp_path / "test_tiny.py").write_text(TINY)
    args = ["--benchmark-json=out.json", "--benchmark-min-rounds=3", "--benchmark-max-time=0.01"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_tiny.py", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert cli.main(["import", str(tmp_path / "out.json"), "--results", str(tmp_path / "r")]) == 0
    table = store.load(tmp_path / "r")
    assert sorted(table["workload"]) == [
        "test_tiny.py::test_sum[100]",
        "test_tiny.py::test_sum[10]",
    ]
    assert set(table["impl"]) == {ingest.FOREIGN} and (table["rounds"] >= 3).all()
    assert all(len(s) == r for s, r in zip(table["samples_s"], table["rounds"], strict=True))
    for row in table.to_dict("records"):
        assert schema.problems({k: v for k, v in row.items() if v == v}) == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{not json", "not a JSON file"),
        ("[1, 2]", "the document: [1, 2] is not of type 'object'"),
        ('{"machine_info": {}}', "the document: 'benchmarks' is a required property"),
        ('{"benchmarks": [{"name": "t", "stats": {"median": "abc"}}]}', "benchmarks[0].stats"),
        (
            '{"benchmarks": [{"name": "t", "stats": {"min": 1, "median": "abc", "iqr": 0, '
            '"mean": 1, "stddev": 0, "rounds": 1}}]}',
            "benchmarks[0].stats.median: 'abc' is not of type 'number'",
        ),
        (
            '{"benchmarks": [{"name": "t", "extra_info": {"flops": "many"}, "stats": {"min": 1, '
            '"median": 1, "iqr": 0, "mean": 1, "stddev": 0, "rounds": 1}}]}',
            "benchmarks[0]: flops: 'many' is not of type",
        ),
        (  # NaN and Infinity: Python reads them, JSON has them not, the bounds miss them
            '{"benchmarks": [{"name": "t", "stats": {"min": 1, "median": 1, "iqr": 0, '
            '"mean": 1, "stddev": 0, "rounds": 2, "data": [NaN, 0.001]}}]}',
            "NaN is no JSON number: expected finite numbers",
        ),
        (
            '{"benchmarks": [{"name": "t", "stats": {"min": 1, "median": Infinity, "iqr": 0, '
            '"mean": 1, "stddev": 0, "rounds": 1}}]}',
            "Infinity is no JSON number",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_it_and_the_field_and_stores_nothing(
    text, expected, stored, tmp_path, capsys
):
    before = sorted((p, p.read_bytes()) for p in stored.rglob("*.jsonl"))
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    assert cli.main(["import", str(bad), "--results", str(stored)]) == 2
    err = capsys.readouterr().err
    assert f"error: {bad}: " in err and expected in err
    assert sorted((p, p.read_bytes()) for p in stored.rglob("*.jsonl")) == before


def test_the_same_file_imported_twice_is_refused_naming_the_first_run(tmp_path, capsys):
    """The same timings twice would pool as independent runs in compare and history."""
    good = {"min": 1e-3, "median": 1e-3, "iqr": 0, "mean": 1e-3, "stddev": 0, "rounds": 1}
    source, results = tmp_path / "in.json", tmp_path / "r"
    source.write_text(json.dumps({"benchmarks": [{"name": "t", "stats": good}]}))
    assert cli.main(["import", str(source), "--results", str(results)]) == 0
    (first,) = results.glob("*/*.jsonl")
    assert cli.main(["import", str(source), "--results", str(results)]) == 2
    assert f"already imported as run {first.stem} (the same bytes)" in capsys.readouterr().err
    assert list(results.glob("*/*.jsonl")) == [first]


def test_an_import_that_fails_to_write_leaves_no_part_of_its_run(tmp_path, monkeypatch):
    """Every row in one write: a full disk or a Ctrl-C halfway stores no run that looks
    whole (rows one by one left benchmarks 1..k of n as a complete-looking run)."""
    from harness.results import atomic

    good = {"min": 1e-3, "median": 1e-3, "iqr": 0, "mean": 1e-3, "stddev": 0, "rounds": 1}
    data = {"benchmarks": [{"name": f"t{i}", "stats": good} for i in range(3)]}
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data))
    writes = []

    def full_disk(path, text):
        writes.append(text.count("\n"))
        raise atomic.WriteError(f"cannot write {path}: no space left on device")

    monkeypatch.setattr(store.atomic, "write_atomic", full_disk)
    assert cli.main(["import", str(source), "--results", str(tmp_path / "r")]) == 2
    assert writes == [3]  # one write of all three rows, not three of one, two, three
    assert store.load(tmp_path / "r").empty


@pytest.mark.parametrize("commit_id", ["unversioned", "a/b", "../x", None])
def test_a_commit_id_that_is_no_sha_is_stored_as_unknown(commit_id, tmp_path):
    """The id names the run's file: pytest-benchmark's "unversioned" (outside git) or a path
    is not a sha, and must not become a folder."""
    good = {"min": 1e-3, "median": 1e-3, "iqr": 0, "mean": 1e-3, "stddev": 0, "rounds": 1}
    data = {"commit_info": {"id": commit_id}, "benchmarks": [{"name": "t", "stats": good}]}
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data))
    assert cli.main(["import", str(source), "--results", str(tmp_path / "r")]) == 0
    assert list(store.load(tmp_path / "r")["commit"]) == ["unknown"]


def test_cells_are_parsed_from_our_names_only():
    assert ingest.parse_cell("test_cell[sharded-col-linear-B=64,I=784,O=128,P=2-bwd]") == (
        "sharded-col",
        "linear",
        "B=64 I=784 O=128 P=2",
        "bwd",
    )
    assert ingest.parse_cell("c-xor-B=4,layers=2-4-2,opt=sgd-step")[2] == "B=4 layers=2-4-2 opt=sgd"
    assert ingest.parse_cell("numpy-matmul--fwd") == ("numpy", "matmul", "", "fwd")
    for foreign in ("test_sum[10]", "numpy-matmul-M=16-sideways", "-matmul-M=16-fwd"):
        assert ingest.parse_cell(foreign) is None


def test_nothing_to_export_is_an_error_that_says_why(tmp_path, capsys):
    writer = store.RunWriter("r-only-wrong", machine.machine_name(), tmp_path)
    writer.append(rows("r-only-wrong", "b" * 40, {("c", "M=17"): []}, "wrong")[0])
    assert export(tmp_path, "r-only-wrong", "--format", "pytest-benchmark") == 2
    assert "no cell to export: expected ok cells with timed rounds" in capsys.readouterr().err
