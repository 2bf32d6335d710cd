"""The benchmark grid as pytest parameters, and the results of a timed session stored.

Options (declared in the root conftest.py, so they parse from any folder): --grid quick|full
(default: full when timing, quick for the untimed smoke), --impl/--workload/--phase filters
(comma-separated), --cell-budget S.
A timed session (`pytest --benchmark-only`) stores one run under results/<machine>/ and
renders reports/summary.html at its end, as `python -m harness run` does.
"""

from __future__ import annotations

import pytest

from harness import registry
from harness.execute.grid import plan
from harness.measure.budget import Budget
from harness.results import ceilings, store


def _split(value):
    return value.split(",") if value else None


def _quick(config) -> bool:
    grid = config.getoption("--grid")
    return grid == "quick" if grid else bool(config.option.benchmark_disable)


def pytest_generate_tests(metafunc):
    if "cell" in metafunc.fixturenames:
        config = metafunc.config
        cells = plan(
            _split(config.getoption("--impl")),
            _split(config.getoption("--workload")),
            _split(config.getoption("--phase")),
            quick=_quick(config),
        )
        metafunc.parametrize(
            "cell", cells, ids=["-".join(c.key()).replace(" ", ",") for c in cells]
        )


class GridSession:
    """The impls and budgets of one pytest session, and the rows it measured."""

    def __init__(self, config):
        seconds = config.getoption("--cell-budget") or (1.0 if _quick(config) else 10.0)
        self.seconds, self.impls, self.budgets, self.rows = seconds, {}, {}, []
        # each timed row's roof; the untimed smoke stores nothing, so measures none
        self.ceilings = None if config.option.benchmark_disable else ceilings.for_this_machine()

    def impl(self, name):
        reason = registry.unavailable_reason(name)
        if reason:
            pytest.skip(f"{name} unavailable: {reason}")
        if name not in self.impls:
            self.impls[name], self.budgets[name] = registry.create(name), Budget(self.seconds)
        return self.impls[name], self.budgets[name]


@pytest.fixture(scope="session")
def grid(request):
    session = GridSession(request.config)
    yield session
    if session.rows and not request.config.option.benchmark_disable:
        writer = store.open_run()
        for row in session.rows:
            writer.append(row)
        from harness.report import summary as report

        print(
            f"\nstored {len(session.rows)} rows in {writer.path}; report: "
            f"{report.render(store.load())}"
        )
