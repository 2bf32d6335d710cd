"""Options that several commands share, declared once, and the checks of their values."""

from __future__ import annotations

import argparse
import math

from harness.execute.grid import PHASES
from harness.workloads import WORKLOADS


def names(values, option: str) -> list | None:
    """`--impl a --impl b,c` -> [a, b, c]; None when the option was not given. A value that
    names nothing (`--impl ""`) is refused: it would otherwise mean "all" by accident."""
    if values is None:
        return None
    found = [n.strip() for value in values for n in value.split(",") if n.strip()]
    if not found:
        raise ValueError(
            f"{option} {' '.join(map(repr, values))} names nothing: give one or "
            f"more names (see `python -m harness list`), or leave {option} out"
        )
    return found


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"expected a positive, finite number of seconds, got {text}"
        )
    return value


def add_results(
    parser, what: str = "results folder", default: str = "results/ in the project"
) -> None:
    parser.add_argument(
        "--results", default=None, metavar="DIR", help=f"{what} (default: {default})"
    )


def alpha(text: str) -> float:
    """An argparse type: a false discovery rate, strictly between 0 and 1."""
    from harness.compare.overall import check_fdr

    try:
        value = float(text)
        check_fdr(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a rate such as 0.05: {error}") from None
    return value


def add_verdict_options(parser) -> None:
    """The options `compare` and `ab` share: thresholds, the false discovery rate and where
    the markdown goes."""
    from harness import compare

    parser.add_argument(
        "--threshold",
        type=float,
        default=compare.THRESHOLD,
        metavar="F",
        help="smallest relative change that counts (default 0.10 = 10%%)",
    )
    parser.add_argument(
        "--count-threshold",
        type=float,
        default=compare.COUNT_THRESHOLD,
        metavar="F",
        help="smallest relative change of an instruction count "
        "that counts (`run --instructions`; default 0.005 = 0.5%%)",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        default=compare.CONFIDENCE,
        metavar="F",
        help="confidence of the interval on each ratio (default 0.95)",
    )
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument(
        "--fdr",
        type=alpha,
        default=compare.FDR,
        metavar="ALPHA",
        help="call a timed cell slower or faster only if its Benjamini-Hochberg q-value over "
        "the grid's timed cells is at most ALPHA too (default 0.05: of the cells called, "
        "5%% or fewer by luck; harness/compare/overall.py)",
    )
    rate.add_argument(
        "--no-fdr",
        dest="fdr",
        action="store_const",
        const=None,
        help="judge each cell by its threshold and interval alone",
    )
    parser.add_argument(
        "--markdown",
        default=None,
        metavar="FILE",
        help="also write the comparison as markdown (a pull-request comment)",
    )


def add_cell_filters(parser, verb: str = "run") -> None:
    """--impl, --workload, --phase: which cells of the grid (repeatable or comma-separated)."""
    parser.add_argument(
        "--impl",
        action="append",
        metavar="NAME",
        help=f"impl(s) to {verb}, repeatable or comma-separated (default: all; see `list`)",
    )
    parser.add_argument(
        "--workload",
        action="append",
        metavar="NAME",
        help=f"workload(s) to {verb} (default: all of {', '.join(WORKLOADS)})",
    )
    parser.add_argument(
        "--phase",
        action="append",
        metavar="PHASE",
        help=f"phase(s) to {verb}: {', '.join(PHASES)} (default: all)",
    )
