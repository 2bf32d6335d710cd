"""One machine's stored runs along git's first-parent line, and the steps in each cell's time
(the method: harness/compare/changepoints.py).

The order is `git rev-list --first-parent REF`, oldest first: on a branch that takes work by
merges, the line of commits the branch itself was at; the runs of one commit are pooled. A run
is skipped, with the reason, when its tree had uncommitted changes (not its commit's code), or
its commit is not on that line: one of a merged branch (it ran beside the line, not at one
point of it), or one REF's history lacks (another branch, or not fetched into this clone).

Everything returned is plain lists, dicts, text and numbers (JSON as it is), for the command's
tables, its --json, and the report's history figure (harness/report/trends.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.compare import changepoints
from harness.results import git
from harness.results.machine import ROOT

KEYS = ["impl", "workload", "size", "phase"]
# Fewer commits than this give too rough a noise estimate for the penalty to keep false steps
# under 5% (changepoints.py's calibration).
MIN_COMMITS = 10


def first_parent_line(sha: str, cwd=ROOT) -> tuple:
    """-> (the first-parent line of sha, oldest first; every ancestor of sha, as a set)."""
    line = git.run("rev-list", "--first-parent", sha, cwd=cwd).split()[::-1]
    return line, set(git.run("rev-list", sha, cwd=cwd).split())


def _why_skipped(run: pd.Series, position: dict, ancestors: set, ref: str) -> str | None:
    if bool(run["dirty"]):
        return "of a tree with uncommitted changes: not its commit's code"
    if run["commit"] in position:
        return None
    if run["commit"] in ancestors:
        return f"on a merged branch, not on {ref}'s first-parent line"
    return f"not in {ref}'s history (another branch, or not in this clone)"


def place(table: pd.DataFrame, line: list, ancestors: set, ref: str = "HEAD") -> tuple:
    """-> (table's rows with `position`, their commit's place on line; the skipped runs as
    [{run_id, commit, why}])."""
    position = {sha: i for i, sha in enumerate(line)}
    table = table.assign(
        commit=table["commit"].fillna("unknown").astype(str),
        dirty=table["dirty"].fillna(False).astype(bool) if "dirty" in table else False,
    )
    runs = table.drop_duplicates("run_id")[["run_id", "commit", "dirty"]]
    skipped = []
    for _, run in runs.iterrows():
        why = _why_skipped(run, position, ancestors, ref)
        if why:
            skipped.append({"run_id": run["run_id"], "commit": run["commit"], "why": why})
    kept = table[~table["run_id"].isin({s["run_id"] for s in skipped})]
    return kept.assign(position=kept["commit"].map(position)), skipped


def timed(rows: pd.DataFrame, impls=None, workloads=None, phases=None) -> pd.DataFrame:
    """The rows with a time to follow: ok, timed (not counted), of the chosen cells."""
    measure = rows["measure"].fillna("time") if "measure" in rows else "time"
    keep = (rows["status"] == "ok") & (rows["t_min_s"] > 0) & (measure != "instructions")
    for column, wanted in (("impl", impls), ("workload", workloads), ("phase", phases)):
        if wanted is not None:
            keep &= rows[column].isin(wanted)
    return rows[keep & (rows["workload"] != "train")]


def cell_steps(rows: pd.DataFrame, line: list, **rules) -> dict:
    """One cell's placed rows -> {commits, steps} or {commits, short} (fewer than
    MIN_COMMITS commits, counted after the runs other work disturbed are left out: the
    penalty's calibration holds from that many on). `rules`: changepoints.steps's penalty,
    min_effect, min_segment."""
    by_commit = rows.groupby("position")["t_min_s"].apply(lambda t: np.log(t.to_numpy()))
    positions = sorted(by_commit.index)
    try:
        found = changepoints.steps(
            [by_commit[p] for p in positions], min_commits=MIN_COMMITS, **rules
        )
    except changepoints.TooShort:
        return {"commits": len(positions), "short": True}
    for step in found:
        index, before = step.pop("index"), step.pop("last_before")
        step.update(commit=line[positions[index]], last_before=line[positions[before]])
    return {"commits": len(positions), "steps": found}


def history(
    table: pd.DataFrame,
    sha: str,
    ref: str = "HEAD",
    cwd=ROOT,
    filters: tuple = (None, None, None),
    **rules,
) -> dict:
    """Steps per cell of one machine's table along sha's first-parent line (ref: how sha was
    named). filters: (impls, workloads, phases), None for all. -> {ref, commit, commits (on
    the line, with runs), cells: [{impl, workload, size, phase, commits, steps | short}],
    steps: every cell's, each with its cell and commits, skipped: [{run_id, commit, why}]}."""
    line, ancestors = first_parent_line(sha, cwd)
    placed, skipped = place(table, line, ancestors, ref)
    rows = timed(placed, *filters)
    cells = []
    for key, group in rows.groupby(KEYS, sort=False):
        cells.append({**dict(zip(KEYS, key)), **cell_steps(group, line, **rules)})
    steps = [
        {**{k: c[k] for k in [*KEYS, "commits"]}, **step}
        for c in cells
        for step in c.get("steps", [])
    ]
    return {
        "ref": ref,
        "commit": sha,
        "commits": [line[p] for p in sorted(rows["position"].unique())],
        "cells": cells,
        "steps": steps,
        "skipped": skipped,
    }


def plot_steps(rows: pd.DataFrame, ref: str = "HEAD", cwd=ROOT) -> list:
    """The steps of the report's rows along ref's line, for the history figure's markers; none
    where git cannot order them (results copied away from their repository): a report renders
    without a repository."""
    try:
        sha = git.run("rev-parse", "--verify", "--quiet", "--end-of-options", ref, cwd=cwd)
        return history(rows, sha, ref, cwd)["steps"]
    except (RuntimeError, OSError):
        return []
