"""The correctness gate, the statuses, crash and hang isolation, and the time budget."""

from __future__ import annotations

import pytest

from harness import registry
from harness.execute import grid, isolate, lifecycle
from harness.measure.budget import CALLS_PER_CELL, Budget


def run_in_process(impl_name, workloads, phases=("fwd",)):
    impl, budget = registry.create(impl_name), Budget(60)
    return [
        lifecycle.run_cell(impl, c, budget, lifecycle.Timed(0.01))
        for c in grid.plan([impl_name], workloads, phases, quick=True)
    ]


def test_a_wrong_impl_is_recorded_wrong_and_not_timed(faults):
    rows = run_in_process("fault-wrong", ["matmul"])
    assert {r["status"] for r in rows} == {"wrong"}
    assert all("t_median_s" not in r and r["rel_err"] > 1e-5 for r in rows)
    assert "tolerance" in rows[0]["reason"]


def test_a_missing_op_is_recorded_unsupported_with_its_name(faults):
    rows = run_in_process("fault-partial", ["mnist_mlp", "matmul"])
    mlp = [r for r in rows if r["workload"] == "mnist_mlp"]
    assert [r["status"] for r in mlp] == ["unsupported"]
    assert "relu" in mlp[0]["reason"]
    assert {r["status"] for r in rows if r["workload"] == "matmul"} == {"ok"}


def test_ok_rows_carry_timing_flops_and_memory():
    (row,) = run_in_process("numpy", ["xor"])
    assert row["status"] == "ok" and row["rel_err"] <= row["tol"]
    assert row["rounds"] >= 5 and len(row["samples_s"]) == row["rounds"]
    assert row["t_min_s"] <= row["t_median_s"] and row["peak_mem_bytes"] > 0
    assert row["gflops_per_s"] == pytest.approx(row["flops"] / row["t_median_s"] / 1e9)


@pytest.mark.parametrize("impl_name,cause", [("fault-segv", "SIGSEGV"), ("fault-hang", "timeout")])
def test_a_crash_or_hang_costs_one_cell_and_the_run_goes_on(faults, impl_name, cause):
    cells = grid.plan([impl_name, "numpy"], ["matmul"], ["fwd"], quick=True)
    rows = []
    options = lifecycle.Options(budget_s=60, time_per_cell_s=0.01, timeout_s=1.5, ranks=1)
    isolate.run_all(cells, options, rows.append)
    assert len(rows) == len(cells)
    broken = [r for r in rows if r["impl"] == impl_name]
    assert broken[0]["status"] == "ok"  # the 16^3 cell ran before the fault
    assert all(r["status"] == "error" and cause in r["reason"] for r in broken[1:])
    assert {r["status"] for r in rows if r["impl"] == "numpy"} == {"ok"}


def test_budget_fits_the_exponent_and_skips_what_would_take_too_long():
    budget = Budget(2.0)
    for n in (64, 128, 256):  # cubic: time = 1e-9 * n^3
        budget.record("matmul", "fwd", 2 * n**3, 1e-9 * n**3)
    assert budget.predict("matmul", "fwd", 2 * 1024**3) == pytest.approx(1e-9 * 1024**3)
    assert budget.over("matmul", "fwd", 2 * 512**3) is None  # 0.13 s x 9 calls ~ 1.2 s
    assert budget.over("matmul", "fwd", 2 * 1024**3) == pytest.approx(
        CALLS_PER_CELL * 1024**3 * 1e-9
    )


def test_budget_first_size_uses_the_impls_best_throughput():
    budget = Budget(1.0)
    assert budget.predict("linear", "fwd", 10**9) is None  # nothing known: run it
    budget.record("matmul", "fwd", 10**6, 1e-3)  # 1 GFLOP/s
    assert budget.predict("linear", "fwd", 10**9) == pytest.approx(1.0)


def test_budget_second_size_adds_the_extra_work_at_the_best_throughput():
    budget = Budget(1.0)
    budget.record("attention", "fwd", 10**6, 1e-3)  # launch-bound: 1 GFLOP/s
    # the only point so far: all of its time scales with the work
    assert budget.predict("attention", "fwd", 10**8) == pytest.approx(0.1)
    budget.record("matmul", "fwd", 10**9, 1e-3)  # the impl reaches 1 TFLOP/s elsewhere
    assert budget.predict("attention", "fwd", 10**8) == pytest.approx(1e-3 + 99e6 / 1e12)
    assert budget.over("attention", "fwd", 10**8) is None  # was 0.1 s x 9 calls: skipped


def test_over_budget_cells_are_recorded_with_their_prediction():
    impl, budget = registry.create("numpy"), Budget(1e-6)
    cells = grid.plan(["numpy"], ["matmul"], ["fwd"], quick=True)
    rows = [lifecycle.run_cell(impl, c, budget, lifecycle.Timed(0.01)) for c in cells]
    assert rows[0]["status"] == "ok"
    assert all(r["status"] == "over_budget" and r["t_predicted_s"] > 1e-6 for r in rows[1:])


def test_budget_rejects_a_non_positive_budget():
    with pytest.raises(ValueError, match="positive"):
        Budget(0)
