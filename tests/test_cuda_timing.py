"""The GPU timing protocol (harness/measure/timing_cuda.py), run against a stand-in for CuPy.

The stand-in keeps a clock that only calls advance, events that read it when recorded, and a
log of what happened in what order: so the protocol (warm-up, a repeat count that fills the
budget, an L2 flush before every timed call, one sample per call) is tested without a GPU.
On a GPU, test_cuda_impls.py times real kernels with the real CuPy.
"""

from __future__ import annotations

import importlib
import sys
import types

import pytest

import harness

L2_BYTES = 50 << 20


@pytest.fixture
def fake_cupy(monkeypatch):
    log, clock = [], {"ms": 0.0}

    class Event:
        def record(self):
            self.ms = clock["ms"]
            log.append("record")

        def synchronize(self):
            pass

    class Buffer:
        def __init__(self, nbytes):
            self.nbytes = nbytes

        def fill(self, value):
            log.append(("flush", self.nbytes))

    cupy = types.ModuleType("cupy")
    cupy.uint8 = "uint8"
    cupy.empty = lambda n, dtype: Buffer(n)
    cupy.cuda = types.SimpleNamespace(
        Event=Event,
        get_elapsed_time=lambda start, end: end.ms - start.ms,
        Device=lambda: types.SimpleNamespace(attributes={"L2CacheSize": L2_BYTES}),
    )
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    # A fresh import on the stand-in; monkeypatch puts back whatever was there before.
    monkeypatch.delitem(sys.modules, "harness.measure.timing_cuda", raising=False)
    monkeypatch.delattr(harness, "timing_cuda", raising=False)
    timing_cuda = importlib.import_module("harness.measure.timing_cuda")

    def call_taking(ms):
        def fn():
            clock["ms"] += ms
            log.append("fn")

        return fn

    yield timing_cuda, call_taking, log
    # not left for code that wants the real one
    sys.modules.pop("harness.measure.timing_cuda", None)
    vars(harness).pop("timing_cuda", None)


def test_repeats_fill_the_budget_with_a_flush_before_every_timed_call(fake_cupy):
    timing_cuda, call_taking, log = fake_cupy
    stats = timing_cuda.measure(call_taking(2.0), sync=lambda: None, time_per_cell_s=0.1)
    assert stats.rounds == 50 and stats.loops == 1  # 0.1 s of 2 ms calls
    assert stats.samples_s == pytest.approx((0.002,) * 50)
    timed = log[log.index(("flush", 2 * L2_BYTES)) :]
    assert timed == [("flush", 2 * L2_BYTES), "record", "fn", "record"] * 50
    warmup = log[: len(log) - len(timed)]
    assert warmup.count("fn") == timing_cuda.WARMUP_CALLS + timing_cuda.ESTIMATE_CALLS


def test_a_slow_call_still_gets_the_minimum_rounds(fake_cupy):
    timing_cuda, call_taking, _ = fake_cupy
    stats = timing_cuda.measure(call_taking(1000.0), sync=lambda: None, time_per_cell_s=0.1)
    assert stats.rounds == 5 and stats.median == pytest.approx(1.0)
