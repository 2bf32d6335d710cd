"""The correctness gate: an impl's outputs against the float64 reference, before any timing."""

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
    return [np.asarray(o, dtype=np.float64) if isinstance(o, float) else ops.get(o)
            for o in outputs]
