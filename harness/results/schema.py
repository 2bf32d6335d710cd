"""The row format as a versioned JSON Schema (row.schema.json, draft 2020-12), beside the part
of pytest-benchmark's format that `import` reads (pytest_benchmark.schema.json), and what a
value breaks of either, named by its field."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator

FOLDER = Path(__file__).parent


@lru_cache(maxsize=2)
def validator(name: str) -> Draft202012Validator:
    """The schema `<name>.schema.json` of this folder, checked and ready to validate with."""
    schema = json.loads((FOLDER / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def field(path) -> str:
    """A jsonschema error's path as one names a field: ("benchmarks", 3, "stats") ->
    "benchmarks[3].stats"."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def problems(value, name: str = "row") -> list:
    """Each way the value breaks the schema `name` (default: the row's) as "field: what is
    wrong"; [] when it is valid."""
    # in document order: indices as numbers (benchmarks[2] before benchmarks[10])
    errors = sorted(
        validator(name).iter_errors(value),
        key=lambda e: [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in e.path],
    )
    return [f"{field(e.absolute_path) or 'the document'}: {e.message}" for e in errors]
