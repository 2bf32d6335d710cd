"""Peak memory of one call of a phase, measured apart from its timing (tracing slows code).

Two figures, each from a call of its own:
- peak_mem_bytes: what tracemalloc sees at the peak of the call beyond what was live before
  it: Python objects and NumPy buffers (NumPy reports its allocations to it), not a native
  library's private mallocs; on a GPU the impl's device pool instead (device_peak_bytes).
- peak_rss_bytes: the cell's working set in the process's resident memory, which sees every
  page native code touches: the pages placing the cell's inputs added (its setup's too: the
  forward a backward reads), plus the most one call added on top of them (the kernel's
  high-water mark VmHWM, reset through /proc/self/clear_refs just before the call, less the
  resident set then): inputs, outputs and temporaries. Each read of the resident set first
  hands freed heap memory back to the system (glibc's malloc_trim), so a freed array that
  the allocator kept neither counts as in use nor hides the pages a new one takes. The
  kernel batches its resident counters per CPU (32 pages each), so a reading may be off by
  up to 128 KiB a CPU: 0.25 MiB on 2 cores, 2 MiB on 16. Where
  /proc or clear_refs is missing (not Linux, a sandbox that refuses the write) it is None and
  the row says why (peak_rss_note); no figure is made up.
"""

from __future__ import annotations

import ctypes
import tracemalloc
from functools import lru_cache
from pathlib import Path

PROC = Path("/proc/self")


def host_peak_bytes(fn) -> int:
    """Bytes allocated at the peak of one fn() call beyond what was live before it
    (tracemalloc's view: Python-level allocations)."""
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


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or a stand-in where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return lambda pad: 0


def _status_bytes(field: str) -> int | None:
    """A "kB" line of /proc/self/status (VmRSS, VmHWM) in bytes, or None."""
    try:
        for line in (PROC / "status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def resident() -> int | None:
    """The process's resident bytes now, freed heap memory handed back first; None without
    /proc."""
    _malloc_trim()(0)
    return _status_bytes("VmRSS")


def growth(make) -> tuple:
    """(make(), the resident bytes it added (0 if none), or None where unreadable)."""
    before = resident()
    made = make()
    after = resident()
    return made, None if before is None or after is None else max(after - before, 0)


def _reset_peak() -> str | None:
    """Set VmHWM to the resident set now (clear_refs "5"); why it could not be, or None."""
    try:
        (PROC / "clear_refs").write_text("5")
    except OSError as error:
        return f"{PROC / 'clear_refs'} refused the reset ({error.strerror or error})"
    return None


@lru_cache(maxsize=1)
def rss_unavailable_reason() -> str | None:
    """Why peak_rss_bytes cannot be measured here, or None."""
    if _status_bytes("VmHWM") is None:
        return f"no VmHWM in {PROC / 'status'} (not Linux?)"
    return _reset_peak()


def peak_rss_bytes(fn, placed_bytes: int | None) -> dict:
    """{peak_rss_bytes} of the cell (see above; placed_bytes: what placing its inputs added),
    or None and {peak_rss_note}. fn is called once in every case: ranks call it in step."""
    reason = rss_unavailable_reason()
    before = resident()
    reason = reason or _reset_peak()
    fn()
    peak = _status_bytes("VmHWM")
    if reason or before is None or peak is None or placed_bytes is None:
        return {"peak_rss_bytes": None, "peak_rss_note": reason or "/proc/self/status unread"}
    return {"peak_rss_bytes": placed_bytes + max(peak - before, 0)}


def peaks(impl, fn, placed_bytes: int | None) -> dict:
    """The row's memory columns: peak_rss_bytes first (untraced), then peak_mem_bytes."""
    columns = peak_rss_bytes(fn, placed_bytes)
    device_peak = impl.device_peak_bytes(fn)
    columns["peak_mem_bytes"] = host_peak_bytes(fn) if device_peak is None else device_peak
    return columns
