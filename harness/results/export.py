"""A stored run in the formats other tools read.

- pytest-benchmark's JSON, as `pytest --benchmark-json` writes it (machine_info, commit_info,
  benchmarks with their stats and rounds, datetime, version), so that `pytest-benchmark
  compare` and the tools built on it read a run. The stats are computed by pytest-benchmark's
  own Stats from the run's rounds, so they mean what its other files mean. A cell is named as
  the benchmark grid names it (benchmarks/bench_grid.py: `test_cell[numpy-matmul-M=16,K=16,
  N=16-fwd]`), so a run of `harness run` and one of `pytest --benchmark-only` line up; its
  group is the cell without the impl, so pytest-benchmark's tables set the rungs side by side.
- Bencher's metric format (BMF): per cell `latency` in ns (the median round, between its
  quartiles) and `throughput` in calls a second; a counted cell gives `instructions` a call.

Reading a pytest-benchmark file back as a run: harness/results/ingest.py.
"""

from __future__ import annotations

import math

import pytest_benchmark
from pytest_benchmark.stats import Stats

GRID_TEST = "benchmarks/bench_grid.py::test_cell"
# A cell's own figures, carried in extra_info there and back (derived ones are recomputed).
EXTRA = "device flops bytes intensity rel_err tol err_ratio peak_mem_bytes peak_rss_bytes".split()
EXTRA += ["unstable", "unstable_reason"]


def records(frame) -> list:
    """A table's rows as dicts without their missing values (a column another run has)."""
    return [
        {
            k: v
            for k, v in row.items()
            if not (v is None or (isinstance(v, float) and math.isnan(v)))
        }
        for row in frame.to_dict("records")
    ]


def cell_id(row: dict) -> str:
    """The benchmark grid's id of a cell: `numpy-matmul-M=16,K=16,N=16-fwd`."""
    return "-".join((row["impl"], row["workload"], row["size"], row["phase"])).replace(" ", ",")


def _timed(rows: list) -> list:
    """The rows other tools can hold: cells that ran ok, with timed rounds."""
    return [
        r for r in rows if r["status"] == "ok" and r["workload"] != "train" and r.get("samples_s")
    ]


def _stats(samples: list) -> Stats:
    stats = Stats()
    for seconds in samples:
        stats.update(seconds)
    return stats


def to_pytest_benchmark(rows: list) -> dict:
    """One run's rows -> pytest-benchmark's JSON document (its timed cells)."""
    first = rows[0]
    system, _, arch = str(first.get("platform", "")).partition("-")
    machine_info = {
        "node": first.get("machine"),
        "processor": first.get("cpu"),
        "machine": arch,
        "system": system,
        "python_version": first.get("python"),
        "cpu": _known({"brand_raw": first.get("cpu"), "count": first.get("cores")}),
        **{k: first.get(k) for k in ("gpu", "blas", "threads", "numpy")},
    }
    return {
        # what the run does not know is left out, not null: pytest-benchmark's readers (and
        # our own import) take these as strings where present
        "machine_info": _known(machine_info),
        "commit_info": {
            "id": first.get("commit"),
            "dirty": bool(first.get("dirty", False)),
            "project": "nnladder",
            "branch": None,
            "time": None,
            "author_time": None,
        },
        "benchmarks": [
            {
                "group": f"{r['workload']} {r['size']} {r['phase']}",
                "name": f"test_cell[{cell_id(r)}]",
                "fullname": f"{GRID_TEST}[{cell_id(r)}]",
                "params": {k: r[k] for k in ("impl", "workload", "size", "phase")},
                "param": cell_id(r),
                "extra_info": {k: r[k] for k in EXTRA if k in r},
                "options": {},
                "stats": {
                    **_stats(r["samples_s"]).as_dict(),
                    "data": list(r["samples_s"]),
                    "iterations": int(r.get("loops", 1)),
                },
            }
            for r in _timed(rows)
        ],
        **_known({"datetime": first.get("timestamp")}),
        "version": pytest_benchmark.__version__,
    }


def _known(fields: dict) -> dict:
    """fields without those whose value the run lacks (None, or NaN as a table loads it)."""
    return {k: v for k, v in fields.items() if v is not None and v == v}


def to_bmf(rows: list) -> dict:
    """One run's rows -> Bencher's metric format: {cell id: {measure: {value, ...}}}."""
    out = {}
    for r in rows:
        if r["status"] == "ok" and r.get("measure") == "instructions":
            out[cell_id(r)] = {"instructions": {"value": r["instructions"]}}
    for r in _timed(rows):
        stats = _stats(r["samples_s"])
        out[cell_id(r)] = {
            "latency": {
                "value": stats.median * 1e9,
                "lower_value": stats.q1 * 1e9,
                "upper_value": stats.q3 * 1e9,
            },
            "throughput": {
                "value": 1 / stats.median,
                "lower_value": 1 / stats.q3,
                "upper_value": 1 / stats.q1,
            },
        }
    return out
