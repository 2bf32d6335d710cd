"""What a training run scored, on host arrays: its metrics, its row fields, the cross-rung check.

harness/train/loop.py trains and predicts; this module only reads what came back (labels and
predictions, the final weights, the epochs' times) and never touches an impl.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from harness.train.loop import Config, Result

SPREAD_LIMIT_PP = 0.5  # the cross-rung check: final test accuracies within 0.5 points
HIST_BINS = 20


def histograms(weights: dict, bins: int = HIST_BINS) -> dict:
    """{w0_IO: {"edges": [...], "counts": [...]}}: small binned lists, one per weight matrix."""
    binned = {}
    for name, w in weights.items():
        if name.startswith("w"):
            counts, edges = np.histogram(w, bins=bins)
            binned[name] = {"edges": edges.tolist(), "counts": counts.tolist()}
    return binned


def metrics(labels_B, pred_B, classes: int) -> dict:
    """Accuracy, per-class precision and recall, and the confusion matrix (rows: true class).

    A class never predicted has no precision, one never present no recall: None, not 0.
    """
    labels_B, pred_B = np.asarray(labels_B), np.asarray(pred_B)
    if labels_B.shape != pred_B.shape:
        raise ValueError(
            f"labels_B has shape {labels_B.shape} but pred_B has shape "
            f"{pred_B.shape}: one prediction per label expected"
        )
    confusion_CC = np.bincount(labels_B * classes + pred_B, minlength=classes * classes).reshape(
        classes, classes
    )
    hits_C = np.diag(confusion_CC)
    predicted_C, present_C = confusion_CC.sum(axis=0), confusion_CC.sum(axis=1)
    return {
        "accuracy": float(hits_C.sum() / max(len(labels_B), 1)),
        "precision_C": [
            float(h / p) if p else None for h, p in zip(hits_C, predicted_C, strict=True)
        ],
        "recall_C": [float(h / n) if n else None for h, n in zip(hits_C, present_C, strict=True)],
        "confusion_CC": confusion_CC.tolist(),
    }


# ---- results rows and the cross-rung check ------------------------------------------------


def size_fields(config: Config, data) -> dict:
    """The row fields that say what was trained (the same for every impl of a run)."""
    return {
        "size": f"dataset={data.name} layers={config.layers_label} B={config.batch} "
        f"opt={config.opt} epochs={config.epochs}",
        "dataset": data.name,
        "layers": config.layers_label,
        "B": config.batch,
        "opt": config.opt,
        "lr": config.learning_rate,
        "epochs": config.epochs,
        "seed": config.seed,
        "target_acc": config.target_acc,
        "n_train": len(data.labels_train_B),
        "n_test": len(data.labels_test_B),
    }


def result_fields(result: Result) -> dict:
    """A trained impl's row fields: JSON-friendly lists, small (weights only as histograms)."""
    seconds = np.array(result.seconds_by_epoch)
    timed = seconds.size > 0  # --epochs 0 only evaluates loaded weights
    return {
        "rounds": seconds.size,
        "t_min_s": float(seconds.min()) if timed else None,
        "t_median_s": float(np.median(seconds)) if timed else None,
        "t_mean_s": float(seconds.mean()) if timed else None,
        "train_s": result.train_s,
        "loss_by_epoch": result.loss_by_epoch,
        "train_acc_by_epoch": result.train_acc_by_epoch,
        "test_acc_by_epoch": result.test_acc_by_epoch,
        "seconds_by_epoch": result.seconds_by_epoch,
        "epochs_to_target": result.epochs_to_target,
        "time_to_target_s": result.time_to_target_s,
        "test_acc": result.test.get("accuracy"),
        "precision_C": result.test.get("precision_C"),
        "recall_C": result.test.get("recall_C"),
        "confusion_CC": result.test.get("confusion_CC"),
        "weight_hist": histograms(result.weights),
    }


def spread_pp(rows) -> float:
    """Largest minus smallest final test accuracy of the impls that trained, in points."""
    accs = [
        r["test_acc"] for r in rows if r.get("status") == "ok" and r.get("test_acc") is not None
    ]
    return 100.0 * (max(accs) - min(accs)) if accs else 0.0
