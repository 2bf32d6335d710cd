"""ab: refs refused before git sees them, worktrees cleaned up, builds and runs that fail."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import cli
from harness.compare import ab
from harness.results import git
from harness.results.machine import ROOT


@pytest.mark.parametrize(
    "ref", ["-x", "--upload-pack=touch /tmp/pwned", "", "HEAD; rm -rf /", "a b", "--output=/tmp/x"]
)
def test_unsafe_refs_are_refused(ref):
    with pytest.raises(ValueError, match="refused"):
        git.resolve(ref)


def test_refs_that_are_not_commits_are_refused():
    with pytest.raises(ValueError, match="not a commit"):
        git.resolve("no-such-branch-anywhere")
    tree = subprocess.run(
        ["git", "rev-parse", "HEAD^{tree}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    with pytest.raises(ValueError, match="not a commit"):
        git.resolve(tree)  # a tree object: a valid name, but not a commit


def test_head_resolves_to_its_sha():
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git.resolve("HEAD") == sha


def test_command_refuses_a_dash_ref(capsys):
    assert cli.main(["ab", "--", "--upload-pack=x", "HEAD"]) == 2
    assert "refused" in capsys.readouterr().err


def test_an_unwritable_markdown_file_is_refused_before_any_run(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file where a folder must be")
    markdown = tmp_path / "taken" / "comment.md"
    assert cli.main(["ab", "HEAD", "HEAD", "--markdown", str(markdown)]) == 2
    out, err = capsys.readouterr()
    assert "taken is a file, not a folder" in err and "ab:" not in out


def test_failed_build_says_why(tmp_path):
    (tmp_path / "setup.py").write_text("raise SystemExit('no compiler for this test')\n")
    with pytest.raises(RuntimeError, match="build_ext --inplace.*\n.*no compiler for this test"):
        ab.build(tmp_path)


def test_failed_run_says_why(tmp_path):
    # An unknown impl fails whether or not the harness is installed (as CI installs it).
    with pytest.raises(RuntimeError, match="(?s)failed .exit 2, 0 runs stored.*unknown impl"):
        ab.run_once(ROOT, tmp_path / "results", ["--quick", "--impl", "nope"])


def worktrees() -> str:
    return subprocess.run(
        ["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.slow
def test_ab_interleaves_runs_and_removes_its_worktree(tmp_path, monkeypatch):
    parent = tmp_path / "worktrees"  # where ab's temporary folder (and worktree) goes
    parent.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    logged = []
    monkeypatch.chdir(tmp_path)  # a relative results folder is the caller's, not the worktree's
    base, head = ab.ab(
        "HEAD",
        "HEAD",
        ["--quick", "--impl=numpy", "--workload=xor"],
        repeats=2,
        results=Path("runs"),
        log=logged.append,
        build_ext=False,
    )
    assert len(list((tmp_path / "runs").glob("*/*.jsonl"))) == 4
    assert [line.split()[1] for line in logged] == ["base", "head", "base", "head"]
    for side in (base, head):
        assert side["run_id"].nunique() == 2
        assert set(side["status"]) == {"ok"}
        assert len(side) == 2 * 3  # xor: fwd, bwd, step, in each of two runs
    assert not set(base["run_id"]) & set(head["run_id"])
    assert base["commit"].iloc[0] == git.resolve("HEAD")
    assert str(parent) not in worktrees()
    assert list(parent.iterdir()) == []


def test_the_trials_padding_slows_the_chosen_impls_cells_through_the_lifecycle(monkeypatch):
    """benchmarks/ab_trials.py's slowed commit appends PADDING to lifecycle.py: the padded
    module must run, and pad the chosen impl's calls only, by the fraction asked."""
    import sys
    import types

    from benchmarks import ab_commits
    from harness import registry
    from harness.execute import grid, lifecycle

    source = Path(lifecycle.__file__).read_text() + ab_commits.PADDING.format(
        impl="numpy", slowdown=1.0, percent=100, clock="perf_counter"
    )
    padded = types.ModuleType("padded_lifecycle")
    monkeypatch.setitem(sys.modules, "padded_lifecycle", padded)  # its dataclasses look it up
    exec(compile(source, "padded_lifecycle", "exec"), padded.__dict__)
    assert padded.run_cell.__globals__["check"] is padded.check  # what run_cell calls
    size = (("M", 16), ("K", 16), ("N", 16))
    _, fn = padded.check(registry.create("numpy"), grid.Cell("numpy", "matmul", size, "fwd"), None)
    ticks = iter(range(100))  # a clock that moves 1 s a read: the call "takes" 1 s
    monkeypatch.setattr(padded, "_time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    fn()
    assert fn.__name__ == "padded" and next(ticks) == 3  # 0 start, 1 after, 2 = 1 s more
    _, other = padded.check(
        registry.create("c-blocked"), grid.Cell("c-blocked", "matmul", size, "fwd"), None
    )
    assert other.__name__ != "padded"
