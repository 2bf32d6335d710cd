"""What `run` may ask of its GPU cells: a timing mode (--gpu-timing) and an ncu report per cell
(--profile). Imports no CuPy: `run` checks both options before anything runs.

The mode reaches the workers (child processes) through MODE_VAR, which they inherit;
timing_cuda.py reads it. --profile runs each GPU cell once more, before the timed run, in a
child under Nsight Compute (`ncu`): this module is that child's entry point too, which checks
the cell and runs one call of it inside cupyx.profiler.profile() (ncu profiles that range
only). Each report is kept as results/<machine>/ncu/<run id>/<cell>.ncu-rep and the cell's
row links it (ncu_report, relative to the run's folder) beside its duration-weighted DRAM
and SM throughput and achieved occupancy (% of peak).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys

MODES = ("events", "graph", "kernel")
MODE_VAR = "NNLADDER_GPU_TIMING"
SECTIONS = ("SpeedOfLight", "Occupancy")  # DRAM and SM throughput; achieved occupancy
# row field: the ncu metrics it is read from, the first one a report has (names vary by version)
METRICS = {
    "ncu_dram_pct": (
        "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed",
        "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    ),
    "ncu_sm_pct": ("sm__throughput.avg.pct_of_peak_sustained_elapsed",),
    "ncu_occupancy_pct": ("sm__warps_active.avg.pct_of_peak_sustained_active",),
}
DURATION = "gpu__time_duration.sum"
PROFILE_TIMEOUT_S = 600  # ncu replays every kernel of the call once per pass it needs


def add_options(parser) -> None:
    parser.add_argument(
        "--gpu-timing",
        choices=MODES,
        default="events",
        help="how GPU cells are timed: CUDA events around each call (default), replays of a "
        "CUDA graph of many calls, or the kernels' own time from the profiler (CUPTI; the "
        "row's launch_overhead_s is events minus that)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="keep an Nsight Compute report of every GPU cell under results/ (needs ncu)",
    )


def timing_mode() -> str:
    """The mode this process times GPU cells in (MODE_VAR, else events)."""
    mode = os.environ.get(MODE_VAR, "events")
    if mode not in MODES:
        raise ValueError(f"{MODE_VAR}={mode!r}: expected one of {', '.join(MODES)}")
    return mode


def kernel_timing_unavailable() -> str | None:
    """Why kernel-only time cannot be read here, or None: it comes from CUPTI through
    PyTorch's profiler (CuPy has no CUPTI binding; nsys would have to start the process)."""
    why = "--gpu-timing kernel reads CUPTI through PyTorch's profiler, and"
    if importlib.util.find_spec("torch") is None:
        return f"{why} torch is not installed (pip install torch)"
    import torch

    if not torch.cuda.is_available():
        return f"{why} torch {torch.__version__} sees no CUDA GPU here"
    return None


def ncu_unavailable() -> str | None:
    if shutil.which("ncu") is None:
        return (
            "--profile runs Nsight Compute, and `ncu` is not on PATH (it comes with the CUDA "
            "toolkit: add its bin/ to PATH, e.g. /usr/local/cuda/bin)"
        )
    return None


def check(args) -> None:
    """Refuse what cannot be done here, before any cell runs; pass the mode to the workers."""
    if args.gpu_timing == "kernel" and (reason := kernel_timing_unavailable()):
        raise ValueError(reason)
    if args.profile and (reason := ncu_unavailable()):
        raise ValueError(reason)
    os.environ[MODE_VAR] = args.gpu_timing


def file_name(key) -> str:
    """A cell's key (impl, workload, size, phase) as a file name: letters, digits, . _ -."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(map(str, key))).strip("_")


def ncu_command(cell, report) -> list:
    """The command that profiles one call of `cell` into `report` (.ncu-rep appended)."""
    sections = [arg for name in SECTIONS for arg in ("--section", name)]
    return [
        shutil.which("ncu") or "ncu",
        "--profile-from-start",
        "off",  # only the range cupyx.profiler.profile() opens around one call
        "--clock-control",
        "none",  # the clocks the timed run has
        *sections,
        "--export",
        str(report),
        "--force-overwrite",
        sys.executable,
        "-m",
        "harness.measure.gpu_options",
        json.dumps(cell.to_json()),
    ]


def metrics(raw_csv: str) -> dict:
    """`ncu --import R --csv --page raw` -> the row's ncu_* fields: each kernel's value
    weighted by its duration; None where the report lacks a metric."""
    rows = [r for r in csv.DictReader(io.StringIO(raw_csv)) if r.get("ID", "").strip().isdigit()]
    number = lambda text: float(text.replace(",", ""))  # ncu prints 1,234.5
    weights = [number(r[DURATION]) if r.get(DURATION) else 1.0 for r in rows]
    fields = {"ncu_kernels": len(rows)}
    for field, names in METRICS.items():
        name = next((n for n in names if rows and rows[0].get(n)), None)
        fields[field] = (
            sum(w * number(r[name]) for w, r in zip(weights, rows)) / sum(weights)
            if name and sum(weights)
            else None
        )
    return fields


def profile(args, cells, writer) -> dict:
    """{cell key: the fields its row gets}: one ncu report per GPU cell that can run here."""
    if not args.profile:
        return {}
    from harness import registry

    folder = writer.folder / "ncu" / writer.path.stem
    links = {}
    for cell in cells:
        cls = registry.get_class(cell.impl)
        if cls.device == "cuda" and not registry.unavailable_reason(cell.impl):
            folder.mkdir(parents=True, exist_ok=True)
            links[cell.key()] = profile_cell(cell, folder / file_name(cell.key()), writer.folder)
    return links


def profile_cell(cell, report, run_folder) -> dict:
    """Profile one cell into report.ncu-rep -> its row's fields: the report's path (relative
    to the run's folder) and metrics, or ncu_reason when ncu failed."""
    try:
        done = subprocess.run(
            ncu_command(cell, report), capture_output=True, text=True, timeout=PROFILE_TIMEOUT_S
        )
        path = report.parent / f"{report.name}.ncu-rep"  # ncu adds the suffix
        if done.returncode or not path.exists():
            return {"ncu_reason": f"ncu exited {done.returncode}: {done.stderr[-500:]}"}
        raw = subprocess.run(
            ["ncu", "--import", str(path), "--csv", "--page", "raw"],
            capture_output=True,
            text=True,
            check=True,
            timeout=PROFILE_TIMEOUT_S,
        ).stdout
    except (subprocess.SubprocessError, OSError) as error:
        return {"ncu_reason": f"{type(error).__name__}: {error}"}
    return {"ncu_report": str(path.relative_to(run_folder)), **metrics(raw)}


def linked(row: dict, links: dict) -> dict:
    """The row with its cell's ncu fields, if it has any."""
    return {**row, **links.get((row["impl"], row["workload"], row["size"], row["phase"]), {})}


def main(argv=None) -> int:
    """ncu's child: check one cell (the gate), warm it, then one call inside the profiled
    range."""
    import cupyx.profiler

    from harness import registry
    from harness.execute.check import check as gate
    from harness.execute.grid import Cell

    cell = Cell.from_json(json.loads((argv or sys.argv[1:])[0]))
    impl = registry.create(cell.impl)
    row, fn = gate(impl, cell, None)
    if fn is None:
        print(f"{cell.key()}: {row['status']}: {row.get('reason')}", file=sys.stderr)
        return 1
    fn()
    impl.sync()
    with cupyx.profiler.profile():
        fn()
        impl.sync()
    return 0


if __name__ == "__main__":
    sys.exit(main())
