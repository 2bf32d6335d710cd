"""The roofs a cell is judged against, from the machine's measured ceilings
(harness/results/ceilings.py): its memory levels, its compute peaks, and for one result row
the level its working set fits in, its roof and how close it came.

A roof must be one no real cell can beat, so every figure here leans high: a level's
bandwidth is the faster of reading it and updating it (y += x), and never less than a larger
level's (data that fits in L2 also fits in L3); all cores are never slower than one; the
compute peak is the larger of the FMA loop and BLAS's GEMM (both reached, so neither is above
the machine); DRAM (HBM) also takes the large copy. What the OS says the caches are is read
here too (`caches`), for ceilings.py to size its working sets.

A ceilings dict from before the hierarchy (no "levels") gives no levels and no roofs: its one
GEMM and one copy are the roofline that optimizer cells in L3 plotted several times above.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

SYSFS_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")
# (bytes of one, CPUs sharing one; 0 for all) where the OS says nothing: a recent x86 core's
DEFAULT_CACHES = {"L1": (32 << 10, 1), "L2": (1 << 20, 1), "L3": (32 << 20, 0)}
SYSCONF = {
    "L1": "SC_LEVEL1_DCACHE_SIZE",
    "L2": "SC_LEVEL2_CACHE_SIZE",
    "L3": "SC_LEVEL3_CACHE_SIZE",
}
SCOPES = ("one_core", "all_cores")
KINDS = ("read", "update")  # the bandwidths measured at each CPU level


def _cpu_count(cpu_list: str) -> int:
    """'0-3,8' -> 5: the CPUs of a sysfs CPU list."""
    ranges = [part.split("-") for part in cpu_list.strip().split(",") if part]
    return sum(int(r[-1]) - int(r[0]) + 1 for r in ranges)


def _size(text: str) -> int:
    """'32K' -> 32768: a sysfs cache size."""
    text = text.strip().upper()
    return int(text.rstrip("KMG")) * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)


def caches(sysfs: Path | str = SYSFS_CACHES) -> tuple:
    """({"L1": (bytes of one, CPUs sharing one), "L2": ..., "L3": ...}, where they came from):
    the data and unified caches of CPU 0 as sysfs lists them; where it cannot be read,
    sysconf's sizes (sharing unknown: L3 taken as shared by all), then DEFAULT_CACHES, each
    said in the second item."""
    found = {}
    for index in sorted(Path(sysfs).glob("index*")):
        try:
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
            shared = (index / "shared_cpu_list").read_text()
            if kind in ("Data", "Unified"):
                found[f"L{int(level)}"] = (_size(size), _cpu_count(shared))
        except (OSError, ValueError, IndexError):
            continue  # a file missing or unreadable: that index says nothing
    if found:
        return dict(sorted(found.items())), str(sysfs)
    names = getattr(os, "sysconf_names", {})
    sizes = {lvl: os.sysconf(key) if key in names else 0 for lvl, key in SYSCONF.items()}
    if sizes["L1"] > 0 and sizes["L2"] > 0:
        return (
            {lvl: (size, 0 if lvl == "L3" else 1) for lvl, size in sizes.items() if size > 0},
            f"sysconf ({sysfs} unreadable)",
        )
    return dict(DEFAULT_CACHES), f"defaults: {sysfs} and sysconf unreadable"


def _positive(value) -> bool:
    """A figure: a positive number (not a bool), or one per scope ({"one_core": x, ...})."""
    if isinstance(value, dict):
        return set(value) == set(SCOPES) and all(_positive(v) for v in value.values())
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _levels_ok(levels, figures: tuple) -> bool:
    return (
        isinstance(levels, list)
        and len(levels) > 0
        and all(
            isinstance(lv, dict)
            and isinstance(lv.get("name"), str)
            and (lv.get("bytes") is None or _positive(lv["bytes"]))
            and all(_positive(lv.get(f)) for f in figures)
            for lv in levels
        )
    )


def whole(ceilings: dict) -> bool:
    """Whether each hierarchy the ceilings have (CPU "levels", GPU "cuda_levels") has every
    figure this module reads; one that is not there at all (a file from before it) is fine."""
    cpu = "levels" not in ceilings or (
        _levels_ok(ceilings["levels"], ("read_gb_per_s", "update_gb_per_s", "shared_by"))
        and all(
            _positive(ceilings.get(k))
            for k in ("fma_gflops_per_s", "blas_gflops_per_s", "cores", "gemm_n")
        )
        and isinstance(ceilings.get("isas"), list)
        and len(ceilings["isas"]) > 0
    )
    cuda = "cuda_levels" not in ceilings or (
        _levels_ok(ceilings["cuda_levels"], ("read_gb_per_s",))
        and all(
            _positive(ceilings.get(f"cuda_{k}"))
            for k in ("fma_gflops_per_s", "gemm_gflops_per_s", "gemm_n")
        )
    )
    return cpu and cuda


def _number(row, key) -> float:
    """row[key] as a float; NaN where the row (a dict or a pandas row) lacks it."""
    value = row.get(key) if hasattr(row, "get") else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def scope(row) -> str:
    """'all_cores' for a row that ran on more than one thread (`threads` > 1) or rank (a
    sharded row's `P` > 1), else 'one_core'."""
    return "all_cores" if _number(row, "threads") > 1 or _number(row, "P") > 1 else "one_core"


def _cpu_levels(ceilings: dict, scope: str) -> list:
    """Each level's capacity and the faster of its read and update bandwidths. On all cores a
    level has cores // shared_by instances (2 cores: two L1s, one L3), and none is slower than
    one core on each instance: a team's figure under that lost a thread off its core."""
    out = []
    for lv in ceilings.get("levels", []):
        one_core = max(lv[f"{kind}_gb_per_s"]["one_core"] for kind in KINDS)
        if scope == "one_core":
            out.append({"name": lv["name"], "bytes": lv["bytes"], "gb_per_s": one_core})
            continue
        instances = max(1, ceilings["cores"] // lv["shared_by"])
        team = max(lv[f"{kind}_gb_per_s"]["all_cores"] for kind in KINDS)
        out.append(
            {
                "name": lv["name"],
                "bytes": lv["bytes"] and lv["bytes"] * instances,
                "gb_per_s": max(team, one_core * instances),
            }
        )
    return out


def levels(ceilings: dict | None, device: str = "cpu", scope: str = "one_core") -> list:
    """The memory levels, smallest first: [{"name", "bytes", "gb_per_s"}]; [] when the
    hierarchy was not measured. CPU: L1, L2, L3 (those the OS reported), DRAM; on all cores
    `bytes` is the capacity of every instance the cores have (2 cores: 2 x L1, one shared L3).
    GPU ("cuda"): L2, HBM. The last level holds anything (bytes is inf)."""
    if scope not in SCOPES:
        raise ValueError(f"levels: scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    ceilings = ceilings or {}
    if device == "cuda":
        out = [
            {"name": lv["name"], "bytes": lv["bytes"], "gb_per_s": lv["read_gb_per_s"]}
            for lv in ceilings.get("cuda_levels", [])
        ]
    else:
        out = _cpu_levels(ceilings, scope)
    if not out:
        return []
    copy = ceilings.get("cuda_copy_gb_per_s" if device == "cuda" else "copy_gb_per_s", 0)
    out[-1] = {**out[-1], "bytes": math.inf, "gb_per_s": max(out[-1]["gb_per_s"], copy)}
    for i in range(len(out) - 2, -1, -1):  # never slower than the level beyond it
        out[i]["gb_per_s"] = max(out[i]["gb_per_s"], out[i + 1]["gb_per_s"])
    return out


def compute_roofs(ceilings: dict | None, device: str = "cpu") -> list:
    """The compute roofs measured: [{"name", "gflops_per_s", "scope"}], e.g. "FMA peak
    (avx512), 2 cores" of scope "all_cores" (a GPU's: "device"); [] when the hierarchy was
    not measured."""
    ceilings = ceilings or {}
    if device == "cuda":
        if "cuda_fma_gflops_per_s" not in ceilings:
            return []
        return [
            {
                "name": "FP32 FMA peak",
                "gflops_per_s": ceilings["cuda_fma_gflops_per_s"],
                "scope": "device",
            },
            {
                "name": f"cuBLAS GEMM {ceilings['cuda_gemm_n']}^3",
                "gflops_per_s": ceilings["cuda_gemm_gflops_per_s"],
                "scope": "device",
            },
        ]
    if "levels" not in ceilings:
        return []
    cores = {"one_core": "1 core", "all_cores": f"{ceilings['cores']} cores"}
    return [
        {"name": f"{what}, {cores[s]}", "gflops_per_s": ceilings[key][s], "scope": s}
        for what, key in (
            (f"FMA peak ({ceilings['isas'][0]})", "fma_gflops_per_s"),
            (f"BLAS GEMM {ceilings['gemm_n']}^3", "blas_gflops_per_s"),
        )
        for s in SCOPES
    ]


def working_set(row) -> float:
    """The bytes a row's data takes: its `working_set_bytes` where the row has it, else its
    `bytes` (the fewest a phase must move: each input read once and each output written once)
    over its `steps` where a phase repeats over the same arrays (optim: 5 updates of one
    weight move 5 x its bytes through the same arrays). An update in place counts its arrays
    twice (read and written), so a set near a level's edge is judged one level out: its roof
    is the lower one; a workload that knows its distinct arrays says so in working_set_bytes."""
    given = _number(row, "working_set_bytes")
    if math.isfinite(given):
        return given
    steps = _number(row, "steps")
    return _number(row, "bytes") / (steps if steps >= 1 else 1)


def judge(row, ceilings: dict | None) -> dict:
    """Where a result row (a dict or a pandas row) stands under this machine's roofs:
    {"roof_level": the smallest level its working set fits in, "roof_bound": that level's name
    or "compute", "roof_gflops_per_s": min(compute peak, the level's bandwidth x intensity),
    "roof_pct": 100 x achieved / roof (only for a row with gflops_per_s)}.

    The peaks and bandwidths are the all-cores ones for a row on more than one thread or rank
    (`scope`), else one core's; a GPU row (device "cuda") gets the GPU's. {} when the
    hierarchy was not measured, or the row's bytes and flops are not both positive numbers."""
    device = "cuda" if row.get("device") == "cuda" else "cpu"
    where = scope(row) if device == "cpu" else "one_core"
    allowed = {"device", "one_core", where}  # all cores are no slower than one
    peaks = [r["gflops_per_s"] for r in compute_roofs(ceilings, device) if r["scope"] in allowed]
    nbytes, flops = _number(row, "bytes"), _number(row, "flops")
    fitting = [lv for lv in levels(ceilings, device, where) if working_set(row) <= lv["bytes"]]
    if not peaks or not fitting or not (nbytes > 0 and 0 < flops < math.inf):
        return {}
    level, peak = fitting[0], max(peaks)
    bandwidth_roof = level["gb_per_s"] * flops / nbytes  # GB/s x FLOP/byte
    out = {
        "roof_level": level["name"],
        "roof_bound": "compute" if peak <= bandwidth_roof else level["name"],
        "roof_gflops_per_s": min(peak, bandwidth_roof),
    }
    achieved = _number(row, "gflops_per_s")
    if math.isfinite(achieved):
        out["roof_pct"] = 100 * achieved / out["roof_gflops_per_s"]
    return out
