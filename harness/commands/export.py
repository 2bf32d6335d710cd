"""`export RUN --format pytest-benchmark|bencher`: a stored run as other tools read it."""

from __future__ import annotations

import json
import sys

from harness.commands.common import add_results
from harness.commands.compare import RUN_HELP, select
from harness.results import export, store
from harness.results.atomic import write_atomic

FORMATS = {"pytest-benchmark": export.to_pytest_benchmark, "bencher": export.to_bmf}


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="write a stored run as pytest-benchmark JSON or Bencher's metric format",
        description="Write one stored run in a format other tools read: pytest-benchmark's "
        "JSON (what `pytest --benchmark-json` writes; `pytest-benchmark compare` reads "
        "it) or Bencher's metric format (BMF JSON: latency in ns and throughput per "
        "cell, instructions for a counted one). Cells that did not run ok, or have no "
        "timed rounds, are left out (harness/results/export.py).",
    )
    parser.add_argument("run", metavar="RUN", help=f"{RUN_HELP}; of a commit, its newest run")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS))
    parser.add_argument(
        "-o", "--output", metavar="FILE", default=None, help="write here (default: stdout)"
    )
    add_results(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    rows = select(store.load(args.results), args.run)
    runs = rows.sort_values(["timestamp", "run_id"], na_position="first")["run_id"].unique()
    if len(runs) > 1:
        print(
            f"note: {args.run} has {len(runs)} runs; exporting the newest, {runs[-1]}",
            file=sys.stderr,
        )
    rows = export.records(rows[rows["run_id"] == runs[-1]])
    document = FORMATS[args.format](rows)
    cells = len(document["benchmarks"] if args.format == "pytest-benchmark" else document)
    if not cells:
        statuses = ", ".join(sorted({r["status"] for r in rows}))
        raise ValueError(
            f"run {runs[-1]} has no cell to export: expected ok cells with timed rounds "
            f"(its {len(rows)} rows are {statuses})"
        )
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    path = write_atomic(args.output, text)
    print(f"exported {cells} cells of run {runs[-1]} as {args.format}: {path}", file=sys.stderr)
    return 0
