"""Peak memory of one call of a phase, measured apart from its timing (tracing slows code)."""

from __future__ import annotations

import tracemalloc


def host_peak_bytes(fn) -> int:
    """Bytes allocated at the peak of one fn() call beyond what was live before it.

    tracemalloc sees Python objects and NumPy buffers (NumPy reports its allocations to it);
    it does not see a native library's private mallocs, which the report says.
    """
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    if not already:
        tracemalloc.stop()
    return max(peak - base, 0)
