"""Runs each impl's cells in a child process, so a crash or a hang costs one cell, not the run.

The child (`python -m harness.execute.worker`) reads its cells as JSON on stdin and answers on
stdout with protocol lines (`@@nnladder {...}`): "start" before a cell, "row" after it. Anything
else an impl prints is passed over. When the child dies in a cell (a segfault in native code) or a
cell outlives its timeout, that cell is recorded as `error` with the cause, and a new child
goes on with the next cell, carrying the budget's history so far.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import registry
from harness.execute.lifecycle import Cell, describe, unavailable_rows
from harness.measure import count

PREFIX = "@@nnladder "


def _reader(stream, lines: queue.Queue) -> None:
    for line in stream:
        if line.startswith(PREFIX):
            lines.put(json.loads(line[len(PREFIX):]))
    lines.put(None)  # end of stream: the child has exited or closed stdout


def kill_group(proc) -> None:
    """Kill a child started with start_new_session, and everything it started (MPI ranks)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def exit_cause(returncode, tail: list) -> str:
    """Why a child ended without its result: the signal or exit code, and its last lines."""
    if returncode is not None and returncode < 0:
        what = f"killed by signal {signal.Signals(-returncode).name}"
    else:
        what = f"worker exited with code {returncode}"
    return what + (f" ({' | '.join(tail[-3:])})" if tail else "")


def _cause(proc, stderr_file) -> str:
    stderr_file.seek(0)
    return exit_cause(proc.returncode,
                      stderr_file.read().decode(errors="replace").strip().splitlines())


def _launch(impl: str, options: dict, scratch: str) -> tuple:
    """The child's command line and environment: an impl that needs several processes says
    how to start them; counting instructions runs the child under callgrind
    (harness/measure/count.py), its files in scratch."""
    cls = registry.get_class(impl)
    if options.get("instructions"):
        prefix, env = count.launch(Path(scratch))
    else:
        prefix, env = cls.launch_prefix(options["ranks"]), None
    return [*prefix, sys.executable, "-m", "harness.execute.worker"], env


def _run_child(impl, cells, options, history, on_row) -> int:
    """Run cells in one child until it finishes or fails. -> how many cells were settled."""
    spec = {"impl": impl, "cells": [[c.impl, c.workload, c.size, c.phase] for c in cells],
            "options": options, "history": history}
    with tempfile.TemporaryFile() as stderr_file, tempfile.TemporaryDirectory() as scratch:
        command, env = _launch(impl, options, scratch)
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, env=env,
                                stdout=subprocess.PIPE, stderr=stderr_file, text=True,
                                start_new_session=True)  # its own group: kill takes all ranks
        proc.stdin.write(json.dumps(spec))
        proc.stdin.close()
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
        settled, current, deadline = 0, None, time.monotonic() + options["timeout_s"]
        while True:
            try:
                message = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                kill_group(proc)
                if current is None:  # hung before its first cell: treat the next as stuck
                    current = settled
                on_row({**describe(cells[current]), "status": "error",
                        "reason": f"timeout: no result after {options['timeout_s']:g} s"})
                return current + 1
            if message is None:
                proc.wait()
                if current is not None or settled < len(cells):
                    current = settled if current is None else current
                    on_row({**describe(cells[current]), "status": "error",
                            "reason": _cause(proc, stderr_file)})
                    return current + 1
                return settled
            if message["kind"] == "start":
                current, deadline = message["index"], time.monotonic() + options["timeout_s"]
            elif message["kind"] == "row":
                row = message["row"]
                on_row(row)
                if row.get("status") == "ok" and "t_median_s" in row:  # counts are not times
                    history.append([row["workload"], row["phase"], row["flops"],
                                    row["t_median_s"]])
                settled, current = message["index"] + 1, None
                deadline = time.monotonic() + options["timeout_s"]


def run_impl(impl: str, cells: list, options: dict, on_row) -> None:
    """All cells of one impl, each crash or hang recorded against the cell that caused it."""
    reason = registry.unavailable_reason(impl)
    if reason:
        for row in unavailable_rows(cells, reason):
            on_row(row)
        return
    reason = count.unsupported_reason(registry.get_class(impl)) \
        if options.get("instructions") else None
    if reason:  # counting sees one process's CPU work
        for cell in cells:
            on_row({**describe(cell), "status": "unsupported", "reason": reason})
        return
    history: list = []
    # Counting gives each cell a fresh worker: what a process did before (its allocators'
    # free lists, the interpreter's specialized code) moved a 27k-instruction cell's count by
    # up to 1.4% when it followed other cells.
    batch = 1 if options.get("instructions") else len(cells)
    start = 0
    while start < len(cells):
        start += _run_child(impl, cells[start:start + batch], options, history, on_row)


def run_all(cells: list, options: dict, on_row) -> None:
    by_impl: dict = {}
    for cell in cells:
        by_impl.setdefault(cell.impl, []).append(cell)
    for impl, impl_cells in by_impl.items():
        run_impl(impl, impl_cells, options, on_row)


__all__ = ["Cell", "run_all", "run_impl", "PREFIX", "kill_group", "exit_cause"]
