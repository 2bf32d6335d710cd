"""Bisect: the first commit between GOOD and BAD that made the grid slower, by interleaved A/B.

The commits are BAD's first parents back to GOOD, oldest first, GOOD left out and BAD last:
n commits, one of them the first bad one. A step runs commits interleaved in their own
worktrees (ab.interleave) and judges them with `compare`'s statistics (verdicts.py: ratio
past the threshold, interval clear of 1, q-value within the false discovery rate):

1. the check, GOOD against BAD: the cells slower at BAD are the regression the bisect
   follows (its tracked cells); with none, and no interval reaching past the threshold,
   there is nothing to bisect.
2. a candidate C midway between the newest commit known good and the oldest known bad, run
   with GOOD and BAD, G C B G C B ..., so all three see the same drift. Per tracked cell, C is
   "bad" when it is slower than GOOD and not slower than BAD, "good" when it is the same as
   GOOD and faster than BAD, and unclear otherwise. The step is bad (or good) when some
   tracked cell says so and none says the opposite: a cell the check tracked by luck says
   neither and does not stall the search; two cells that disagree stop it.
An inconclusive step is run again with as many runs again, pooled with its earlier ones (twice
the runs a side), up to the limit; then the bisect gives up on that commit. With every step
conclusive it takes ceil(log2 n) + 1 steps.

The state (bisect.json beside the runs) is written whole after every step
(results/atomic.py), so a bisect that was stopped continues from its last step.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from harness import compare
from harness.compare import ab
from harness.compare.verdicts import KEYS
from harness.results import atomic, git, store

STATE = "bisect.json"
VERSION = 1
CELL = [*KEYS, "measure"]
EVIDENCE = ["ratio", "ci_low", "ci_high", "q", "verdict"]


def _git(*args) -> str:
    # git.ROOT read at each call, as git.resolve reads it: the repository refs resolve in
    return git.run(*args, cwd=git.ROOT)


def subject(sha: str) -> str:
    return _git("log", "-1", "--format=%s", "--end-of-options", sha)


def commits(good: str, bad: str) -> list:
    """BAD's first parents after GOOD, oldest first and BAD last (full shas)."""
    if good == bad:
        raise ValueError(f"GOOD and BAD are one commit ({good[:10]}): nothing to bisect")
    line = _git("rev-list", "--first-parent", "--reverse", f"{good}..{bad}").split()
    first_parent = _git("rev-list", "--parents", "-n", "1", line[0]).split()[1:2] if line else []
    if first_parent != [good]:
        raise ValueError(
            f"GOOD {good[:10]} is not on BAD {bad[:10]}'s first-parent line: expected GOOD to "
            "be an older commit of BAD's history (as a release tag is of main)"
        )
    return line


def start(good: str, bad: str, settings: dict, refs: tuple) -> dict:
    """A new bisect's state: GOOD and BAD as full shas (git.resolve), nothing run yet."""
    if settings["repeats"] < 2:
        raise ValueError(
            f"repeats must be 2 or more, got {settings['repeats']}: a step never trusts one run"
        )
    if settings["max_repeats"] < settings["repeats"]:
        raise ValueError(
            f"max repeats ({settings['max_repeats']}) must be at least repeats "
            f"({settings['repeats']})"
        )
    return {
        "version": VERSION,
        "good": good,
        "bad": bad,
        "refs": list(refs),
        "settings": settings,
        "commits": commits(good, bad),
        "steps": [],
        "outcome": None,
    }


def load(path: Path) -> dict:
    """A stored state, refused with the reason when it is not one this version wrote."""
    try:
        state = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a bisect state ({error})") from None
    needed = {"good", "bad", "refs", "settings", "commits", "steps", "outcome"}
    if not isinstance(state, dict) or state.get("version") != VERSION or needed - set(state):
        raise ValueError(f"{path}: not a bisect state of version {VERSION}")
    # every commit it names reaches git: a full sha each, never an option ("--output=...")
    named = [("good", state["good"]), ("bad", state["bad"])]
    named += [(f"commits[{i}]", sha) for i, sha in enumerate(state["commits"])]
    named += [(f"steps[{i}].commit", s.get("commit")) for i, s in enumerate(state["steps"])]
    for field, sha in named:
        if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{40}", sha)):
            raise ValueError(f"{path}: {field} is {sha!r}, expected a commit's full sha")
    return state


def save(state: dict, path: Path) -> None:
    atomic.write_atomic(path, json.dumps(state, indent=1) + "\n")


def _evidence(row) -> dict:
    return {name: store.clean(row[name]) for name in EVIDENCE}  # JSON has no NaN: null


def _by_cell(result) -> dict:
    return {tuple(row[k] for k in CELL): row for row in result.to_dict("records")}


def cell_call(vs_good: str, vs_bad: str) -> str:
    """One tracked cell's call from its verdicts C / GOOD and C / BAD."""
    if vs_good == "slower" and vs_bad in ("same", "faster"):
        return "bad"
    if vs_good == "same" and vs_bad == "faster":
        return "good"
    return "unclear"


def step_call(calls: list) -> str:
    """bad or good when some tracked cell says so and none says the opposite."""
    found = set(calls) - {"unclear"}
    return found.pop() if len(found) == 1 else "inconclusive"


def interval(state: dict) -> tuple:
    """(index of the newest commit known good, -1 for GOOD; of the oldest known bad)."""
    steps = [s for s in state["steps"] if s["kind"] == "candidate"]
    good = [s["index"] for s in steps if s["call"] == "good"]
    bad = [s["index"] for s in steps if s["call"] == "bad"]
    return max(good, default=-1), min(bad, default=len(state["commits"]) - 1)


def plan(state: dict) -> dict | None:
    """The next step to run; None when the bisect is over (state["outcome"] set)."""
    settings, steps = state["settings"], state["steps"]
    if state["outcome"]:
        return None
    if not steps:
        return {"kind": "check", "index": None, "repeats": settings["repeats"], "runs": {}}
    last = steps[-1]
    if last["call"] == "inconclusive":
        if last["repeats"] >= settings["max_repeats"]:
            state["outcome"] = {"status": "inconclusive", "commit": last["commit"]}
            return None
        repeats = min(2 * last["repeats"], settings["max_repeats"])
        return {**{k: last[k] for k in ("kind", "index", "runs")}, "repeats": repeats}
    if last["kind"] == "check" and last["call"] == "not slower":
        state["outcome"] = {"status": "no regression"}
        return None
    low, high = interval(state)
    if high - low == 1:
        last_good = state["commits"][low] if low >= 0 else state["good"]
        state["outcome"] = {"status": "found", "first_bad": state["commits"][high]}
        state["outcome"].update(index=high, last_good=last_good)
        return None
    return {"kind": "candidate", "index": (low + high) // 2, "repeats": settings["repeats"]}


def _judge_check(rows: dict, rules: tuple) -> tuple:
    """-> ("slower", the cells slower at BAD), ("not slower", the nearest miss) when every
    interval rules out a slowdown past the threshold, else ("inconclusive", the cells whose
    interval reaches past it: "same" at 6.0 [0.58, 62] proves nothing)."""
    result = compare.compare(rows["good"], rows["bad"], *rules)
    slower = result[result["verdict"] == "slower"]
    timed = result[result["ratio"].notna()].sort_values("ratio", ascending=False)
    open_ended = timed[timed["ci_high"] > 1 + rules[0]]  # NaN (counted cells): never
    call, shown = ("slower", slower) if not slower.empty else ("inconclusive", open_ended)
    if shown.empty:
        call, shown = "not slower", timed.head(1)
    cells = [
        {"cell": {k: row[k] for k in CELL}, "vs_good": _evidence(row), "call": row["verdict"]}
        for row in shown.to_dict("records")
    ]
    return call, cells


def tracked(state: dict) -> list:
    """The cells the check found slower at BAD: (impl, workload, size, phase, measure) each."""
    check = next(s for s in state["steps"] if s["kind"] == "check" and s["call"] == "slower")
    return [tuple(c["cell"][k] for k in CELL) for c in check["cells"]]


def _judge_candidate(state: dict, rows: dict, rules: tuple) -> tuple:
    vs_good = _by_cell(compare.compare(rows["good"], rows["candidate"], *rules))
    vs_bad = _by_cell(compare.compare(rows["bad"], rows["candidate"], *rules))
    cells = []
    for key in tracked(state):
        against = {"vs_good": vs_good.get(key), "vs_bad": vs_bad.get(key)}
        evidence = {side: _evidence(row) if row else None for side, row in against.items()}
        verdicts = [(e or {}).get("verdict") for e in evidence.values()]
        cells.append({"cell": dict(zip(CELL, key)), **evidence, "call": cell_call(*verdicts)})
    return step_call([c["call"] for c in cells]), cells


def measure(state: dict, step: dict, results: Path, log=print) -> dict:
    """Run one step's commits interleaved (its earlier runs pooled in) -> its stored record."""
    settings, began = state["settings"], time.time()
    sides = {"good": state["good"], "bad": state["bad"]}
    if step["kind"] == "candidate":
        sides = {"good": state["good"], "candidate": state["commits"][step["index"]], **sides}
    earlier = step.get("runs") or {}
    new = step["repeats"] - len(next(iter(earlier.values()), []))
    rows = ab.interleave(
        sides, settings["run_args"], new, results, log, build_ext=settings["build_ext"]
    )
    runs = {side: [*earlier.get(side, []), *rows[side]["run_id"].unique()] for side in sides}
    table = store.load(results)
    pooled = {side: table[table["run_id"].isin(ids)] for side, ids in runs.items()}
    rules = tuple(settings[k] for k in ("threshold", "confidence", "count_threshold", "fdr"))
    if step["kind"] == "check":
        call, cells = _judge_check(pooled, rules)
    else:
        call, cells = _judge_candidate(state, pooled, rules)
    commit = sides.get("candidate", state["bad"])
    return {
        "kind": step["kind"],
        "index": step["index"],
        "commit": commit,
        "repeats": step["repeats"],
        "runs": runs,
        "call": call,
        "cells": cells,
        "seconds": round(time.time() - began, 1),
    }


def run(state: dict, path: Path, log=print, on_step=None) -> dict:
    """Step until the bisect is over, storing the state after every step -> the state.

    on_step(state, record) is called after each step is stored (the command prints it)."""
    path = Path(path)
    save(state, path)
    while (step := plan(state)) is not None:
        record = measure(state, step, path.parent, log)
        state["steps"].append(record)
        save(state, path)
        if on_step:
            on_step(state, record)
    save(state, path)  # with its outcome
    return state
