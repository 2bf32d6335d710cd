"""The throwaway commits the trials of `ab` run against (benchmarks/ab_trials.py).

- slowed_commit: the runner pads one impl's cells by a fraction of their time;
- cpu_clock_commit: timing rounds in process CPU time, an experiment for a CPU-time mode.

Why the slowdown is a throwaway commit that pads cells, not an edit to an impl's ops: it
touches nothing in the repository (the commit lives only in a temporary worktree, and git
drops it), and padding each call of the impl's cells where the lifecycle checks them (its
`check`, rebound in harness/execute/lifecycle.py, where run_cell looks it up) makes
every cell exactly 15% slower, whereas slowing the ops would be diluted, by a different
amount per cell, by the harness's model code between them. The padding is a busy wait, so
it loads the core as real work does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.results import git

PADDING = """

# ---- injected by benchmarks/ab_trials.py: {impl}'s cells {percent}% slower ----
import time as _time  # noqa: E402

from harness.execute.grid import SEED as _SEED  # noqa: E402

_check_unpadded = check


def check(impl, cell, budget, seed=_SEED):
    row, fn = _check_unpadded(impl, cell, budget, seed)
    if fn is None or cell.impl != {impl!r}:
        return row, fn

    def padded():
        start = _time.{clock}()
        out = fn()
        end = start + (_time.{clock}() - start) * (1 + {slowdown!r})
        while _time.{clock}() < end:
            pass
        return out
    return row, padded
"""


def throwaway_commit(base_sha: str, path: str, edit, message: str) -> str:
    """A commit on top of base_sha with edit(text) applied to one file; only git's objects
    keep it (no branch points at it, and its worktree is removed)."""
    with (
        tempfile.TemporaryDirectory(prefix="nnladder-trials-") as tmp,
        git.worktree(base_sha, Path(tmp)) as tree,
    ):
        source = tree / path
        text = source.read_text()
        source.write_text(edit(text))
        if source.read_text() == text:
            raise RuntimeError(f"{message}: the edit changed nothing in {path}")
        git.run(
            "-c",
            "user.name=ab_trials",
            "-c",
            "user.email=ab_trials@localhost",
            "commit",
            "-q",
            "-am",
            f"throwaway: {message}",
            cwd=tree,
        )
        return git.run("rev-parse", "HEAD", cwd=tree)


def slowed_commit(base_sha: str, impl: str, slowdown: float, clock: str) -> str:
    """base_sha with the lifecycle padding impl's cells by `slowdown`, measured on `clock`."""
    padding = PADDING.format(
        impl=impl, slowdown=slowdown, percent=round(slowdown * 100), clock=clock
    )
    return throwaway_commit(
        base_sha,
        "harness/execute/lifecycle.py",
        lambda text: text + padding,
        f"{impl} {slowdown:.0%} slower",
    )


def cpu_clock_commit(base_sha: str) -> str:
    """base_sha timing rounds in process CPU time: the time a neighbour's job takes the core
    away stops counting (an experiment for a CPU-time mode, not what the harness does)."""

    def edit(text):
        start, end = text.index("def _round("), text.index("def measure(")
        return (
            text[:start]
            + text[start:end].replace("time.perf_counter()", "time.process_time()")
            + text[end:]
        )

    return throwaway_commit(base_sha, "harness/measure/timing.py", edit, "rounds timed in CPU time")
