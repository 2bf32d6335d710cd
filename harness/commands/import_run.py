"""`import FILE.json`: a pytest-benchmark JSON file stored as a run, all of it checked first."""

from __future__ import annotations

import json
from pathlib import Path

from harness.commands.common import add_results
from harness.results import ingest, schema, store


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "import",
        help="store a pytest-benchmark JSON file as a run",
        description="Read a pytest-benchmark JSON file (`pytest --benchmark-json`, or `export "
        "--format pytest-benchmark`) and store its benchmarks as one new run under "
        "results/<machine>/, the machine its machine_info names: each an ok row with its "
        "times and rounds, the cell parsed from our own names, else the benchmark's name "
        "(harness/results/ingest.py). A file that is not one is refused, naming the "
        "field, before anything is stored.",
    )
    parser.add_argument("file", metavar="FILE.json", help="a pytest-benchmark JSON file")
    add_results(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    path = Path(args.file)

    def not_finite(constant: str):
        # Python's json reads NaN and Infinity, which JSON has not; the schema's bounds do not
        # catch them (NaN compares false to everything) and a stored NaN is not JSON either
        raise ValueError(f"{path}: {constant} is no JSON number: expected finite numbers")

    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=not_finite)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a JSON file ({error})") from None
    rows = ingest.from_pytest_benchmark(data, str(path))  # checks the file's structure
    meta = ingest.run_meta(data, str(path))
    run_id = store.new_run_id(meta["commit"])
    meta = {"run_id": run_id, **meta}
    for number, row in enumerate(rows):
        wrong = schema.problems({**meta, **row})
        if wrong:
            raise ValueError(f"{path}: benchmarks[{number}]: {wrong[0]}")
    writer = store.RunWriter(run_id, meta["machine"], args.results, meta)
    writer.extend(rows)
    print(f"imported {len(rows)} benchmarks of {path} as run {run_id}: {writer.path}")
    return 0
