"""compare: the bootstrap interval, the verdicts, the tables, and the `compare` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness import cli, compare
from harness.compare import stats
from harness.results import machine, store


@pytest.fixture
def rng():
    """A generator of each test's own, so no test's draws depend on which ran before it."""
    return np.random.default_rng(1)


def samples(rng, centre: float, spread: float = 0.01, n: int = 60) -> list:
    """Round times around centre, with a relative spread and a few slow outliers."""
    values = centre * (1 + spread * rng.standard_normal(n))
    values[:3] *= 1.5  # a neighbour's burst: the median must not care
    return list(values)


def test_same_distribution_is_same(rng):
    ratio, low, high, _ = compare.ratio_test([samples(rng, 1e-3)], [samples(rng, 1e-3)])
    assert low < 1 < high
    assert abs(ratio - 1) < 0.02
    assert compare.verdict(ratio, low, high) == "same"


@pytest.mark.parametrize("factor, expected", [(1.2, "slower"), (1 / 1.2, "faster")])
def test_clear_change_past_threshold_is_flagged(factor, expected, rng):
    ratio, low, high, _ = compare.ratio_test([samples(rng, 1e-3)], [samples(rng, 1e-3 * factor)])
    assert ratio == pytest.approx(factor, rel=0.02)
    assert compare.verdict(ratio, low, high) == expected


def test_significant_but_small_change_is_same(rng):
    base, head = [samples(rng, 1e-3, 0.001)], [samples(rng, 1.05e-3, 0.001)]
    ratio, low, high, _ = compare.ratio_test(base, head)
    assert low > 1  # significant...
    assert compare.verdict(ratio, low, high) == "same"  # ...but under the 10% threshold
    assert compare.verdict(ratio, low, high, threshold=0.02) == "slower"


def test_large_but_noisy_change_is_same():
    spread = np.array([0.5, 0.7, 0.9, 1.0, 1.1, 1.4, 1.8]) * 1e-3
    ratio, low, high, _ = compare.ratio_test([spread], [spread * 1.3])
    assert ratio == pytest.approx(1.3) and low < 1
    assert compare.verdict(ratio, low, high) == "same"


def test_run_to_run_drift_widens_the_interval(rng):
    """Two runs a side that disagree: the interval must carry that drift, not only rounds."""
    base = [samples(rng, 1.0e-3, 0.002), samples(rng, 1.3e-3, 0.002)]
    head = [samples(rng, 1.3e-3, 0.002), samples(rng, 1.35e-3, 0.002)]
    _, low_runs, _, _ = compare.ratio_test(base, head)
    _, low_pooled, _, _ = compare.ratio_test([base[0] + base[1]], [head[0] + head[1]])
    assert low_runs < 1 < low_pooled


def test_runs_that_other_work_slowed_down_do_not_decide_the_verdict(rng):
    """8 runs a side, two of BASE's slowed 2x from start to end by a neighbour's job: the
    15% slowdown of HEAD is still seen, and the same runs against themselves are "same"."""
    base = [samples(rng, 1e-3 * (2.0 if i in (1, 5) else 1.0), 0.01) for i in range(8)]
    head = [samples(rng, 1.15e-3, 0.01) for _ in range(8)]
    ratio, low, high, _ = compare.ratio_test(base, head)
    assert ratio == pytest.approx(1.15, rel=0.03) and low > 1.05
    assert compare.verdict(ratio, low, high) == "slower"
    means = [np.log(np.min(r)) for r in base], [np.log(np.min(r)) for r in head]
    t_ratio = np.exp(np.mean(means[1]) - np.mean(means[0]))
    assert t_ratio < 1.05  # a mean of the logs is dragged down to "same" by the two runs
    clean = [samples(rng, 1e-3, 0.01) for _ in range(8)]
    assert compare.verdict(*compare.ratio_test(base, clean)[:3]) == "same"
    busy = [samples(rng, 1e-3 * (2.0 if i % 3 else 1.0), 0.01) for i in range(8)]  # 5 of 8 slowed
    assert compare.verdict(*compare.ratio_test(clean, busy)[:3]) == "same"


def test_one_undisturbed_run_on_each_side_is_compared_by_its_rounds(rng):
    base = [samples(rng, 1e-3), samples(rng, 3e-3)]
    head = [samples(rng, 1.3e-3), samples(rng, 4e-3)]
    assert compare.ratio_test(base, head) == compare.ratio_test(base[:1], head[:1])
    assert compare.side_time(base) == pytest.approx(np.median(base[0]))


def test_rank_interval_needs_four_runs_a_side_and_falls_back_to_welch(rng):
    assert [stats._u_cut(n, n, 0.95) for n in (3, 4, 5, 8)] == [0, 1, 3, 14]
    assert stats._u_cut(10, 12, 0.95) == 30  # the tables' critical U of 29, plus one
    base, head = [samples(rng, 1e-3) for _ in range(3)], [samples(rng, 1.3e-3) for _ in range(3)]
    ratio, low, high, _ = compare.ratio_test(base, head)  # Welch: three runs of clean data
    assert ratio == pytest.approx(1.3, rel=0.03) and low > 1.1


def test_interval_is_deterministic(rng):
    base, head = [samples(rng, 1e-3, 0.1)], [samples(rng, 1.1e-3, 0.1)]
    assert compare.ratio_test(base, head) == compare.ratio_test(base, head)


def rows(run_id, commit, cells, status="ok"):
    """Result rows: cells = {(impl, size): samples}."""
    out = []
    for (impl, size), values in cells.items():
        out.append(
            {
                "run_id": run_id,
                "timestamp": run_id,
                "commit": commit,
                "dirty": False,
                "machine": machine.machine_name(),
                "impl": impl,
                "device": "cpu",
                "workload": "matmul",
                "size": size,
                "phase": "fwd",
                "status": status,
                "reason": "",
                "t_median_s": float(np.median(values)) if values else None,
                "samples_s": values,
            }
        )
    return out


def test_compare_covers_every_cell_and_status(rng):
    base = pd.DataFrame(
        rows(
            "r1",
            "a" * 40,
            {
                ("numpy", "n=1"): samples(rng, 1e-3),
                ("numpy", "n=2"): samples(rng, 2e-3),
                ("numpy", "n=3"): samples(rng, 3e-3),
            },
        )
        + [
            {
                "run_id": "r1",
                "commit": "a" * 40,
                "impl": "numpy",
                "workload": "train",
                "size": "",
                "phase": "step",
                "status": "ok",
                "samples_s": None,
            }
        ]
    )
    head = pd.DataFrame(
        rows(
            "r2",
            "b" * 40,
            {
                ("numpy", "n=1"): samples(rng, 1e-3),
                ("numpy", "n=2"): samples(rng, 3e-3),
                ("numpy", "n=4"): samples(rng, 1e-3),
            },
        )
        + rows("r2", "b" * 40, {("numpy", "n=3"): []}, status="wrong")
    )
    result = compare.compare(base, head).set_index("size")
    assert "train" not in set(result["workload"])
    assert result.loc["n=1", "verdict"] == "same"
    assert result.loc["n=2", "verdict"] == "slower"
    assert result.loc["n=3", "verdict"] == "broken"
    assert result.loc["n=4", "verdict"] == "new"
    assert compare.regressed(result.reset_index())
    terminal = compare.to_terminal(result.reset_index())
    assert "slower" in terminal and "4 cells" in terminal
    markdown = compare.to_markdown(result.reset_index(), "main", "pr|1")
    assert "significant regression" in markdown and "pr\\|1" not in markdown.split("\n")[0]
    assert markdown.count("| numpy |") >= 4


def test_no_regression_when_only_faster(rng):
    base = pd.DataFrame(rows("r1", "a" * 40, {("numpy", "n=1"): samples(rng, 2e-3)}))
    head = pd.DataFrame(rows("r2", "b" * 40, {("numpy", "n=1"): samples(rng, 1e-3)}))
    result = compare.compare(base, head)
    assert list(result["verdict"]) == ["faster"]
    assert not compare.regressed(result)


def test_bad_options_are_refused(rng):
    frame = pd.DataFrame(rows("r1", "a" * 40, {("numpy", "n=1"): samples(rng, 1e-3)}))
    with pytest.raises(ValueError, match="confidence"):
        compare.compare(frame, frame, confidence=95)
    with pytest.raises(ValueError, match="threshold"):
        compare.compare(frame, frame, threshold=-0.1)


def store_runs(root, runs):
    for run_id, commit, cells in runs:
        writer = store.RunWriter(run_id, machine.machine_name(), root)
        for row in rows(run_id, commit, cells):
            writer.append(row)


def test_command_exit_codes_and_markdown(tmp_path, capsys, rng):
    store_runs(
        tmp_path,
        [
            ("run-base", "a" * 40, {("numpy", "n=1"): samples(rng, 1e-3)}),
            ("run-fast", "b" * 40, {("numpy", "n=1"): samples(rng, 1e-3)}),
            ("run-slow", "c" * 40, {("numpy", "n=1"): samples(rng, 1.3e-3)}),
        ],
    )
    md = tmp_path / "pr" / "comment.md"  # its folder is made on the way
    assert cli.main(["compare", "aaaa", "bbbbbbb", "--results", str(tmp_path)]) == 0
    assert (
        cli.main(
            ["compare", "run-base", "run-slow", "--results", str(tmp_path), "--markdown", str(md)]
        )
        == 1
    )
    assert "slower" in md.read_text()
    assert cli.main(["compare", "aaaa", "dddd", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no stored results for 'dddd'" in err and "aaaaaaaaaa" in err


def test_a_cell_with_an_unstable_run_on_either_side_is_marked_and_counted(rng):
    """The marker and the count come from the rows' `unstable` flag; the verdict stands. Rows
    stored before the stability check have no flag and read as stable."""
    cells = {
        ("numpy", "n=1"): samples(rng, 1e-3),
        ("numpy", "n=2"): samples(rng, 2e-3),
        ("c", "n=1"): samples(rng, 1e-3),
    }
    base = pd.DataFrame(rows("r1", "a" * 40, cells))  # an old run: no `unstable` column
    head = pd.DataFrame(rows("r2", "b" * 40, cells)).assign(unstable=[True, False, False])
    result = compare.compare(base, head)
    assert list(result["unstable"]) == [True, False, False]
    assert list(result["verdict"]) == ["same"] * 3
    terminal = compare.to_terminal(result).splitlines()
    assert terminal[1].endswith("same !") and terminal[2].endswith("same")
    assert "1 marked !: a run of either side was unstable" in terminal[-1]
    markdown = compare.to_markdown(result, "main", "pr")
    assert "| numpy | matmul | n=1 | fwd |" in markdown and "| same ! |" in markdown
    assert "Cells that changed" not in markdown  # unstable is not a change
    assert "1 marked !" in markdown
    stable = compare.compare(base, base)
    assert not stable["unstable"].any() and "marked" not in compare.to_terminal(stable)
