"""What a training run scored, on host arrays: its metrics and its row fields.

harness/train/loop.py and lm.py train and predict; this module only reads what came back
(labels and predictions, the final weights, the epochs' times) and never touches an impl. The
cross-rung checks over the rows are train/checks.py's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from harness.train.record import HIST_BINS, binned, is_weight

if TYPE_CHECKING:
    from harness.train.record import Result

CHECK_STEP = 50  # the GPT's cross-rung check (train/checks.py) compares this step's loss


def histograms(weights: dict, bins: int = HIST_BINS) -> dict:
    """{w0_IO: {"edges": [...], "counts": [...]}}: small binned lists, one per weight (two
    axes or more: matrices, kernels, tables)."""
    return {name: binned(w, bins) for name, w in weights.items() if is_weight(w)}


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


# ---- results rows -------------------------------------------------------------------------


def size_fields(config, data) -> dict:
    """The row fields that say what was trained (the same for every impl and seed of a run)."""
    if config.model == "gpt":
        return lm_size_fields(config, data)
    if config.model == "cnn":
        image = config.image or math.isqrt(data.features)
        what = f"model=cnn channels={config.layers_label} image={image}"
    else:  # the MLP's size reads as it always has
        what = f"layers={config.layers_label}"
    return {
        "size": f"dataset={data.name} {what} B={config.batch} "
        f"opt={config.opt} epochs={config.epochs}",
        "model": config.model,
        "dataset": data.name,
        "layers": config.layers_label,
        **({"image": image} if config.model == "cnn" else {}),
        "B": config.batch,
        "opt": config.opt,
        "lr": config.learning_rate,
        "epochs": config.epochs,
        "seed": config.seed,
        "target_acc": config.target_acc,
        "n_train": len(data.labels_train_B),
        "n_test": len(data.labels_test_B),
    }


def lm_size_fields(config, corpus) -> dict:
    return {
        "size": f"corpus={corpus.name} model=gpt L={config.blocks} D={config.dim} "
        f"G={config.heads} T={config.context} B={config.batch} opt={config.opt} "
        f"steps={config.steps}",
        "model": "gpt",
        "dataset": corpus.name,
        "layers": config.label,
        **{k: getattr(config, a) for k, a in LM_SIZES.items()},
        "V": corpus.vocab,
        "opt": config.opt,
        "lr": config.learning_rate,
        "epochs": config.epochs,
        "seed": config.seed,
        "target_loss": config.target_loss,
        "n_train": len(corpus.train_R),
        "n_test": len(corpus.val_R),
    }


LM_SIZES = {"B": "batch", "T": "context", "D": "dim", "L": "blocks", "G": "heads"}
LM_SIZES.update(steps="steps", eval_every="eval_every")


def result_fields(result: Result, model: str = "mlp") -> dict:
    """A trained impl's row fields: JSON-friendly lists, small (weights only as histograms)."""
    seconds = np.array(result.seconds_by_epoch)
    timed = seconds.size > 0  # --epochs 0 only evaluates loaded weights
    fields = {
        "rounds": seconds.size,
        "t_min_s": float(seconds.min()) if timed else None,
        "t_median_s": float(np.median(seconds)) if timed else None,
        "t_mean_s": float(seconds.mean()) if timed else None,
        "train_s": result.train_s,
        "loss_by_epoch": result.loss_by_epoch,
        "train_acc_by_epoch": result.train_acc_by_epoch,
        "test_acc_by_epoch": result.test_acc_by_epoch,
        "seconds_by_epoch": result.seconds_by_epoch,
        "samples_by_epoch": result.samples_by_epoch,
        "epochs_to_target": result.epochs_to_target,
        "time_to_target_s": result.time_to_target_s,
        "test_acc": result.test.get("accuracy"),
        "precision_C": result.test.get("precision_C"),
        "recall_C": result.test.get("recall_C"),
        "confusion_CC": result.test.get("confusion_CC"),
        "weight_hist": histograms(result.weights),
        "weight_hist_by_epoch": result.weight_hist_by_epoch,
        "act_hist_by_epoch": result.act_hist_by_epoch,
        "grad_norm_by_epoch": result.grad_norm_by_epoch,
    }
    if model == "cnn":
        fields["filters_FQJL"] = result.weights["w1_FQJL"].tolist()
    if model != "gpt":
        return {**fields, "samples_per_s": result.rate}
    check = min(CHECK_STEP, len(result.loss_by_step))
    return {
        **fields,
        "val_loss": result.test.get("val_loss"),
        "val_loss_by_epoch": result.val_loss_by_epoch,
        "loss_by_step": result.loss_by_step,
        "tokens_per_s": result.rate,
        "sample": result.sample,
        "check_step": check or None,  # the cross-rung check: the loss of this step
        "check_loss": result.loss_by_step[check - 1] if check else None,
    }
