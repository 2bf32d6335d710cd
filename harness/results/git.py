"""Git for the harness's own use: a ref resolved safely to a commit, a commit checked out.

A ref comes from a user or a CI event and goes to git as an argument: one that begins with
`-` would be read as an option (`--upload-pack=...` runs a program), so refs are checked
against a plain pattern and resolved with `--end-of-options` before git acts on them.
"""

from __future__ import annotations

import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

from harness.results.machine import ROOT

SAFE_REF = re.compile(r"[A-Za-z0-9._/@{}~^:+-]+")


def run(*args, cwd=ROOT) -> str:
    """`git ARGS` in cwd -> its output; a RuntimeError with git's message when it fails."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def resolve(ref: str) -> str:
    """A ref that names a commit -> its full sha; anything else is refused with the reason."""
    if not ref or ref.startswith("-"):
        raise ValueError(f"ref {ref!r} refused: a ref may not be empty or begin with '-'")
    if not SAFE_REF.fullmatch(ref):
        raise ValueError(f"ref {ref!r} refused: expected a commit sha, branch or tag name")
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise ValueError(
            f"ref {ref!r} is not a commit of this repository "
            "(expected a sha, branch or tag; fetch it first if it is remote)"
        )
    return done.stdout.strip()


@contextmanager
def worktree(sha: str, parent: Path):
    """A detached checkout of sha under parent, removed (and pruned) on the way out."""
    path = parent / sha[:12]
    run("worktree", "add", "--detach", "--quiet", str(path), sha)
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)],
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True, timeout=120)
