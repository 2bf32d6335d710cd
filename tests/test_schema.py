"""The row format's JSON Schema (harness/results/row.schema.json): a valid, versioned draft
2020-12 schema that every row a real run stores passes, and the fixture's rows too, that agrees
with the reader's types (harness/results/rows.py), and that names the field a bad row breaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from harness import cli
from harness.results import ceilings, machine, rows, schema, store

FIXTURE = Path(__file__).parent / "fixtures" / "quick_grid_rows_0675867.json"
SCHEMA = json.loads(schema.FOLDER.joinpath("row.schema.json").read_text())


def scopes(value: float) -> dict:
    return {"one_core": value, "all_cores": 2 * value}


def level(name: str, size: int | None, shared_by: int) -> dict:
    return {
        "name": name,
        "bytes": size,
        "shared_by": shared_by,
        "working_set_bytes": scopes(size or 1 << 28),
        "read_gb_per_s": scopes(50.0),
        "update_gb_per_s": scopes(50.0),
    }


def quick_run(results: Path, monkeypatch) -> list:
    """A real quick run stored under results (ok, over_budget and unavailable cells, with
    roofs): its rows as stored. The ceilings are made up, so none are measured (seconds)."""
    made_up = {
        "machine": machine.machine_name(),
        "cores": 2,
        "gemm_gflops_per_s": 100.0,
        "copy_gb_per_s": 10.0,
        "gemm_n": 64,
        "copy_bytes": 1 << 20,
        "isas": ["portable"],
        "fma_gflops_per_s": scopes(50.0),
        "blas_gflops_per_s": scopes(40.0),
        "levels": [level("L1", 32768, 1), level("DRAM", None, 2)],
    }
    monkeypatch.setattr(ceilings, "measure", lambda: dict(made_up))
    args = ["run", "--quick", "--impl", "numpy,cuda-naive", "--workload", "xor,matmul"]
    args += ["--phase", "fwd", "--budget", "1e-6", "--in-process", "--no-report"]
    assert cli.main([*args, "--results", str(results)]) == 0
    (path,) = results.glob("*/*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_schema_is_versioned_draft_2020_12():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert isinstance(SCHEMA["version"], int)
    assert SCHEMA["$id"].endswith(f":{SCHEMA['version']}")  # a new version is a new $id


def test_every_row_of_a_real_run_passes(tmp_path, monkeypatch):
    stored = quick_run(tmp_path, monkeypatch)
    assert {r["status"] for r in stored} == {"ok", "over_budget", "unavailable"}
    assert any("roof_pct" in r for r in stored)
    for row in stored:
        assert schema.problems(row) == [], row["size"]


def test_every_row_of_the_fixture_passes():
    for row in json.loads(FIXTURE.read_text()):
        assert schema.problems(row) == [], row["size"]


def test_the_schema_and_the_reader_agree_on_every_column():
    types = {
        name: {prop["type"]} if isinstance(prop.get("type"), str) else set(prop.get("type", []))
        for name, prop in SCHEMA["properties"].items()
    }
    assert not [c for c in store.COLUMNS if c not in types], "stored columns the schema lacks"
    expected = {
        **{c: ("number", "integer") for c in rows.NUMERIC},
        **{c: ("string",) for c in rows.TEXT},
        **{c: ("array",) for c in rows.SERIES},
        "dirty": ("boolean",),
        "confusion_CC": ("array",),
        "weight_hist": ("object",),
    }
    assert sorted(expected) == sorted(rows.READERS)
    for column, kinds in expected.items():
        if column in ("status", "measure"):  # enums: their values below
            continue
        assert set(kinds) & types[column], column
    assert SCHEMA["properties"]["status"]["enum"] == list(rows.STATUSES)


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"status": "fine"}, "status", "is not one of"),
        ({"M": "16"}, "M", "is not of type 'integer'"),
        ({"samples_s": [1e-3, "x"]}, "samples_s[1]", "is not of type 'number'"),
        ({"t_median_s": -1.0}, "t_median_s", "less than the minimum"),
        ({"measure": "instructions"}, "the document", "'instructions' is a required property"),
    ],
)
def test_a_bad_row_is_refused_naming_its_field(change, field, message):
    row = {"impl": "numpy", "workload": "matmul", "size": "M=16", "phase": "fwd", "status": "ok"}
    (problem,) = schema.problems({**row, **change})
    assert problem.startswith(f"{field}: ") and message in problem


def test_problems_come_in_document_order_indices_as_numbers():
    """benchmarks[2] before benchmarks[10]: the first one named is the first in the file."""
    good = {"min": 1, "median": 1, "iqr": 0, "mean": 1, "stddev": 0, "rounds": 1}
    document = {"benchmarks": [{"name": "t", "stats": dict(good)} for _ in range(12)]}
    document["benchmarks"][10]["stats"]["median"] = "x"
    document["benchmarks"][2]["stats"]["min"] = "y"
    assert [p.split(":")[0] for p in schema.problems(document, "pytest_benchmark")] == [
        "benchmarks[2].stats.min",
        "benchmarks[10].stats.median",
    ]
