"""`report`: render reports/summary.html from everything stored in results/."""

from __future__ import annotations

from harness.commands.common import add_results
from harness.report import summary as report
from harness.results import store


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "report",
        help="render reports/summary.html from results/",
        description="Render reports/summary.html from every run stored under results/.",
    )
    add_results(parser)
    parser.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="where to write the HTML (default: reports/summary.html)",
    )
    parser.add_argument(
        "--remeasure-ceilings",
        action="store_true",
        help="measure this machine's peak GEMM and copy bandwidth again",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    path = report.render(store.load(args.results), args.out, args.results, args.remeasure_ceilings)
    print(f"report: {path}")
    return 0
