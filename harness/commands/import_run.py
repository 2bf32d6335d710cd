"""`import FILE.json`: a pytest-benchmark JSON file stored as a run, all of it checked first."""

from __future__ import annotations

import hashlib
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


def imported_before(folder: Path, digest: str) -> str | None:
    """The run of folder imported from a file with this sha256, if any (a run's rows share
    it: the first row of each says)."""
    for stored in sorted(folder.glob("*.jsonl")):
        try:
            with stored.open(encoding="utf-8") as rows_file:
                first = json.loads(rows_file.readline() or "{}")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # not an import of ours: store.load says what it makes of it
        if first.get("imported_sha256") == digest:
            return first.get("run_id", stored.stem)
    return None


def run(args) -> int:
    path = Path(args.file)

    def not_finite(constant: str):
        # Python's json reads NaN and Infinity, which JSON has not; the schema's bounds do not
        # catch them (NaN compares false to everything) and a stored NaN is not JSON either
        raise ValueError(f"{path}: {constant} is no JSON number: expected finite numbers")

    content = path.read_bytes()
    try:
        data = json.loads(content.decode("utf-8"), parse_constant=not_finite)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a JSON file ({error})") from None
    rows = ingest.from_pytest_benchmark(data, str(path))  # checks the file's structure
    meta = ingest.run_meta(data, str(path))
    run_id = store.new_run_id(meta["commit"])
    meta = {"run_id": run_id, **meta, "imported_sha256": hashlib.sha256(content).hexdigest()}
    folder = Path(args.results or store.RESULTS) / meta["machine"]
    if earlier := imported_before(folder, meta["imported_sha256"]):
        # the same timings twice would count as independent runs in compare and history
        raise ValueError(f"{path}: already imported as run {earlier} (the same bytes)")
    for number, row in enumerate(rows):
        wrong = schema.problems({**meta, **row})
        if wrong:
            raise ValueError(f"{path}: benchmarks[{number}]: {wrong[0]}")
    writer = store.RunWriter(run_id, meta["machine"], args.results, meta)
    writer.extend(rows)
    print(f"imported {len(rows)} benchmarks of {path} as run {run_id}: {writer.path}")
    return 0
