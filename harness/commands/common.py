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
        raise ValueError(f"{option} {' '.join(map(repr, values))} names nothing: give one or "
                         f"more names (see `python -m harness list`), or leave {option} out")
    return found


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") \
            from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive, finite number of seconds, "
                                         f"got {text}")
    return value


def add_results(parser, what: str = "results folder") -> None:
    parser.add_argument("--results", default=None, metavar="DIR",
                        help=f"{what} (default: results/ in the project)")


def add_cell_filters(parser, verb: str = "run") -> None:
    """--impl, --workload, --phase: which cells of the grid (repeatable or comma-separated)."""
    parser.add_argument("--impl", action="append", metavar="NAME",
                        help=f"impl(s) to {verb}, repeatable or comma-separated (default: all; "
                             "see `list`)")
    parser.add_argument("--workload", action="append", metavar="NAME",
                        help=f"workload(s) to {verb} (default: all of {', '.join(WORKLOADS)})")
    parser.add_argument("--phase", action="append", metavar="PHASE",
                        help=f"phase(s) to {verb}: {', '.join(PHASES)} (default: all)")
