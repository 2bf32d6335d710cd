"""The bare collectives: all-reduce, all-gather and reduce-scatter of 4 B ... 64 MiB, and the
alpha-beta model fitted to their times.

Each cell runs one collective (contract.Impl.collective) on a float32 vector x_N of N entries,
S = 4N bytes, nccl-tests' message size per rank; its row's t_median_s is the latency (the
slowest rank's), its comm_<name>_busbw_gb_per_s the bus bandwidth (execute/ranks.py). One-
process impls do not implement the hook: their cells are unsupported. FLOPs are 0 (the sums'
adds are not the point) and bytes are S.

The answer must not depend on P, since the gate's reference runs in one process: every rank
contributes x_N's block r and zeros elsewhere to a sum (an all-reduce, a reduce-scatter), and
x_N itself to an all-gather (which sends block r), so every collective's result is x_N (a
reduce-scatter's as a block that get() makes whole), exactly: adding zeros rounds nothing.

alpha_beta fits t = alpha + beta * S per collective (latency alpha, inverse bandwidth beta) by
least squares on relative residuals, so that 4 B and 64 MiB weigh alike.
"""

from __future__ import annotations

import numpy as np

from harness.signatures import COLLECTIVES
from harness.workloads.base import F32, TOL_PRODUCT, Workload, normal, rounding_bound

# 4 B ... 64 MiB in powers of 4: N = 4^k float32 entries, k = 0 .. 12.
ENTRIES = tuple(4**k for k in range(13))
QUICK_ENTRIES = (1, 256, 16384)  # 4 B, 1 KiB, 64 KiB


def _inputs(size, rng):
    return {"x_N": (normal(rng, (size["N"],)), "message")}


def _contribution(x_N, name: str, rank: int, ranks: int):
    """What this rank hands the collective, so that the result is x_N on every P."""
    if name == "allgather":
        return x_N
    size, extra = divmod(x_N.size, ranks)
    lo = rank * size + min(rank, extra)  # np.array_split's block of this rank
    mine_N = np.zeros_like(x_N)
    mine_N[lo : lo + size + (rank < extra)] = x_N[lo : lo + size + (rank < extra)]
    return mine_N


def _setup(ops, size, phase, placed):
    name = size["collective"]
    if name not in COLLECTIVES:
        raise ValueError(f"collective={name!r}: expected one of {', '.join(COLLECTIVES)}")
    comm = ops.comm
    rank, ranks = (comm.rank, comm.size) if comm is not None else (0, 1)
    mine_N = ops.put(_contribution(placed.host["x_N"], name, rank, ranks), "message")
    return lambda: (ops.collective(name, mine_N),)


def _bytes(size, phase):
    return F32 * size["N"]


COLLECTIVES_WORKLOAD = Workload(
    name="collectives",
    description="all-reduce, all-gather and reduce-scatter of 4 B ... 64 MiB over the ranks "
    "(nccl-tests' sizes and busbw)",
    phases=("fwd",),
    sizes=tuple({"collective": c, "N": n} for c in COLLECTIVES for n in ENTRIES),
    quick_sizes=tuple({"collective": c, "N": n} for c in COLLECTIVES for n in QUICK_ENTRIES),
    inputs=_inputs,
    setup=_setup,
    flops=lambda size, phase: 0,
    bytes=_bytes,
    error_bound=lambda size, phase: rounding_bound(1),  # exact: copies and sums with zeros
    tol=TOL_PRODUCT,
    params=("collective",),
)


def fit_alpha_beta(size_bytes, seconds) -> dict:
    """t = alpha + beta * S by least squares on (model - t) / t, alpha and beta >= 0:
    -> {"alpha_s", "beta_s_per_byte", "gb_per_s" (1 / beta), "rms_rel_residual", "points"}."""
    from scipy.optimize import lsq_linear

    S, t = np.asarray(size_bytes, np.float64), np.asarray(seconds, np.float64)
    if S.shape != t.shape or S.size < 2 or not (t > 0).all():
        raise ValueError(
            f"fit_alpha_beta: expected as many sizes as positive times, at least 2; got "
            f"{S.size} sizes and times {t.tolist()}"
        )
    fit = lsq_linear(np.stack([1 / t, S / t], axis=1), np.ones_like(t), bounds=(0, np.inf))
    alpha, beta = fit.x
    residual = (alpha + beta * S - t) / t
    return {
        "alpha_s": float(alpha),
        "beta_s_per_byte": float(beta),
        "gb_per_s": float(1 / beta / 1e9) if beta > 0 else float("inf"),
        "rms_rel_residual": float(np.sqrt(np.mean(residual**2))),
        "points": int(S.size),
    }


def alpha_beta(rows) -> dict:
    """Fits of the collectives rows: {impl: {"P=<ranks>": {collective: fit_alpha_beta}}}, one
    point per message size, the median of its rows' times (a size timed in several trials
    weighs as much as one timed once)."""
    groups: dict = {}
    for r in rows:
        if r.get("workload") == "collectives" and r.get("status") == "ok":
            key = (r["impl"], f"P={int(r['P'])}", r["collective"])  # P loads as a float
            groups.setdefault(key, {}).setdefault(F32 * int(r["N"]), []).append(r["t_median_s"])
    fits: dict = {}
    for (impl, ranks, name), by_size in sorted(groups.items()):
        if len(by_size) >= 2:
            sizes = sorted(by_size)
            times = [float(np.median(by_size[s])) for s in sizes]
            fits.setdefault(impl, {}).setdefault(ranks, {})[name] = fit_alpha_beta(sizes, times)
    return fits
