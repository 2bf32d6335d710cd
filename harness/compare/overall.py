"""The grid as a whole: q-values that control the false discovery rate over its cells, and the
geometric mean of its ratios with a confidence interval.

Why a q-value. A cell's verdict is one test (stats.py); a grid of a hundred cells is a
hundred, so at 95% confidence about five cells of an unchanged commit would pass their
interval by luck (their threshold catches most of them, not all). Benjamini and Hochberg's
procedure (scipy's false_discovery_control) turns the cells' p-values into q-values: calling
"slower" or "faster" only the cells with q <= alpha keeps the expected share of false calls
among all calls at alpha or below. The cells of one run share that run's machine, so their
p-values are positively dependent, the case where the procedure still holds (Benjamini and
Yekutieli, 2001). Only timed cells take part: an instruction count is near-exact and has no
p-value, so its threshold and floor decide alone (verdicts.py).

The geometric mean says how the grid moved as a whole, where each cell is within its noise:
exp of the mean of the cells' log ratios, and a Student's t-interval on those logs (the cells
taken as a sample of the code's cells, so the interval is the spread between cells, not the
noise within one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

FDR = 0.05  # alpha: the false discovery rate a grid's calls are held to


def q_values(p: pd.Series) -> pd.Series:
    """Benjamini-Hochberg q-values of the cells' p-values; NaN where a cell has none."""
    q = pd.Series(np.nan, index=p.index, dtype=float)
    tested = p.notna()
    if tested.any():
        q[tested] = stats.false_discovery_control(p[tested].to_numpy(dtype=float), method="bh")
    return q


def check_fdr(fdr: float | None) -> None:
    if fdr is not None and not 0 < fdr < 1:
        raise ValueError(
            f"the false discovery rate must lie strictly between 0 and 1 (0.05 means 5%), got {fdr}"
        )


def geometric_mean(ratios, confidence: float) -> tuple:
    """-> (mean ratio, low, high, cells) over the finite positive ratios; low and high are NaN
    with fewer than two cells (no spread to see)."""
    logs = np.log(np.asarray([r for r in ratios if np.isfinite(r) and r > 0], dtype=float))
    if logs.size == 0:
        return np.nan, np.nan, np.nan, 0
    mean = logs.mean()
    if logs.size < 2:
        return float(np.exp(mean)), np.nan, np.nan, 1
    half = stats.t.ppf(1 - (1 - confidence) / 2, logs.size - 1) * stats.sem(logs)
    return (
        float(np.exp(mean)),
        float(np.exp(mean - half)),
        float(np.exp(mean + half)),
        int(logs.size),
    )
