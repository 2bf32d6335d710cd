"""The runs of one `train` command: each impl with each seed, its rows, and the verdict.

`train_impl` trains one impl once per seed (in a child of its own unless told otherwise) and
returns its rows, each carrying the impl's MLPerf score of its time to target when there are
several seeds. `verdict` prints the table and the cross-rung check and returns the exit code.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

from harness import registry
from harness.train import checks, plan, scores, session, table
from harness.train.weights import save_weights


class How(NamedTuple):
    """How the command trains: in this process or in children, and the files it reads and
    writes ({(impl, seed): save path} for --save)."""

    in_process: bool
    mnist: str | None
    load: str | None
    saves: dict


def train_seed(name, config, data, weights, how: How, view) -> dict:
    """One impl's training with one seed -> its row fields."""
    update = lambda progress: view.update(name, progress)  # noqa: E731
    save = how.saves.get((name, config.seed))
    if how.in_process or registry.unavailable_reason(name):
        fields, result = session.train_one(name, data, config, weights, on_progress=update)
        saved = save_weights(save, result.weights) if result and save else None
    else:
        spec = plan.spec(config, data.name, how.mnist, how.load)
        fields, saved = session.train_isolated(
            name, {**spec, "save": save and str(save)}, on_progress=update
        )
    if saved:
        print(f"  {name}: weights saved to {saved}", file=sys.stderr)
    return fields


def train_impl(name, configs, data, weights, how: How, view) -> list:
    """One impl with each config (one per seed) -> its rows, ready to store."""
    rows = []
    for config in configs:
        fields = train_seed(name, config, data, weights, how, view)
        rows.append({**fields, "workload": "train", **scores.size_fields(config, data)})
    if len(configs) > 1:
        score = checks.mlperf_score(
            [row["time_to_target_s"] for row in rows if row["status"] == "ok"]
        )
        for row in rows:
            if row["status"] == "ok":
                row["mlperf_time_to_target_s"] = score["mean_s"]
                row.update({f"mlperf_{k}": v for k, v in score.items() if k != "mean_s"})
    return [{**row, "phase": "train"} for row in rows]


def verdict(writer, config, seeds: int) -> int:
    """Print the table and the cross-rung check -> the exit code."""
    rows = writer.rows
    print(table.render(rows, config, seeds))
    trained = sum(row["status"] == "ok" for row in rows)
    impls = f"{trained} impl(s) that trained" if seeds == 1 else f"{trained} runs, worst seed"
    if config.model == "gpt":
        spread, limit = checks.loss_spread(rows), checks.LOSS_LIMIT_REL
        said = f"step-{scores.CHECK_STEP} loss spread over {impls}: {spread:.2e} relative"
        why = f"step-{scores.CHECK_STEP} losses spread {spread:.2e} relative > {limit:g}"
    else:
        spread, limit = checks.spread_pp(rows), checks.SPREAD_LIMIT_PP
        said = f"accuracy spread over {impls}: {spread:.2f} points"
        why = f"final test accuracies spread {spread:.2f} points > {limit}"
    print(f"\n{said} (limit {limit:g})")
    print(f"stored {len(rows)} rows in {writer.path}")
    failed = sorted({row["impl"] for row in rows if row["status"] == "error"})
    if failed:
        print(f"FAILED: {', '.join(failed)} raised an error while training", file=sys.stderr)
    if spread > limit:
        print(f"FAILED: {why}: some impl's backward pass or update is wrong", file=sys.stderr)
    return 1 if failed or spread > limit else 0
