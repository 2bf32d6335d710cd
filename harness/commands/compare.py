"""`compare BASE HEAD`: stored results of two commits (or runs), cell by cell, with verdicts."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

from harness import compare
from harness.commands.common import add_results, add_verdict_options
from harness.results import git, machine, store
from harness.results.atomic import check_writable, write_atomic
from harness.results.rows import read_run

HEX = re.compile(r"[0-9a-fA-F]{4,40}")
RUN_HELP = "commit (sha, prefix or ref), run id, a run's .jsonl file, or latest (the newest run)"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "compare",
        help="compare the stored results of two commits or runs",
        description="Compare two commits (or run ids) from the results stored under results/: "
        "per cell the ratio HEAD/BASE of run times, a confidence interval from "
        "the raw samples (method: harness/compare/stats.py), and a verdict (faster / "
        "slower / same) that needs the ratio threshold, significance, and a false "
        "discovery rate over the grid's cells (--fdr). "
        "Exit code 1 when a cell is significantly slower past the threshold, or "
        "went from ok to wrong or error.",
    )
    add_verdict_options(parser)
    for side in ("base", "head"):
        parser.add_argument(side, metavar=side.upper(), help=RUN_HELP)
    add_results(parser)
    parser.add_argument(
        "--machine",
        default=None,
        help="compare the runs of this machine (default: this one, when both "
        "sides have runs of it)",
    )
    parser.set_defaults(func=run)


def check_markdown(args) -> None:
    """Refuse a --markdown file that cannot be written before any work is done for it (`ab`
    runs for minutes first)."""
    if args.markdown:
        check_writable(args.markdown)


def _commit_of(ref: str) -> str | None:
    try:
        return git.resolve(ref)
    except ValueError:
        return None


def select(table: pd.DataFrame, ref: str) -> pd.DataFrame:
    """The rows of a run file (its path), a run id, the newest stored run ("latest"), or of
    every run of a commit (sha, sha prefix or git ref)."""
    if ref.endswith(".jsonl") and Path(ref).is_file():
        rows = read_run(Path(ref))
        if rows.empty:
            raise ValueError(f"{ref}: no result rows in this file")
        return rows
    if ref == "latest" and not table.empty:
        order = table.sort_values(["timestamp", "run_id"], na_position="first")
        return table[table["run_id"] == order["run_id"].iloc[-1]]
    rows = table[table["run_id"] == ref]
    if not rows.empty:
        return rows
    commits = table["commit"].astype(str)
    if HEX.fullmatch(ref):
        rows = table[commits.str.startswith(ref.lower())]
        if rows["commit"].nunique() > 1:
            raise ValueError(
                f"{ref!r} is ambiguous: it starts the commits "
                f"{', '.join(sorted(rows['commit'].unique()))}"
            )
        if not rows.empty:
            return rows
    sha = _commit_of(ref)
    rows = table[commits == sha] if sha else rows.iloc[0:0]
    if rows.empty:
        known = ", ".join(sorted({c[:10] for c in commits.unique()})) or "none"
        what = f"commit {sha[:10]}" if sha else "a run id, stored commit or git ref"
        raise ValueError(
            f"no stored results for {ref!r} ({what}); stored commits: {known}. "
            "Run `python -m harness run` at that commit, or use `ab`."
        )
    return rows


def _one_machine(base: pd.DataFrame, head: pd.DataFrame, wanted: str | None) -> str:
    common = sorted(set(base["machine"]) & set(head["machine"]))
    if wanted:
        if wanted not in common:
            raise ValueError(
                f"--machine {wanted!r}: both sides need runs of it; machines with "
                f"runs on both sides: {', '.join(common) or 'none'}"
            )
        return wanted
    here = machine.machine_name()
    if here in common:
        return here
    if len(common) == 1:
        return common[0]
    raise ValueError(
        f"the two sides share no single machine (common: {', '.join(common) or 'none'}"
        "): timings of different machines do not compare; pick one with --machine"
    )


def report(base: pd.DataFrame, head: pd.DataFrame, base_label: str, head_label: str, args) -> int:
    """Compare, print the terminal table, write the markdown if asked; -> the exit code."""
    rules = (args.threshold, args.confidence, args.count_threshold, args.fdr)
    result = compare.compare(base, head, *rules)
    print(compare.to_terminal(result, *rules))
    if args.markdown:
        path = write_atomic(
            args.markdown, compare.to_markdown(result, base_label, head_label, *rules) + "\n"
        )
        print(f"markdown: {path}")
    if compare.regressed(result):
        print("significant regression: exit code 1", file=sys.stderr)
        return 1
    return 0


def run(args) -> int:
    check_markdown(args)
    table = store.load(args.results)
    base, head = select(table, args.base), select(table, args.head)
    name = _one_machine(base, head, args.machine)
    for label, rows in ((args.base, base), (args.head, head)):
        if rows["dirty"].fillna(False).astype(bool).any():
            print(
                f"note: {label} includes runs of a tree with uncommitted changes", file=sys.stderr
            )
    return report(
        base[base["machine"] == name], head[head["machine"] == name], args.base, args.head, args
    )
