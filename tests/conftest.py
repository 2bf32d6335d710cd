"""Shared fixtures: the impls that can run on this machine, found through the registry."""

from __future__ import annotations

import pytest

from harness import registry

# The smallest real run: one in-process xor forward on numpy (append --results and the rest).
XOR_RUN = [
    "run",
    "--quick",
    "--impl",
    "numpy",
    "--workload",
    "xor",
    "--phase",
    "fwd",
    "--in-process",
]


def available_impls() -> list:
    return [n for n in registry.names() if not registry.unavailable_reason(n)]


def impl_params() -> list:
    """Every registered impl as a parameter; those that cannot run here skip with the reason."""
    return [
        pytest.param(name, marks=pytest.mark.skip(reason=f"{name}: {reason}"))
        if (reason := registry.unavailable_reason(name))
        else name
        for name in registry.names()
    ]


@pytest.fixture
def faults(monkeypatch):
    """The deliberately broken impls of tests/fault_impls.py, joined for one test."""
    monkeypatch.setenv("NNLADDER_IMPLS", "tests.fault_impls")
    registry._discover.cache_clear()
    yield
    registry._discover.cache_clear()
