"""Root pytest hooks: a plain `pytest` runs the benchmark grid once per cell, untimed.

`pytest` = the tests plus every benchmark cell run once as a correctness smoke;
`pytest --benchmark-only` = the timed grid (or `--benchmark-enable` for both).
"""

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("nnladder")
    group.addoption("--grid", choices=("quick", "full"), default=None,
                    help="the grid's sizes (default: full when timing, quick when not)")
    group.addoption("--impl", default=None, help="impls to run, comma-separated")
    group.addoption("--workload", default=None, help="workloads to run, comma-separated")
    group.addoption("--phase", default=None, help="phases to run, comma-separated")
    group.addoption("--cell-budget", type=float, default=None,
                    help="skip cells predicted to take longer (s; default 10, quick 1)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    option = config.option
    if not getattr(option, "benchmark_only", False) and \
            not getattr(option, "benchmark_enable", False):
        option.benchmark_disable = True
