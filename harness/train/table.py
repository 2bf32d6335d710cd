"""What `train` prints: the run's one-line description, and its table of rows at the end.

A row per impl and seed: the classifiers' final test accuracy, epochs and training time to the
target accuracy and median epoch time; the GPT's validation loss, the loss of the checked step,
its time to the target loss and tokens per second. With several seeds, a second table per impl:
MLPerf's time to target (train/checks.py's mlperf_score) and how many runs never reached it.
"""

from __future__ import annotations

import math


def describe(config, data, seeds: int) -> str:
    seed = (
        f"seed {config.seed}" if seeds == 1 else f"seeds {config.seed}..{config.seed + seeds - 1}"
    )
    rate = f"{config.opt} lr {config.learning_rate:g}, batch {config.batch}"
    if config.model == "gpt":
        return (
            f"training GPT {config.label} on {data.describe()}; {rate}, {config.steps} steps "
            f"(an epoch: {config.eval_every}), {seed}"
        )
    what = f"MLP {config.layers_label}"
    if config.model == "cnn":
        image = config.image or math.isqrt(data.features)
        what = f"CNN {config.layers_label} on {image}x{image} images of"
    return f"training {what} {data.describe()}; {rate}, {config.epochs} epochs, {seed}"


def _seconds(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if value is not None else "not hit"


def render(rows: list, config, seeds: int) -> str:
    gpt = config.model == "gpt"
    w = max([14, *(len(row["impl"]) for row in rows)])  # the impl column's width
    target = f"{config.target_loss:g}" if gpt else f"{config.target_acc:.0%}"
    col = (lambda text: f" {text:>4}") if seeds > 1 else (lambda text: "")  # the seed column
    if gpt:
        heads = ("val loss", "", "loss at", "check", "time to", f"{target} (s)", "tokens/s", "")
    else:
        heads = (
            "test acc",
            "",
            "epochs to",
            target,
            "time to",
            f"{target} (s)",
            "epoch time",
            "median (s)",
        )
    lines = [
        f"{'impl':<{w}}{col('seed')} {'status':<11} {heads[0]:>8} {heads[2]:>9} {heads[4]:>9} "
        f"{heads[6]:>10}",
        f"{'':<{w}}{col('')} {'':<11} {heads[1]:>8} {heads[3]:>9} {heads[5]:>9} {heads[7]:>10}",
    ]
    for row in rows:
        start = f"{row['impl']:<{w}}{col(row.get('seed'))}"
        if row["status"] != "ok":
            lines.append(f"{start} {row['status']:<11} {row.get('reason', '')}")
            continue
        to_target = _seconds(row["time_to_target_s"])
        if gpt:
            check = f"{row['check_loss']:.4f}" if row["check_loss"] is not None else "-"
            rate = f"{row['tokens_per_s']:.0f}" if row["tokens_per_s"] else "-"
            cells = (f"{row['val_loss']:>8.4f}", f"{check:>9}", f"{to_target:>9}", f"{rate:>10}")
        else:
            epochs = row["epochs_to_target"] or "-"
            epoch_s = f"{row['t_median_s']:.4f}" if row["t_median_s"] is not None else "-"
            cells = (
                f"{row['test_acc']:>8.2%}",
                f"{epochs:>9}",
                f"{to_target:>9}",
                f"{epoch_s:>10}",
            )
        lines.append(f"{start} {'ok':<11} {' '.join(cells)}")
    if seeds > 1:
        lines += ["", *mlperf_lines(rows, target, w)]
    return "\n".join(lines)


def mlperf_lines(rows: list, target: str, w: int) -> list:
    """Per impl, the MLPerf score its rows carry (each of its rows carries the same)."""
    lines = [
        f"time to {target}, MLPerf's way: the fastest and slowest runs dropped, the rest averaged",
        f"{'impl':<{w}} {'runs':>4} {'never hit':>9} {'mean (s)':>9}",
    ]
    seen = set()
    for row in rows:
        if row["impl"] in seen or row.get("mlperf_runs") is None:
            continue
        seen.add(row["impl"])
        mean = row["mlperf_time_to_target_s"]
        shown = f"{mean:.3f}" if mean is not None else "-"
        lines.append(
            f"{row['impl']:<{w}} {row['mlperf_runs']:>4} {row['mlperf_not_reached']:>9} {shown:>9}"
        )
    return lines
