"""A pytest-benchmark JSON file (what `pytest --benchmark-json` writes, or `export`) read as the
rows of one run: each benchmark an ok row with its times and rounds, its cell parsed from the
name where it is one of ours (`test_cell[numpy-matmul-M=16,K=16,N=16-fwd]`, as
benchmarks/bench_grid.py and harness/results/export.py name cells), else the benchmark's own
name is the cell (impl FOREIGN, workload its full name). The file is checked against the part
of pytest-benchmark's format a run is made of (pytest_benchmark.schema.json, beside this file)
before anything is made of it, and an error names the file and the field (`import`,
harness/commands/import_run.py, stores the run).
"""

from __future__ import annotations

import re

from harness.execute.grid import PHASES
from harness.results import schema
from harness.results.export import EXTRA
from harness.results.rows import is_number
from harness.workloads import WORKLOADS

FOREIGN = "pytest-benchmark"  # the impl of a benchmark whose name is not a cell of ours
# row column <- the pytest-benchmark stat it is read from
TIMES = {f"t_{stat}_s": stat for stat in ("min", "median", "iqr", "mean", "stddev")}


def parse_cell(name: str) -> tuple | None:
    """`test_cell[<cell id>]` or a bare cell id -> (impl, workload, size, phase); None for a
    name that is not a cell of ours. Impls and sizes may hold '-', workloads do not."""
    inside = re.fullmatch(r"test_cell\[(.+)\]", name)
    text = inside.group(1) if inside else name
    for workload in WORKLOADS:
        impl, found, rest = text.partition(f"-{workload}-")
        size, _, phase = rest.rpartition("-")
        if found and impl and phase in PHASES:
            return impl, workload, size.replace(",", " "), phase
    return None


def _size_columns(size: str) -> dict:
    """The size's own columns, as a run has them: "M=16 K=16 N=16" -> {"M": 16, "K": 16, ...}."""
    pairs = (part.split("=", 1) for part in size.split() if "=" in part)
    return {k: int(v) if v.isdigit() else v for k, v in pairs}


def run_meta(data: dict, source: str) -> dict:
    """The columns every row of an imported run shares, from the file's machine and commit."""
    machine_info, commit_info = data.get("machine_info", {}), data.get("commit_info", {})
    node = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(machine_info.get("node", "")))[:64]
    cpu = machine_info.get("cpu")
    # a git sha, or "unknown": pytest-benchmark writes "unversioned" outside git, and the id
    # names the run's file (a "/" in it would be a folder)
    commit = str(commit_info.get("id") or "")
    return {
        "timestamp": data.get("datetime"),
        "commit": commit if re.fullmatch(r"[0-9a-fA-F]{4,64}", commit) else "unknown",
        "dirty": commit_info.get("dirty", False),
        "machine": node if node.strip(".") else "unknown",
        "cpu": cpu.get("brand_raw") if isinstance(cpu, dict) else machine_info.get("processor"),
        "python": machine_info.get("python_version"),
        "imported_from": source,
    }


def from_pytest_benchmark(data, source: str) -> list:
    """A pytest-benchmark document -> the rows of its benchmarks; a ValueError naming the
    source, the field and what was expected when the document is not one."""
    wrong = schema.problems(data, "pytest_benchmark")
    if wrong:
        raise ValueError(f"{source}: {wrong[0]} (expected a pytest-benchmark JSON file)")
    rows = []
    for bench in data["benchmarks"]:
        stats, extra = bench["stats"], bench.get("extra_info", {})
        cell = parse_cell(bench["name"]) or (FOREIGN, bench.get("fullname", bench["name"]), "", "")
        impl, workload, size, phase = cell
        row = {"impl": impl, "workload": workload, "size": size, **_size_columns(size)}
        row.update(phase=phase, status="ok", reason="", rounds=stats["rounds"])
        row["loops"] = stats.get("iterations", 1)
        row.update({column: stats[name] for column, name in TIMES.items()})
        if "data" in stats:
            row["samples_s"] = stats["data"]
        row.update({k: extra[k] for k in EXTRA if k in extra})
        if is_number(row.get("flops")):
            row["gflops_per_s"] = row["flops"] / row["t_median_s"] / 1e9
        rows.append(row)
    return rows
