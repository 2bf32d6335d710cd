"""The verdicts over a training run's rows: the cross-rung checks, and MLPerf's time to target.

Every impl trains from the same weights on the same batches, so per seed their results must
agree: the classifiers' final test accuracies within SPREAD_LIMIT_PP points, the GPT's loss of
step scores.CHECK_STEP within LOSS_LIMIT_REL of each other. Over several seeds, an impl's time
to target is scored the MLPerf way (`mlperf_score`): plain numbers in, a verdict out.
"""

from __future__ import annotations

import math
from collections import defaultdict

SPREAD_LIMIT_PP = 0.5  # the classifiers' check: final test accuracies within 0.5 points
LOSS_LIMIT_REL = 1e-3  # the GPT's check: the step's losses within 0.1% of the smallest


def _by_seed(rows, field: str) -> dict:
    """{seed: [field of each ok row]} of the rows that trained and have the field."""
    found = defaultdict(list)
    for row in rows:
        if row.get("status") == "ok" and row.get(field) is not None:
            found[row.get("seed")].append(row[field])
    return found


def spread_pp(rows) -> float:
    """The largest, over seeds, of the final test accuracies' max - min, in points."""
    spreads = [100.0 * (max(a) - min(a)) for a in _by_seed(rows, "test_acc").values()]
    return max(spreads, default=0.0)


def loss_spread(rows) -> float:
    """The largest, over seeds, of the checked step's losses' (max - min) / min."""
    spreads = [
        (max(losses) - min(losses)) / min(losses) if min(losses) > 0 else math.inf
        for losses in _by_seed(rows, "check_loss").values()
    ]
    return max(spreads, default=0.0)


def mlperf_score(times) -> dict:
    """MLPerf's score of several runs' times to target (None: a run that never reached it).

    The runs are sorted, a run that never reached the target counting as the slowest; with
    three runs or more the fastest and the slowest are dropped and the rest averaged (with
    fewer, all are). The mean is None when a run that never reached the target is among those
    averaged: there is no time to report then, only how many never reached it.
    -> {"mean_s", "runs", "averaged", "not_reached"}
    """
    ordered = sorted(math.inf if t is None else float(t) for t in times)
    kept = ordered[1:-1] if len(ordered) >= 3 else ordered
    mean = sum(kept) / len(kept) if kept and math.isfinite(sum(kept)) else None
    return {
        "mean_s": mean,
        "runs": len(ordered),
        "averaged": len(kept),
        "not_reached": sum(1 for t in ordered if math.isinf(t)),
    }
