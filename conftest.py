"""Root pytest hooks: a plain `pytest` runs the benchmark grid once per cell, untimed.

`pytest` = the tests plus every benchmark cell run once as a correctness smoke;
`pytest --benchmark-only` = the timed grid (or `--benchmark-enable` for both).
"""

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    option = config.option
    if not getattr(option, "benchmark_only", False) and \
            not getattr(option, "benchmark_enable", False):
        option.benchmark_disable = True
