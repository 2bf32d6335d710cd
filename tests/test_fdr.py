"""The grid as a whole: each cell's p-value from its own test, Benjamini-Hochberg q-values
over the timed cells, the false discovery rate as a third gate on a call, and the geometric
mean ratio with its interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from harness import cli, compare
from harness.compare import stats
from tests.test_compare import rows, store_runs


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def runs(minima_s, spread: float = 0.01) -> list:
    """One run per fastest round given: three rounds, the fastest first."""
    return [[m, m * (1 + spread), m * (1 + 2 * spread)] for m in minima_s]


def grid(cells: dict, run_id: str, commit: str) -> pd.DataFrame:
    """Rows of several runs: cells = {size: [runs]}; run i of every cell is run `run_id-i`."""
    out = []
    for size, cell_runs in cells.items():
        for i, samples in enumerate(cell_runs):
            out += rows(f"{run_id}-{i}", commit, {("numpy", size): samples})
    return pd.DataFrame(out)


def test_q_values_are_benjamini_hochberg_and_leave_untested_cells_out():
    p = pd.Series([0.01, np.nan, 0.04, 0.03, 0.5])
    q = compare.q_values(p)
    # BH by hand over the four p-values: sorted 0.01 0.03 0.04 0.5 -> p * 4 / rank, then the
    # running minimum from the largest down
    assert q[0] == pytest.approx(0.04) and q[3] == pytest.approx(0.04 * 4 / 3)
    assert q[2] == pytest.approx(0.04 * 4 / 3) and q[4] == pytest.approx(0.5)
    assert np.isnan(q[1])
    assert compare.q_values(pd.Series([np.nan])).isna().all()


def test_each_cells_p_value_comes_from_the_test_its_interval_does():
    rng = np.random.default_rng(3)
    base, head = 1e-3 * (1 + 0.03 * rng.standard_normal(12)), 1.05e-3 * np.ones(12)
    head = head * (1 + 0.03 * rng.standard_normal(12))
    *_, p = stats.ratio_test(runs(base), runs(head))  # 12 runs a side: Mann-Whitney U, exact
    u_test = scipy_stats.mannwhitneyu(np.log(head), np.log(base), method="exact")
    assert p == pytest.approx(u_test.pvalue)
    *_, p = stats.ratio_test(runs(base[:3]), runs(head[:3]))  # 3 a side: Welch's t
    welch = scipy_stats.ttest_ind(np.log(head[:3]), np.log(base[:3]), equal_var=False)
    assert p == pytest.approx(welch.pvalue)
    one_run = [list(1e-3 * (1 + 0.01 * rng.standard_normal(60)))]
    assert stats.ratio_test(one_run, one_run)[3] == 1.0  # a run against itself
    slower = [list(np.array(one_run[0]) * 1.3)]
    # the bootstrap's z-test reaches below 1 / RESAMPLES, as a grid of many cells needs
    assert stats.ratio_test(one_run, slower)[3] < 1e-6


def test_a_call_the_false_discovery_rate_does_not_allow_is_same():
    """One cell 20% slower in four runs of four, every run apart (p = 2/70 alone), among 49
    unchanged cells: past the threshold and its interval, but not past q <= 5%."""
    unchanged = runs([1.00e-3, 1.01e-3, 1.02e-3, 1.03e-3])
    base = {f"n={i}": unchanged for i in range(50)}
    head = {**base, "n=0": runs([1.20e-3, 1.21e-3, 1.22e-3, 1.23e-3])}
    base_rows, head_rows = grid(base, "b", "a" * 40), grid(head, "h", "b" * 40)
    alone = compare.compare(base_rows, head_rows, fdr=None).set_index("size")
    assert alone.loc["n=0", "ci_low"] > 1 and alone.loc["n=0", "verdict"] == "slower"
    assert alone.loc["n=0", "p"] == pytest.approx(2 / 70)
    gated = compare.compare(base_rows, head_rows).set_index("size")
    assert gated.loc["n=0", "q"] > 0.05 and gated.loc["n=0", "verdict"] == "same"
    assert set(gated["verdict"]) == {"same"} and not compare.regressed(gated.reset_index())


def test_unchanged_cells_that_pass_their_interval_by_luck_are_not_called():
    """200 cells of one run a side, each side the same distribution, threshold 0: some cells
    pass their 95% interval by luck, none passes the false discovery rate."""
    rng = np.random.default_rng(7)

    def side(run_id, commit):
        cells = {("numpy", f"n={i}"): list(rng.lognormal(-7, 0.05, 30)) for i in range(200)}
        return pd.DataFrame(rows(run_id, commit, cells))

    base, head = side("b", "a" * 40), side("h", "b" * 40)
    alone = compare.compare(base, head, threshold=0, fdr=None)
    assert (alone["verdict"] != "same").sum() >= 3
    assert (compare.compare(base, head, threshold=0)["verdict"] == "same").all()


def test_a_real_change_survives_the_false_discovery_rate():
    rng = np.random.default_rng(5)

    def side(factor_by_size):
        return {
            size: runs(1e-3 * factor * (1 + 0.02 * rng.standard_normal(12)))
            for size, factor in factor_by_size.items()
        }

    sizes = [f"n={i}" for i in range(30)]
    base = grid(side(dict.fromkeys(sizes, 1.0)), "b", "a" * 40)
    head = grid(side({s: 1.3 if i < 3 else 1.0 for i, s in enumerate(sizes)}), "h", "b" * 40)
    result = compare.compare(base, head).set_index("size")
    assert list(result.loc[sizes[:3], "verdict"]) == ["slower"] * 3
    assert (result.loc[sizes[3:], "verdict"] == "same").all()


def test_geometric_mean_and_its_t_interval_over_the_cells():
    ratio, low, high, cells = compare.geometric_mean([1.0, 1.21, np.nan], 0.95)
    assert (ratio, cells) == (pytest.approx(1.1), 2)
    logs = np.log([1.0, 1.21])
    half = scipy_stats.t.ppf(0.975, 1) * logs.std(ddof=1) / np.sqrt(2)
    assert (low, high) == (pytest.approx(1.1 * np.exp(-half)), pytest.approx(1.1 * np.exp(half)))
    ratio, low, high, cells = compare.geometric_mean([1.2], 0.95)
    assert ratio == pytest.approx(1.2) and cells == 1 and np.isnan(low) and np.isnan(high)
    assert compare.geometric_mean([], 0.95)[3] == 0


def test_tables_show_q_and_the_geometric_mean(rng):
    cells = {("numpy", "n=1"): list(rng.lognormal(-7, 0.01, 40))}
    slow = {("numpy", "n=1"): list(rng.lognormal(-7, 0.01, 40) * 1.3)}
    base, head = pd.DataFrame(rows("r1", "a" * 40, cells)), pd.DataFrame(rows("r2", "b" * 40, slow))
    result = compare.compare(base, head)
    terminal = compare.to_terminal(result).splitlines()
    assert terminal[0].split()[-2:] == ["q", "verdict"] and terminal[1].endswith("slower")
    assert terminal[-2].startswith("geometric mean head/base over 1 timed cells: 1.3")
    assert "q <= 5% (Benjamini-Hochberg over 1 timed cells)" in terminal[-1]
    markdown = compare.to_markdown(result, "main", "pr", fdr=None)
    assert "| CI | q | verdict |" in markdown and "no false discovery rate control" in markdown
    assert "geometric mean head/base over 1 timed cells" in markdown


def test_the_commands_take_fdr_and_no_fdr(tmp_path, capsys, rng):
    store_runs(
        tmp_path,
        [
            ("run-base", "a" * 40, {("numpy", "n=1"): list(rng.lognormal(-7, 0.01, 40))}),
            ("run-head", "b" * 40, {("numpy", "n=1"): list(rng.lognormal(-7, 0.01, 40))}),
        ],
    )
    where = ["--results", str(tmp_path)]
    assert cli.main(["compare", "run-base", "run-head", "--fdr", "0.1", *where]) == 0
    assert "q <= 10%" in capsys.readouterr().out
    assert cli.main(["compare", "run-base", "run-head", "--no-fdr", *where]) == 0
    assert "no false discovery rate control" in capsys.readouterr().out
    for bad in (["--fdr", "0"], ["--fdr", "1.5"], ["--fdr", "0.1", "--no-fdr"]):
        with pytest.raises(SystemExit) as done:
            cli.main(["compare", "run-base", "run-head", *bad, *where])
        assert done.value.code == 2
    assert "--fdr" in capsys.readouterr().err
    with pytest.raises(ValueError, match="false discovery rate must lie strictly between"):
        compare.compare(pd.DataFrame(), pd.DataFrame(), fdr=1.0)
