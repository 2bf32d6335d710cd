"""The correctness gate: an impl's outputs against the float64 reference, before any timing.

A checked row keeps rel_err beside err_bound, the workload's rounding_bound(n) = sqrt(n) * U
for the n roundings on the phase's longest chain (harness/workloads/), and err_ratio =
rel_err / err_bound: how close to float32's limit the rung computes. They compare because
the inputs are exact in both computations (the reference reads the same float32 arrays in
float64, whose own error is ~1e-16), so rel_err is the rounding error of the impl alone,
and as a norm over every entry it is the root mean square of the entries' relative errors,
which is what the probabilistic sqrt(n) * U describes (a typical entry, not the worst).
Measured: a plain loop in float32 (c-naive) reads 0.30 of it at every K from 16 to 1024, a
blocked sum (BLAS, c-blocked) 0.18 at K = 1024, sums in double (pure_python) only the final
rounding. A ratio past 1 is more error than the roundings explain: a cancellation, a constant
rounded to float32, a lost term. The gate passes on the workload's tolerance, not on it.
"""

from __future__ import annotations

import numpy as np


def rel_err(outputs, references) -> float:
    """max over outputs of ||out - ref|| / max(||ref||, sqrt(n) * rms of the cell's reference).

    The floor makes an output that is zero by symmetry (attention's key-bias gradient: a
    shift of every key's score by the same amount leaves the softmax unchanged) count against
    the typical magnitude of the cell's values, not against zero, where float32 noise alone
    would read as an infinite relative error. NaN anywhere gives NaN, which never passes.
    """
    refs = [np.asarray(r, dtype=np.float64) for r in references]
    outs = [np.asarray(o, dtype=np.float64) for o in outputs]
    if len(outs) != len(refs):
        raise ValueError(f"expected {len(refs)} outputs, got {len(outs)}")
    total = sum(float(np.sum(r * r)) for r in refs)
    count = sum(r.size for r in refs)
    rms = np.sqrt(total / max(count, 1))
    worst = 0.0
    for out, ref in zip(outs, refs):
        if out.shape != ref.shape:
            raise ValueError(f"output has shape {out.shape}, the reference {ref.shape}")
        if not np.isfinite(out).all():
            return float("nan")
        floor = np.sqrt(ref.size) * rms
        denominator = max(float(np.linalg.norm(ref)), floor) or 1.0
        worst = max(worst, float(np.linalg.norm(out - ref)) / denominator)
    return worst


def to_host(ops, outputs) -> list:
    """Outputs of a phase (impl-native arrays and plain floats) as host arrays."""
    return [
        np.asarray(o, dtype=np.float64) if isinstance(o, float) else ops.get(o) for o in outputs
    ]
