"""The training targets on every CPU rung, side by side: `python -m benchmarks.train_targets`.

- The CNN, `train --model cnn`'s defaults (scikit-learn's 8x8 digits as they are, channels
  1-16-32, Adam lr 0.01, batch 32, 15 epochs), with each of --seeds seeds on every CPU rung
  available here. Targets: every rung's final test accuracy >= 98%; per seed, the rungs'
  final accuracies within train's 0.5 points. Reported: accuracy per rung (the first seed's),
  the spread, time to 98% per rung (the median over the seeds, and MLPerf's score: fastest
  and slowest dropped, the rest averaged) and the epoch time.
- The GPT, `train --model gpt`'s default model (L2 D32 G4 T32, batch 8, Adam 3e-3) for 50
  steps from seed 0. Target: every rung's loss of step 50 within train's 1e-3 relative.
  Reported: that loss per rung, its relative spread, and tokens per second.

Each rung trains in a child of its own, as `train` does (harness/train/session.py), so a rung
that crashes costs its own line. Nothing is stored: the rows are printed. Exit code 1 when a
target is missed. The pure-Python rung takes ~5 minutes a CNN seed here; `--impl` picks rungs.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from harness import registry
from harness.train import checks, corpus, datasets, lm, loop, nets, plan, session

TARGET_ACC = plan.DEFAULTS["cnn"]["target"]


def cpu_rungs() -> list:
    return [
        name
        for name in registry.names()
        if registry.get_class(name).device == "cpu" and not registry.unavailable_reason(name)
    ]


def train_rows(impls, config, data_name, seeds: int) -> dict:
    """{impl: [row per seed]}: each run in a child, as `train` runs them."""
    rows = {}
    for name in impls:
        spec = {**plan.spec(config, data_name, None, None), "save": None}
        rows[name] = []
        for seed in range(config.seed, config.seed + seeds):
            row, _ = session.train_isolated(
                name, {**spec, "config": {**spec["config"], "seed": seed}}
            )
            rows[name].append({**row, "seed": seed})
            print(f"  {name} seed {seed}: {row['status']} {row.get('reason', '')}", file=sys.stderr)
    return rows


def cnn_report(rows: dict, seeds: int) -> tuple:
    lines = [
        f"CNN {nets.CNN_CHANNELS} on digits, {seeds} seed(s): target "
        f"{TARGET_ACC:.0%} on every rung",
        f"{'impl':<20} {'test acc':>8} {'min acc':>8} {'time to 98%':>12} {'MLPerf':>8} "
        f"{'never':>6} {'epoch (s)':>10}",
        f"{'':<20} {'seed 0':>8} {'seeds':>8} {'median (s)':>12} {'mean (s)':>8} {'hit':>6} "
        f"{'median':>10}",
    ]
    missed = []
    for name, runs in rows.items():
        ok = [r for r in runs if r["status"] == "ok"]
        if len(ok) < len(runs):
            lines.append(f"{name:<20} {runs[0]['status']}: {runs[0].get('reason', '')}")
            missed.append(name)
            continue
        times = [r["time_to_target_s"] for r in ok if r["time_to_target_s"] is not None]
        score = checks.mlperf_score([r["time_to_target_s"] for r in ok])
        accs = [r["test_acc"] for r in ok]
        if min(accs) < TARGET_ACC:
            missed.append(name)
        median = f"{statistics.median(times):.2f}" if times else "not hit"
        mean = f"{score['mean_s']:.2f}" if score["mean_s"] is not None else "-"
        epoch = statistics.median(r["t_median_s"] for r in ok)
        lines.append(
            f"{name:<20} {accs[0]:>8.2%} {min(accs):>8.2%} {median:>12} {mean:>8} "
            f"{score['not_reached']:>6} {epoch:>10.3f}"
        )
    spread = checks.spread_pp([r for runs in rows.values() for r in runs])
    lines.append(f"accuracy spread across rungs, worst seed: {spread:.2f} points (limit 0.5)")
    failed = bool(missed) or spread > checks.SPREAD_LIMIT_PP
    if missed:
        lines.append(f"MISSED: {', '.join(missed)} below {TARGET_ACC:.0%} or failed")
    return lines, failed


def gpt_report(rows: dict) -> tuple:
    lines = [
        "GPT L2 D32 G4 T32 on alice29, batch 8: the loss of step 50",
        f"{'impl':<20} {'loss at 50':>10} {'tokens/s':>9}",
    ]
    ok = []
    for name, runs in rows.items():
        row = runs[0]
        if row["status"] != "ok":
            lines.append(f"{name:<20} {row['status']}: {row.get('reason', '')}")
            continue
        ok.append(row)
        lines.append(f"{name:<20} {row['check_loss']:>10.6f} {row['tokens_per_s']:>9.0f}")
    spread = checks.loss_spread(ok)
    lines.append(f"relative spread across rungs: {spread:.2e} (limit {checks.LOSS_LIMIT_REL:g})")
    return lines, len(ok) < len(rows) or spread > checks.LOSS_LIMIT_REL


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", help="rungs, comma-separated (default: every CPU rung here)")
    parser.add_argument("--seeds", type=int, default=3, help="CNN seeds per rung (default 3)")
    parser.add_argument("--skip", choices=("cnn", "gpt"), help="leave one model out")
    args = parser.parse_args(argv)
    impls = args.impl.split(",") if args.impl else cpu_rungs()
    failed, out = False, []
    if args.skip != "cnn":
        defaults = {k: plan.DEFAULTS["cnn"][k] for k in ("opt", "lr", "epochs", "batch")}
        config = loop.Config(model="cnn", target_acc=TARGET_ACC, **defaults)
        rows = train_rows(impls, config, datasets.digits().name, args.seeds)
        lines, missed = cnn_report(rows, args.seeds)
        out, failed = out + lines + [""], failed or missed
    if args.skip != "gpt":
        config = lm.LMConfig(steps=50, eval_every=50, sample_chars=20)
        lines, missed = gpt_report(train_rows(impls, config, corpus.CORPUS.stem, 1))
        out, failed = out + lines, failed or missed
    print("\n".join(out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
