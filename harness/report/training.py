"""The report's training part: a section per model (MLP, CNN, GPT) with the newest run of that
model, its figures (training_curves.py: the run's curves, time to accuracy, the confusion
matrix; training_layers.py: weights, activations, gradients and filters per layer) and, for
the GPT, the text it generated.

The report (harness/report/summary.py) inlines what `figures(table, order)` draws and places
each figure under its model's heading by title, as `sections(table)` lists them, each with the
one line that says what to look for, and the GPT's generated text. A figure draws from the
fields it needs and is left out where the rows lack them. Each impl has its palette colour, as
in every other figure; names from the table (impls, sizes, layers) are drawn through draw.plain.
"""

from __future__ import annotations

import re

import pandas as pd

from harness.report import training_curves as curves
from harness.report import training_layers as layers
from harness.report.palette import colours

MODELS = {"mlp": "MLP", "cnn": "CNN", "gpt": "GPT"}  # a row without "model" is an MLP's
SAMPLE_CHARS = 2000  # of a generated sample shown on the page


def latest_runs(table: pd.DataFrame) -> list:
    """[(model, rows)]: per model, its newest run's ok rows of its newest size, one per impl,
    in the order they were trained; models in MODELS' order, unknown ones after."""
    if table.empty or "workload" not in table:
        return []
    rows = table[
        (table.workload == "train")
        & (table.phase == "train")
        & (table.status == "ok")
        & (table.rounds > 0)
    ]  # rounds 0: evaluation only
    model = rows.get("model", pd.Series(None, index=rows.index))
    # A stable sort keeps each run's impls in the order they were trained (the user's order).
    rows = rows.assign(
        model=[m if isinstance(m, str) and m else "mlp" for m in model],
        run_id=rows.get("run_id", pd.Series("", index=rows.index)).fillna(""),
        size=rows["size"].fillna(""),
    ).sort_values("timestamp", kind="stable", na_position="first")
    out = []
    for name, of_model in rows.groupby("model", sort=False):
        newest = of_model.iloc[-1]
        run = of_model[(of_model.run_id == newest.run_id) & (of_model["size"] == newest["size"])]
        out.append((name, run.drop_duplicates("impl", keep="last")))
    return sorted(
        out, key=lambda m: (list(MODELS).index(m[0]) if m[0] in MODELS else len(MODELS), m[0])
    )


# (name, what to look for, the function that draws it or returns None), in the page's order
FIGURES = [
    (
        "Learning curves",
        "Loss falls as accuracy rises; the rungs' lines should lie on one another (they train "
        "from the same weights on the same batches), so a rung apart from the rest has a bug.",
        curves.learning_curves,
    ),
    (
        "Loss curves",
        "Validation loss turning up while training loss still falls is overfitting; the rungs' "
        "curves should coincide, and the legend gives each rung's training speed.",
        curves.loss_curves,
    ),
    (
        "Time to accuracy",
        "Training seconds each rung needs to reach the target test accuracy, beside its median "
        "epoch: the speedup of the ladder in time to a result.",
        curves.time_to_accuracy,
    ),
    (
        "Weight histograms",
        "Each rung's final weights per layer: the outlines should coincide; a rung whose "
        "outline stands apart trained differently.",
        layers.weight_histograms,
    ),
    (
        "Weights by epoch",
        "How each layer's weights spread from their initialisation: a layer whose outline "
        "never moves is not learning, one that keeps widening is heading for divergence.",
        layers.weights_by_epoch,
    ),
    (
        "Activations by epoch",
        "Each layer's outputs on one fixed batch: a tall spike at 0 after a ReLU is dead units, "
        "outputs piling up at the ends of the range are saturation.",
        layers.activations_by_epoch,
    ),
    (
        "Gradient flow",
        "Gradient norm per layer on a log axis, input dark to output light: lines decades "
        "apart, falling towards the input, are vanishing gradients; lines climbing are exploding.",
        layers.gradient_flow,
    ),
    (
        "First-layer filters",
        "Trained filters show structure (edges, strokes, blobs of one sign); filters that still "
        "look like noise have learned little, and one whose ± is far below the others' is dead.",
        layers.filter_images,
    ),
    (
        "Confusion matrix",
        "Off-diagonal counts are the mistakes: which true class (row) the model takes for which "
        "(column).",
        curves.confusion,
    ),
]


def trained(model: str, rows: pd.DataFrame) -> str:
    """What a section's figures are of: the model and its configuration."""
    return f"{MODELS.get(model, model)} {rows['size'].iloc[0]}"


def figures(table: pd.DataFrame, order: list | None = None) -> list:
    """[(title, Figure)] of every training figure there is something to draw for; [] when the
    table has no training rows. `order`: the impls of the whole report, so that each keeps
    the colour it has in the others."""
    out = []
    for model, rows in latest_runs(table):
        palette = colours(list(dict.fromkeys([*(order or []), *rows.impl])))
        of = trained(model, rows)
        drawn = [(name, draw(of, rows, palette)) for name, _, draw in FIGURES]
        out += [(f"{name}: {of}", fig) for name, fig in drawn if fig is not None]
    return out


def sample(text) -> str | None:
    """A generated sample for the page (which escapes it): control characters but newline
    and tab shown as U+FFFD, and at most SAMPLE_CHARS of it."""
    if not isinstance(text, str) or not text.strip():
        return None
    shown = "".join(c if c.isprintable() or c in "\n\t" else "\ufffd" for c in text)
    return shown[:SAMPLE_CHARS] + (" [...]" if len(shown) > SAMPLE_CHARS else "")


def sections(table: pd.DataFrame) -> list:
    """[{anchor, name, about, figures: [(title, caption)], samples: [(impl, text)]}] per model:
    every figure the section may hold (figures(table) draws those it has fields for)."""
    out = []
    for model, rows in latest_runs(table):
        texts = [
            (impl, sample(text))
            for impl, text in zip(rows.impl, rows.get("sample", [None] * len(rows)), strict=True)
        ]
        out.append(
            {
                "anchor": "training-" + re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-"),
                "name": MODELS.get(model, model),
                "about": f"{rows['size'].iloc[0]}: newest run {rows.run_id.iloc[-1] or '?'}, "
                f"{len(rows)} impl(s): {', '.join(rows.impl)}",
                "figures": [(f"{name}: {trained(model, rows)}", c) for name, c, _ in FIGURES],
                "samples": [(impl, text) for impl, text in texts if text],
            }
        )
    return out
