"""What a training run records as it goes: the Result, and the layers' histograms and norms.

Both loops (loop.py for the classifiers, lm.py for the GPT) fill a Result epoch by epoch; an
"epoch" of the GPT is an evaluation interval of steps. The Recorder adds what the report draws
per layer (harness/report/training_layers.py): weight and activation histograms at the first,
middle and last epochs, and each parameter's gradient norm averaged over every epoch's steps.
Weights are the parameters of two axes or more (matrices, conv kernels, embedding tables):
biases and layernorm gains are vectors, left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HIST_BINS = 20


@dataclass
class Result:
    loss_by_epoch: list = field(default_factory=list)  # mean training loss of each epoch
    train_acc_by_epoch: list = field(default_factory=list)
    test_acc_by_epoch: list = field(default_factory=list)  # the GPT: next-character accuracy
    seconds_by_epoch: list = field(default_factory=list)  # training steps only
    samples_by_epoch: list = field(default_factory=list)  # samples (the GPT: tokens) trained on
    epochs_to_target: int | None = None
    time_to_target_s: float | None = None
    test: dict = field(default_factory=dict)  # metrics() of the final weights on the test set
    weights: dict = field(default_factory=dict)  # final host weights by name
    weight_hist_by_epoch: dict = field(default_factory=dict)  # name -> [{epoch, edges, counts}]
    act_hist_by_epoch: dict = field(default_factory=dict)  # layer -> [{epoch, edges, counts}]
    grad_norm_by_epoch: dict = field(default_factory=dict)  # name -> [mean L2 norm per epoch]
    val_loss_by_epoch: list = field(default_factory=list)  # the GPT's
    loss_by_step: list = field(default_factory=list)  # the GPT's
    sample: str | None = None  # the GPT's generated text

    @property
    def train_s(self) -> float:
        return float(sum(self.seconds_by_epoch))

    @property
    def rate(self) -> float | None:
        """Samples (the GPT: tokens) per second of training."""
        return float(sum(self.samples_by_epoch)) / self.train_s if self.train_s else None


def host_weights(ops, names, params) -> dict:
    """An impl's parameters read back: float32 host copies by name."""
    return {
        name: np.asarray(ops.get(p), dtype=np.float32).copy()
        for name, p in zip(names, params, strict=True)
    }


def binned(values, bins: int = HIST_BINS) -> dict:
    """{"edges": [...], "counts": [...]} of the finite entries (none: both empty, which the
    report skips, rather than np.histogram's error on a NaN range)."""
    finite = np.asarray(values, dtype=np.float64).ravel()
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(finite, bins=bins)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def is_weight(array) -> bool:
    return np.ndim(array) >= 2


def snapshot_epochs(epochs: int) -> list:
    """The epochs whose histograms are kept: the first, the middle and the last."""
    return sorted({1, (epochs + 1) // 2, epochs}) if epochs > 0 else []


class Recorder:
    """Gradient norms step by step, and histograms at the snapshot epochs, into a Result."""

    def __init__(self, result: Result, names, epochs: int):
        self.result, self.names = result, list(names)
        self.at = snapshot_epochs(epochs)
        self.sums = dict.fromkeys(self.names, 0.0)
        self.steps = 0

    def gradients(self, grads_host) -> None:
        """One step's gradients (host arrays, in the order of `names`)."""
        for name, grad in zip(self.names, grads_host, strict=True):
            self.sums[name] += float(np.linalg.norm(np.asarray(grad, dtype=np.float64)))
        self.steps += 1

    def end_epoch(self, epoch: int, weights, activations) -> None:
        """Close an epoch: its mean gradient norms; at a snapshot epoch, the histograms of
        `weights()` ({name: host array}) and `activations()` ({layer: host array}), called
        only then (they read the device; activations run a forward)."""
        for name in self.names:
            mean = self.sums[name] / self.steps if self.steps else None
            self.result.grad_norm_by_epoch.setdefault(name, []).append(mean)
        self.sums, self.steps = dict.fromkeys(self.names, 0.0), 0
        if epoch not in self.at:
            return
        for name, w in weights().items():
            if is_weight(w):
                entry = {"epoch": epoch, **binned(w)}
                self.result.weight_hist_by_epoch.setdefault(name, []).append(entry)
        for layer, out in activations().items():
            entry = {"epoch": epoch, **binned(out)}
            self.result.act_hist_by_epoch.setdefault(layer, []).append(entry)
