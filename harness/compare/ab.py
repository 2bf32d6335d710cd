"""A/B runs: two commits, each in its own git worktree, run interleaved on this machine.

Each commit is checked out (detached) in a worktree under a temporary folder
(harness/results/git.py), its C extension built in place where it has a setup.py, and
`python -m harness run` started there, with the worktree as the working directory and
PYTHONPATH, so each side runs its own harness and impls, and its rows carry its own commit.
Runs alternate A B A B ... (or A B C A B C ..., as `bisect` runs three commits): whatever
drifts on the machine over the minutes (clock, heat, a neighbour's job) lands on every side
alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from harness.results import git, store


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def build(tree: Path) -> None:
    """Build the C extension in place when the commit has a setup.py; say why if it fails."""
    if not (tree / "setup.py").exists():
        return
    done = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"building the C extension of {tree.name} failed "
            f"(python setup.py build_ext --inplace, exit {done.returncode}):\n"
            f"{_tail(done.stdout + done.stderr)}"
        )


def run_once(tree: Path, results: Path, run_args: list) -> str:
    """One `python -m harness run` in a worktree -> the id of the run it stored."""
    before = set(results.glob("*/*.jsonl"))
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--no-report",
            "--results",
            str(results),
            *run_args,
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    new = sorted(set(results.glob("*/*.jsonl")) - before)
    if done.returncode != 0 or len(new) != 1:
        raise RuntimeError(
            f"`python -m harness run {' '.join(run_args)}` at {tree.name} "
            f"failed (exit {done.returncode}, {len(new)} runs stored):\n"
            f"{_tail(done.stdout + done.stderr)}"
        )
    return new[0].stem


def interleave(
    refs: dict, run_args: list, repeats: int, results: Path, log=print, build_ext: bool = True
) -> dict:
    """side -> ref: each side's commit run `repeats` times, in turn (A B C A B C ...) -> side
    -> its rows. Sides that name one commit share one checkout; their runs still alternate.

    build_ext=False skips building the C extension, for grids without a C impl."""
    if repeats < 1:
        raise ValueError(f"repeats must be 1 or more, got {repeats}")
    shas = {side: git.resolve(ref) for side, ref in refs.items()}
    results = Path(results).resolve()  # the runs' working directory is their worktree
    results.mkdir(parents=True, exist_ok=True)
    runs = {side: [] for side in shas}
    # the stack removes the worktrees before their temporary folder goes
    with tempfile.TemporaryDirectory(prefix="nnladder-ab-") as tmp, ExitStack() as stack:
        trees = {
            sha: stack.enter_context(git.worktree(sha, Path(tmp)))
            for sha in dict.fromkeys(shas.values())
        }
        for tree in trees.values() if build_ext else ():
            build(tree)
        for repeat in range(repeats):
            for side, sha in shas.items():
                log(f"ab: {side} {sha[:10]} run {repeat + 1}/{repeats}")
                runs[side].append(run_once(trees[sha], results, run_args))
    table = store.load(results)
    return {side: table[table["run_id"].isin(ids)] for side, ids in runs.items()}


def ab(
    base_ref: str,
    head_ref: str,
    run_args: list,
    repeats: int,
    results: Path,
    log=print,
    build_ext: bool = True,
) -> tuple:
    """Run BASE and HEAD interleaved `repeats` times each -> (base rows, head rows); build_ext
    as for interleave."""
    rows = interleave(
        {"base": base_ref, "head": head_ref}, run_args, repeats, results, log, build_ext
    )
    return rows["base"], rows["head"]
