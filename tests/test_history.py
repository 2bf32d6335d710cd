"""history: change points on synthetic histories with known steps, the commit order on a
throwaway repository, the `history` command end to end, the report's step markers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.history_calibration import history as synthetic
from harness import cli
from harness.compare import changepoints, history
from harness.report import trends
from harness.results import git

CELL = {"impl": "numpy", "workload": "xor", "size": "B=4", "phase": "fwd"}


def found_at(runs, **rules) -> list:
    return [s["index"] for s in changepoints.steps(runs, **rules)]


@pytest.mark.parametrize("k", [5, 15, 24])
def test_a_15_percent_step_is_found_at_its_commit(k):
    runs = synthetic(np.random.default_rng(k), 30, 0.02, step_at=k, ratio=1.15)
    (step,) = changepoints.steps(runs)
    assert step["index"] == k
    assert step["ratio"] == pytest.approx(1.15, rel=0.03)
    assert step["p"] < 1e-3


def test_two_steps_are_both_found():
    runs = synthetic(np.random.default_rng(2), 30, 0.02, step_at=10, ratio=1.15)
    runs = [r + (np.log(0.8) if i >= 20 else 0) for i, r in enumerate(runs)]
    steps = changepoints.steps(runs)
    assert [s["index"] for s in steps] == [10, 20]
    assert [round(s["ratio"], 1) for s in steps] == [1.1, 0.8]


@pytest.mark.parametrize("seed", range(5))
def test_noise_alone_has_no_step(seed):
    assert found_at(synthetic(np.random.default_rng(seed), 30, 0.03)) == []


def test_one_slow_run_is_not_a_step():
    runs = synthetic(np.random.default_rng(7), 30, 0.02)
    runs[15] = runs[15] + np.log(2.0)
    assert found_at(runs) == []
    assert found_at(runs, min_effect=0.0) == []  # not a cut the minimum effect then drops


def test_too_few_undisturbed_commits_is_too_short_not_a_history():
    """10 commits, one of them slowed 2x throughout: 9 keep a run, fewer than the
    calibration's 10, so no steps are reported from them."""
    runs = synthetic(np.random.default_rng(5), 10, 0.02)
    assert len(changepoints.steps(runs, min_commits=10)) == 0  # all 10 kept: a history
    runs[4] = runs[4] + np.log(2.0)
    with pytest.raises(changepoints.TooShort, match="9 commits kept an undisturbed run"):
        changepoints.steps(runs, min_commits=10)
    rows = pd.DataFrame({"position": range(10), "t_min_s": [np.exp(r[0]) for r in runs]})
    assert history.cell_steps(rows, [f"c{i}" for i in range(10)]) == {"commits": 10, "short": True}


def test_a_step_under_the_minimum_effect_is_dropped():
    runs = synthetic(np.random.default_rng(3), 30, 0.002, step_at=15, ratio=1.03)
    assert found_at(runs, min_effect=0.0) == [15]
    assert found_at(runs) == []


def git_in(repo, *args) -> str:
    return git.run(*args, cwd=repo)


@pytest.fixture
def repo(tmp_path):
    """main: c0 c1 c2 M c3, M merging branch b (b1 b2, from c1); other: o1 from c1, unmerged."""
    path = tmp_path / "repo"
    path.mkdir()
    git_in(path, "init", "--quiet", "--initial-branch=main")
    git_in(path, "config", "user.email", "t@example.com")
    git_in(path, "config", "user.name", "t")
    sha = {}

    def commit(name):
        git_in(path, "commit", "--quiet", "--allow-empty", "-m", name)
        sha[name] = git_in(path, "rev-parse", "HEAD")

    commit("c0"), commit("c1")
    git_in(path, "checkout", "--quiet", "-b", "b")
    commit("b1"), commit("b2")
    git_in(path, "checkout", "--quiet", "-b", "other", sha["c1"])
    commit("o1")
    git_in(path, "checkout", "--quiet", "main")
    commit("c2")
    git_in(path, "merge", "--quiet", "--no-ff", "-m", "M", "b")
    sha["M"] = git_in(path, "rev-parse", "HEAD")
    commit("c3")
    return path, sha


def rows_at(commits: list, seconds: list, dirty=False) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**CELL, "run_id": f"r{i}", "commit": c, "dirty": dirty, "status": "ok"}
            | {"t_min_s": s, "t_median_s": s * 1.01, "timestamp": f"2026-01-01T00:{i:02d}"}
            for i, (c, s) in enumerate(zip(commits, seconds))
        ]
    )


def test_order_is_first_parent_with_merged_and_other_branches_skipped(repo):
    path, sha = repo
    line, ancestors = history.first_parent_line(sha["c3"], cwd=path)
    assert line == [sha[n] for n in ("c0", "c1", "c2", "M", "c3")]
    names = ["c0", "c1", "c2", "c2", "b1", "o1", "M", "c3"]
    table = rows_at([sha[n] for n in names], [1.0] * len(names))
    table.loc[7, "dirty"] = True
    placed, skipped = history.place(table, line, ancestors, "main")
    assert list(placed["position"]) == [0, 1, 2, 2, 3]  # c2's two runs share one place
    why = {s["commit"]: s["why"] for s in skipped}
    assert why[sha["b1"]] == "on a merged branch, not on main's first-parent line"
    assert why[sha["o1"]].startswith("not in main's history")
    assert why[sha["c3"]].startswith("of a tree with uncommitted changes")


def test_runs_of_one_commit_are_pooled(repo):
    path, sha = repo
    line = [sha[n] for n in ("c0", "c1", "c2", "M", "c3")]
    table = rows_at([sha[n] for n in ("c0", "c1", "c2", "c2", "M", "c3")], [1, 1, 1, 2, 2, 2])
    placed, _ = history.place(table, line, set(line))
    assert history.cell_steps(placed, line) == {"commits": 5, "short": True}
    found = history.history(table, sha["c3"], cwd=path)
    assert found["commits"] == line and found["cells"][0]["short"]


def store_runs(root, commits: list, seconds: list, size: str = "B=4") -> None:
    folder = root / "box"
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows_at(commits, seconds).assign(machine="box", size=size).to_dict("records"):
        (folder / f"{size}-{row['run_id']}.jsonl").write_text(json.dumps(row) + "\n")


def real_line(n: int) -> list:
    line = git.run("rev-list", "--first-parent", "--max-count", str(n), "HEAD").split()[::-1]
    if len(line) < n:
        pytest.skip(f"this clone has {len(line)} first-parent commits; the test needs {n}")
    return line


def test_the_command_end_to_end(tmp_path, capsys):
    line = real_line(12)
    store_runs(tmp_path / "results", line, [1e-3] * 6 + [1.2e-3] * 6)
    store_runs(tmp_path / "results", line[:4], [1e-3] * 4, size="B=64")
    markdown, out = tmp_path / "steps.md", tmp_path / "steps.json"
    argv = ["history", "--results", str(tmp_path / "results"), "--machine", "box"]
    assert cli.main([*argv, "--markdown", str(markdown), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert line[6][:10] in printed and line[5][:10] in printed and "1.200" in printed
    assert "1 step in 1 cell, 0 steady, 1 too short" in markdown.read_text()
    assert "too short (fewer than 10 commits): 1 cell: numpy xor B=64 fwd (4)" in printed
    (step,) = json.loads(out.read_text())["steps"]
    assert (step["commit"], step["last_before"], step["commits"]) == (line[6], line[5], 12)
    assert cli.main([*argv, "--workload", "matmul"]) == 2
    assert "--workload matmul: no stored runs of it" in capsys.readouterr().err
    assert cli.main([*argv[:3], "--machine", "nowhere"]) == 2
    assert "no stored runs of machine 'nowhere'" in capsys.readouterr().err


def test_the_report_marks_a_step_with_its_ratio():
    line = real_line(12)
    rows = rows_at(line, [1e-3] * 6 + [1.3e-3] * 6).assign(flops=1.0)
    fig = trends.history(rows, ["numpy"])
    (ax,) = [a for a in fig.axes if a.get_title()]
    assert [t.get_text() for t in ax.texts] == ["1.30x"]
