"""bisect: the first slow commit of a throwaway repository, found step by step, stopped and
continued; refused refs; a step that stays inconclusive; one real end-to-end bisect.

Most tests replace ab.interleave, the A/B under every step, by FakeAB: synthetic runs of a
throwaway 16-commit repository, stored as real ones are, so all else is real and fast.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import cli
from harness.compare import ab, bisect
from harness.results import git, store
from harness.results.machine import ROOT

CELLS = {"numpy": "B=4 layers=2-4-2 opt=sgd", "pure_python": "B=4 layers=2-4-2 opt=sgd"}
RUN_IDS = itertools.count()
FAST = ["--no-build", "--repeats", "6", "--workload", "xor"]


def commit_all(repo: Path, message: str) -> str:
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message],
        cwd=repo,
        check=True,
    )
    return git.run("rev-parse", "HEAD", cwd=repo)


def make_repo(repo: Path, commits: int) -> list:
    """GOOD and `commits` commits after it -> their shas, GOOD first."""
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shas = []
    for number in range(commits + 1):
        (repo / "notes.txt").write_text(f"commit {number}\n")
        shas.append(commit_all(repo, f"commit {number}"))
    return shas


@pytest.fixture
def shas(tmp_path, monkeypatch):
    """A 16-commit throwaway repository that refs resolve in (git.ROOT) for this test."""
    found = make_repo(tmp_path / "repo", 16)
    monkeypatch.setattr(git, "ROOT", tmp_path / "repo")
    return found


class FakeAB:
    """ab.interleave's stand-in: side -> commit in, stored synthetic runs out. A commit at or
    after slow[impl] (an index into shas) runs that impl's cell 15% slower; every run's time
    moves by 3% (lognormal) and its rounds by 1% around it, seeded."""

    def __init__(self, shas: list, slow: dict, stop_after: int | None = None, busy_calls=0):
        self.position = {sha: n for n, sha in enumerate(shas)}
        self.slow, self.stop_after, self.calls = slow, stop_after, []
        self.rng, self.busy_calls = np.random.default_rng(7), busy_calls

    def seconds(self, sha: str, impl: str) -> float:
        """A run's time; in the first busy_calls calls, on a busy machine: 0-60% more."""
        slowed = self.position[sha] >= self.slow.get(impl, len(self.position))
        busy = 1 + self.rng.uniform(0, 0.6) if len(self.calls) <= self.busy_calls else 1
        return 1e-4 * (1.15 if slowed else 1.0) * busy * self.rng.lognormal(0, 0.03)

    def rows(self, sha: str, meta: dict) -> list:
        """One run's rows: each cell's 10 rounds within 1% of the run's time."""
        return [
            {**meta, "impl": impl, "workload": "xor", "size": size, "phase": "fwd", "status": "ok"}
            | {"samples_s": list(self.seconds(sha, impl) * self.rng.lognormal(0, 0.01, 10))}
            for impl, size in CELLS.items()
        ]

    def __call__(self, refs, run_args, repeats, results, log=print, build_ext=True):
        if self.stop_after is not None and len(self.calls) == self.stop_after:
            raise KeyboardInterrupt  # as Ctrl-C (or SIGTERM, cli.Stopped) stops a step
        self.calls.append({side: self.position[sha] for side, sha in refs.items()})
        runs = {side: [] for side in refs}
        for _ in range(repeats):
            for side, sha in refs.items():
                run_id = f"{next(RUN_IDS):06d}-{side}"  # in the order they ran, as real ids
                meta = {"run_id": run_id, "timestamp": run_id, "commit": sha, "machine": "m"}
                (Path(results) / "m").mkdir(parents=True, exist_ok=True)
                (Path(results) / "m" / f"{run_id}.jsonl").write_text(
                    "".join(json.dumps(row) + "\n" for row in self.rows(sha, meta))
                )
                runs[side].append(run_id)
        table = store.load(results)
        return {side: table[table["run_id"].isin(ids)] for side, ids in runs.items()}


def bisect_cli(shas, tmp_path, *extra) -> int:
    return cli.main(["bisect", shas[0], shas[-1], "--results", str(tmp_path / "b"), *FAST, *extra])


def stored(tmp_path) -> dict:
    return json.loads((tmp_path / "b" / bisect.STATE).read_text())


@pytest.mark.parametrize("culprit", [1, 11, 16])
def test_names_the_culprit_with_its_evidence_in_log2_n_plus_2_steps(
    shas, tmp_path, monkeypatch, capsys, culprit
):
    fake = FakeAB(shas, {"numpy": culprit})
    monkeypatch.setattr(ab, "interleave", fake)
    assert bisect_cli(shas, tmp_path) == 0
    state, out = stored(tmp_path), capsys.readouterr().out
    assert state["outcome"]["first_bad"] == shas[culprit]
    assert len(state["steps"]) <= 4 + 2  # ceil(log2 16) + 2
    assert fake.calls[0] == {"good": 0, "bad": 16}  # the check: GOOD against BAD alone
    assert all(set(call) == {"good", "candidate", "bad"} for call in fake.calls[1:])
    assert [c["cell"]["impl"] for c in state["steps"][0]["cells"]] == ["numpy"]  # tracked
    for step in state["steps"][1:]:
        assert len(step["runs"]["candidate"]) == 6 and step["call"] in ("good", "bad")
        (cell,) = step["cells"]
        assert {"ratio", "ci_low", "ci_high", "q", "verdict"} <= set(cell["vs_good"])
    assert f"first bad commit: {shas[culprit]} 'commit {culprit}'" in out
    evidence = r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] q=\S+ \w+"
    printed = re.findall(rf"numpy xor \S+ \S+ \S+ fwd: C/GOOD {evidence}; C/BAD {evidence}", out)
    assert len(printed) == len(state["steps"]) - 1  # every candidate's evidence, printed


def test_a_bisect_stopped_after_step_2_continues_from_its_stored_steps(shas, tmp_path, monkeypatch):
    monkeypatch.setattr(ab, "interleave", FakeAB(shas, {"numpy": 11}, stop_after=2))
    assert bisect_cli(shas, tmp_path) == 130
    before = stored(tmp_path)["steps"]
    assert len(before) == 2 and stored(tmp_path)["outcome"] is None
    rest = FakeAB(shas, {"numpy": 11})
    monkeypatch.setattr(ab, "interleave", rest)
    assert bisect_cli(shas, tmp_path) == 0  # the same command again
    after = stored(tmp_path)
    assert after["steps"][:2] == before and after["outcome"]["first_bad"] == shas[11]
    assert rest.calls[0]["candidate"] == after["steps"][2]["index"] + 1 != 8  # not redone
    assert len(rest.calls) == len(after["steps"]) - 2


def test_other_options_are_refused_and_resume_alone_takes_the_stored_ones(
    shas, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(ab, "interleave", FakeAB(shas, {"numpy": 3}, stop_after=1))
    assert bisect_cli(shas, tmp_path) == 130
    assert bisect_cli(shas, tmp_path, "--threshold", "0.2") == 2
    assert "was started with threshold=0.1" in capsys.readouterr().err
    monkeypatch.setattr(ab, "interleave", FakeAB(shas, {"numpy": 3}))
    assert cli.main(["bisect", "--resume", "--results", str(tmp_path / "b")]) == 0
    assert stored(tmp_path)["outcome"]["first_bad"] == shas[3]


@pytest.mark.parametrize(
    "refs, expected",
    [
        (["--", "-x", "HEAD"], "refused"),
        (["--", "HEAD", "--upload-pack=x"], "refused"),
        (["no-such-branch", "HEAD"], "not a commit"),
        (["HEAD^{tree}", "HEAD"], "not a commit"),
        (["HEAD", "HEAD~3"], "not on BAD"),  # GOOD after BAD
        (["HEAD", "HEAD"], "one commit"),
    ],
)
def test_refs_that_are_not_commits_or_begin_with_a_dash_are_refused(
    shas, tmp_path, monkeypatch, capsys, refs, expected
):
    fake = FakeAB(shas, {})
    monkeypatch.setattr(ab, "interleave", fake)
    assert cli.main(["bisect", "--results", str(tmp_path / "b"), *FAST, *refs]) == 2
    assert expected in capsys.readouterr().err and fake.calls == []


@pytest.mark.parametrize("repeats", ["1", "0"])  # 0 is refused too, not taken as the default
def test_a_single_run_a_step_is_refused(shas, tmp_path, capsys, repeats):
    assert bisect_cli(shas, tmp_path, "--repeats", repeats) == 2
    assert f"got {repeats}: a step never trusts one run" in capsys.readouterr().err


@pytest.mark.parametrize("field", ["good", "commits", "steps"])
def test_a_stored_state_naming_no_sha_is_refused_before_git_sees_it(
    shas, tmp_path, monkeypatch, capsys, field
):
    """A state file from elsewhere (a CI artifact) reaches git on --resume: a commit in it
    that is an option ("--output=...") or no full sha is refused, naming the field."""
    monkeypatch.setattr(ab, "interleave", FakeAB(shas, {"numpy": 3}, stop_after=1))
    assert bisect_cli(shas, tmp_path) == 130
    state = stored(tmp_path)
    hostile = "--output=" + str(tmp_path / "clobbered")
    if field == "good":
        state["good"] = hostile
    elif field == "commits":
        state["commits"][2] = hostile
    else:
        state["steps"][0]["commit"] = hostile
    (tmp_path / "b" / bisect.STATE).write_text(json.dumps(state))
    assert cli.main(["bisect", "--resume", "--results", str(tmp_path / "b")]) == 2
    assert f"is {hostile!r}, expected a commit's full sha" in capsys.readouterr().err
    assert not (tmp_path / "clobbered").exists()


def test_good_not_faster_than_bad_stops_after_the_check(shas, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ab, "interleave", FakeAB(shas, {}))
    assert bisect_cli(shas, tmp_path) == 1
    assert len(stored(tmp_path)["steps"]) == 1
    assert "is not faster than BAD" in capsys.readouterr().out


def test_a_check_too_noisy_to_rule_out_a_slowdown_is_run_again_before_no_regression(
    shas, tmp_path, monkeypatch, capsys
):
    """No commit is slower, but the check's first runs met a busy machine (0-60% more each):
    "same" with an interval reaching past the threshold proves nothing, so the check runs
    again with twice the runs before it says there is nothing to bisect."""
    fake = FakeAB(shas, {}, busy_calls=1)
    monkeypatch.setattr(ab, "interleave", fake)
    assert bisect_cli(shas, tmp_path) == 1
    steps = stored(tmp_path)["steps"]
    assert [(s["kind"], s["repeats"], s["call"]) for s in steps] == [
        ("check", 6, "inconclusive"),
        ("check", 12, "not slower"),
    ]
    assert any(c["vs_good"]["ci_high"] > 1.1 for c in steps[0]["cells"])
    assert all(c["vs_good"]["ci_high"] <= 1.1 for c in steps[1]["cells"])
    assert "is not faster than BAD" in capsys.readouterr().out


def test_a_check_that_stays_too_noisy_gives_up_saying_why(shas, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ab, "interleave", FakeAB(shas, {}, busy_calls=99))
    assert bisect_cli(shas, tmp_path, "--max-repeats", "12") == 1
    steps = stored(tmp_path)["steps"]
    assert [(s["kind"], s["call"]) for s in steps] == [("check", "inconclusive")] * 2
    out = capsys.readouterr().out
    assert "gave up on the check of BAD" in out and "a slowdown is not ruled out" in out


def test_an_inconclusive_step_gets_more_runs_then_gives_up_naming_the_commit(
    shas, tmp_path, monkeypatch, capsys
):
    # two regressions: numpy's at commit 5, pure_python's at 12; commit 8 is bad for one
    # cell and good for the other, however many runs it gets
    monkeypatch.setattr(ab, "interleave", FakeAB(shas, {"numpy": 5, "pure_python": 12}))
    assert bisect_cli(shas, tmp_path, "--max-repeats", "24") == 1
    steps = stored(tmp_path)["steps"]
    assert [(s["index"], s["repeats"], s["call"]) for s in steps[1:]] == [
        (7, 6, "inconclusive"),
        (7, 12, "inconclusive"),
        (7, 24, "inconclusive"),
    ]
    assert len(set(steps[-1]["runs"]["candidate"])) == 24  # the earlier runs pooled in
    assert {c["call"] for c in steps[-1]["cells"]} == {"bad", "good"}
    out = capsys.readouterr().out
    assert f"gave up at commit {shas[8][:10]} 'commit 8': still inconclusive with 24" in out


def test_a_cell_call_needs_both_verdicts_and_a_step_call_no_contradiction():
    assert bisect.cell_call("slower", "same") == "bad"
    assert bisect.cell_call("slower", "faster") == "bad"  # part of the slowdown is there
    assert bisect.cell_call("same", "faster") == "good"
    assert bisect.cell_call("same", "same") == "unclear"
    assert bisect.cell_call("slower", "slower") == "unclear"
    assert bisect.cell_call("faster", "faster") == "unclear"
    assert bisect.step_call(["bad", "unclear"]) == "bad"
    assert bisect.step_call(["bad", "good"]) == "inconclusive"
    assert bisect.step_call(["unclear"]) == "inconclusive"


@pytest.mark.slow
def test_a_real_bisect_finds_the_padded_commit(tmp_path):
    """A copy of this working tree as GOOD, then the commit that pads numpy's cells 5x
    (benchmarks/ab_commits.py's PADDING) and one after it as BAD: real worktrees, real runs.
    5x, not 2x: a CI machine's neighbour once slowed a GOOD run of these 20 ms cells enough
    that 2x read as 1.12 [0.93, 1.35] over 2 runs a side; the test is of the walk, not of
    how small a slowdown 2 runs resolve (benchmarks/bisect_trials.py measures that)."""
    from benchmarks.ab_commits import PADDING

    repo = tmp_path / "repo"
    files = git.run("ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    good = commit_all(repo, "good")
    lifecycle = repo / "harness" / "execute" / "lifecycle.py"
    padding = PADDING.format(impl="numpy", slowdown=4.0, percent=400, clock="perf_counter")
    lifecycle.write_text(lifecycle.read_text() + padding)
    culprit = commit_all(repo, "numpy 5x slower")
    (repo / "notes.txt").write_text("after the culprit\n")
    bad = commit_all(repo, "bad")
    grid = ["--impl=numpy", "--workload=xor", "--phase=fwd", "--time-per-cell=0.02"]
    done = subprocess.run(
        [sys.executable, "-m", "harness", "bisect", good, bad, *grid, "--repeats=2", "--no-build"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo), "OPENBLAS_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"first bad commit: {culprit}" in done.stdout
    assert "git worktree" not in done.stderr
