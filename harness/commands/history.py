"""`history`: every stored run of one machine along git's first-parent line, and the steps in
each cell's time (harness/compare/history.py, changepoints.py), as tables."""

from __future__ import annotations

import json

from harness.commands.common import add_cell_filters, add_results, names
from harness.compare import changepoints, history
from harness.compare.render import format_seconds
from harness.results import git, machine, store
from harness.results.atomic import check_writable, write_atomic

HEADER = ["impl", "workload", "size", "phase", "commits", "last before", "first after"]
HEADER += ["before", "after", "after/before", "p"]
SHOWN = 10  # cells named in the line of those too short: a new machine's are all of them


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "history",
        help="find the steps in each cell's time over the stored runs of many commits",
        description="Order every stored run of one machine by its commit along git's "
        "first-parent line of REF (runs of one commit pooled; the others listed as "
        "skipped, with why) and find the steps in each cell's time: PELT change points "
        "(ruptures, L1 cost) on each commit's fastest round, with a penalty calibrated "
        "to the history's own noise (method: harness/compare/changepoints.py). Each "
        "step: the commits either side of it, the ratio of the median run after to "
        "before, and a Mann-Whitney p-value (descriptive: the cut was chosen on the same "
        "runs).",
    )
    add_cell_filters(parser, "follow")
    add_results(parser)
    parser.add_argument(
        "--machine", default=None, help="the runs of this machine (default: this one)"
    )
    parser.add_argument(
        "--ref",
        default="HEAD",
        metavar="REF",
        help="whose first-parent line orders the commits (default HEAD)",
    )
    parser.add_argument(
        "--min-effect",
        type=float,
        default=changepoints.MIN_EFFECT,
        metavar="F",
        help="drop a step whose ratio is within F of 1 (default 0.05 = 5%%)",
    )
    parser.add_argument(
        "--penalty",
        type=float,
        default=changepoints.PENALTY,
        metavar="C",
        help=f"a cut's penalty, in noise x log(commits) (default {changepoints.PENALTY}: "
        "calibrated by benchmarks/history_calibration.py)",
    )
    parser.add_argument(
        "--markdown", default=None, metavar="FILE", help="also write the steps as markdown"
    )
    parser.add_argument(
        "--json", default=None, metavar="FILE", help="also write everything found as JSON"
    )
    parser.set_defaults(func=run)


def _lines(steps: list) -> list:
    return [
        [
            *(str(s[k]) for k in history.KEYS),
            str(s["commits"]),
            s["last_before"][:10],
            s["commit"][:10],
            format_seconds(s["before_s"]),
            format_seconds(s["after_s"]),
            f"{s['ratio']:.3f}",
            f"{s['p']:.2g}",
        ]
        for s in steps
    ]


def _many(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _notes(found: dict) -> list:
    """The summary line, then the cells too short and the runs skipped, one line each."""
    cells = found["cells"]
    short = [c for c in cells if c.get("short")]
    stepped = sum(1 for c in cells if c.get("steps"))
    notes = [
        f"{_many(len(cells), 'cell')} over {_many(len(found['commits']), 'commit')} of "
        f"{found['ref']}'s first-parent line: {_many(len(found['steps']), 'step')} in "
        f"{_many(stepped, 'cell')}, {len(cells) - stepped - len(short)} steady, "
        f"{len(short)} too short"
    ]
    if short:
        named = [f"{' '.join(c[k] for k in history.KEYS)} ({c['commits']})" for c in short]
        more = f" and {len(named) - SHOWN} more" if len(named) > SHOWN else ""
        notes.append(
            f"too short (fewer than {history.MIN_COMMITS} commits): {_many(len(short), 'cell')}: "
            f"{', '.join(named[:SHOWN])}{more}"
        )
    reasons = {}
    for run in found["skipped"]:
        reasons.setdefault(run["why"], []).append(run["commit"][:10])
    notes += [
        f"skipped {_many(len(c), 'run')} ({', '.join(sorted(set(c)))}): {why}"
        for why, c in reasons.items()
    ]
    return notes


def to_terminal(found: dict) -> str:
    rows = [HEADER, *_lines(found["steps"])]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    table = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join([*(table if found["steps"] else []), "", *_notes(found)]).strip("\n")


def to_markdown(found: dict) -> str:
    escaped = [[c.replace("|", "\\|") for c in r] for r in _lines(found["steps"])]
    notes = _notes(found)
    parts = [f"### nnladder history: steps along `{found['ref']}`", "", f"{notes[0]}.", ""]
    if escaped:
        parts += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        parts += ["| " + " | ".join(r) + " |" for r in escaped] + [""]
    if notes[1:]:
        parts += ["<details><summary>Too short, skipped</summary>", ""]
        parts += [f"- {n}" for n in notes[1:]] + ["", "</details>"]
    return "\n".join(parts).rstrip("\n")


def _machine_rows(table, wanted: str | None):
    name = wanted or machine.machine_name()
    rows = table[table["machine"] == name]
    if rows.empty:
        stored = ", ".join(sorted(table["machine"].dropna().unique())) or "none"
        raise ValueError(
            f"no stored runs of machine {name!r} (machines with runs: {stored}); "
            "pick one with --machine"
        )
    return rows


def run(args) -> int:
    for path in (args.markdown, args.json):
        if path:
            check_writable(path)
    if not 0 <= args.min_effect < 1:
        raise ValueError(f"--min-effect {args.min_effect}: expected a fraction in [0, 1)")
    if not args.penalty > 0:
        raise ValueError(f"--penalty {args.penalty}: expected a positive number")
    rows = _machine_rows(store.load(args.results), args.machine)
    filters = (
        names(args.impl, "--impl"),
        names(args.workload, "--workload"),
        names(args.phase, "--phase"),
    )
    for column, wanted in zip(("impl", "workload", "phase"), filters):
        unknown = sorted(set(wanted or ()) - set(rows[column]))
        if unknown:
            raise ValueError(
                f"--{column} {','.join(unknown)}: no stored runs of it on this machine "
                f"(stored: {', '.join(sorted(rows[column].dropna().unique()))})"
            )
    found = history.history(
        rows,
        git.resolve(args.ref),
        args.ref,
        filters=filters,
        penalty=args.penalty,
        min_effect=args.min_effect,
    )
    print(to_terminal(found))
    if args.markdown:
        path = write_atomic(args.markdown, to_markdown(found) + "\n")
        print(f"markdown: {path}")
    if args.json:
        path = write_atomic(args.json, json.dumps(found, indent=2, allow_nan=False) + "\n")
        print(f"json: {path}")
    return 0
