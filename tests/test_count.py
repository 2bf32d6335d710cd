"""Instruction counts (harness/measure/count.py): `run --instructions` under valgrind, and
`compare`.

The runs need valgrind and harness.measure._callgrind (built where valgrind's headers are); the
comparison and the refusals do not.
"""

from __future__ import annotations

import pandas as pd
import pytest

from harness import cli, compare
from harness.commands import ab as ab_command
from harness.measure import count
from harness.results import store

NO_COUNTING = count.unavailable_reason()
needs_valgrind = pytest.mark.skipif(NO_COUNTING is not None, reason=str(NO_COUNTING))


def _count_run(results):
    """numpy and c count; sharded-col (MPI ranks) and cuda-naive (a GPU) cannot be counted."""
    code = cli.main(
        [
            "run",
            "--quick",
            "--instructions",
            "--impl",
            "numpy,c,sharded-col",
            "--impl",
            "cuda-naive",
            "--workload",
            "xor",
            "--phase",
            "fwd",
            "--phase",
            "step",
            "--no-report",
            "--results",
            str(results),
        ]
    )
    assert code == 0
    return store.load(results)


@needs_valgrind
def test_counts_repeat_to_the_instruction_and_compare_as_same(tmp_path, capsys):
    first = _count_run(tmp_path / "a")
    second = _count_run(tmp_path / "b")
    assert set(first["measure"]) == {"instructions"}
    ok = first[first.status == "ok"]
    assert sorted(ok.impl.unique()) == ["c", "numpy"] and len(ok) == 4
    assert (ok.instructions > 1000).all() and (ok.rounds == count.CALLS).all()
    assert ok.flops_per_instruction.tolist() == (ok.flops / ok.instructions).tolist()
    sharded = first[first.impl == "sharded-col"]
    assert set(sharded.status) == {"unsupported"}
    assert sharded.reason.str.contains("MPI ranks").all()
    assert set(first[first.impl == "cuda-naive"].status) <= {"unavailable", "unsupported"}
    # Two runs of one commit: the same count in every cell, so "same" at a 0.1% threshold.
    assert (
        first.set_index(["impl", "phase"]).instructions.dropna().to_dict()
        == second.set_index(["impl", "phase"]).instructions.dropna().to_dict()
    )
    result = compare.compare(first, second, count_threshold=0.001)
    counted = result[result.base_status == "ok"]
    assert (counted.ratio == 1.0).all() and set(counted.verdict) == {"same"}
    assert "instr" in compare.to_terminal(result)


def _rows(instructions, run="r1"):
    return pd.DataFrame(
        [
            {
                "run_id": run,
                "timestamp": run,
                "impl": "c",
                "workload": "xor",
                "size": "B=4",
                "phase": "fwd",
                "status": "ok",
                "measure": "instructions",
                "instructions": n,
            }
            for n in instructions
        ]
    )


@pytest.mark.parametrize(
    "base,head,expected",
    [
        (1e6, 1.01e6, "slower"),
        (1e6, 0.99e6, "faster"),
        (1e6, 1.003e6, "same"),
        (1e6, 1e6, "same"),
        (28_000, 27_300, "same"),  # 2.5%, but 700 instructions: layout noise of a small cell
        (28_000, 31_000, "slower"),
    ],
)
def test_a_one_percent_change_in_count_is_seen_and_layout_noise_is_not(base, head, expected):
    result = compare.compare(_rows([base, base]), _rows([head], "r2"))
    (row,) = result.to_dict("records")
    assert row["ratio"] == pytest.approx(head / base)
    assert row["verdict"] == expected
    assert row["base_n"] == base and row["measure"] == "instructions"


def test_a_counted_cell_and_a_timed_one_are_different_cells():
    timed = _rows([1e6]).drop(columns=["measure", "instructions"]).assign(samples_s=[[1e-3] * 5])
    result = compare.compare(_rows([1e6]), timed)
    assert sorted(zip(result.measure, result.verdict, strict=True)) == [
        ("instructions", "gone"),
        ("time", "new"),
    ]


def test_count_ranges_over_runs():
    assert compare.count_ratio([100, 102], [101, 103]) == (
        pytest.approx(102 / 101),
        pytest.approx(101 / 102),
        pytest.approx(103 / 100),
    )


def test_counting_refuses_in_process_and_without_valgrind(tmp_path, monkeypatch, capsys):
    args = [
        "run",
        "--quick",
        "--instructions",
        "--impl",
        "numpy",
        "--workload",
        "xor",
        "--results",
        str(tmp_path),
        "--no-report",
    ]
    if NO_COUNTING is None:
        assert cli.main([*args, "--in-process"]) == 2
        assert "drop --in-process" in capsys.readouterr().err
    monkeypatch.setattr(count.shutil, "which", lambda name: None)
    assert cli.main(args) == 2
    assert "valgrind is not installed" in capsys.readouterr().err
    assert not tmp_path.exists() or not list(tmp_path.rglob("*.jsonl"))


@needs_valgrind
def test_the_helper_refuses_to_count_outside_valgrind():
    from harness.measure import _callgrind

    assert _callgrind.on_valgrind() is False
    with pytest.raises(RuntimeError, match="not running under valgrind"):
        _callgrind.count(lambda: None, 1, "label")


def test_ab_counts_with_one_run_a_side_by_default():
    parser = cli.build_parser()
    args = parser.parse_args(["ab", "main", "HEAD", "--instructions", "--impl", "numpy"])
    assert ab_command.run_arguments(args) == ["--quick", "--instructions", "--impl=numpy"]
    assert args.repeats is None  # run() makes it 1 with --instructions, REPEATS without
