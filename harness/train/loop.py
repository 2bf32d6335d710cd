"""End-to-end training over contract ops, so every impl trains the same MLP the same way.

A run: host weights from a seed (or a saved npz) -> impl.put -> per epoch, seeded shuffled
mini-batches: forward, loss, backward, optimizer step (harness.models) -> evaluation through
the impl's forward on the train and test sets -> metrics on host arrays (train/scores.py).
Only the training steps are timed: evaluation runs outside the clock, so time-to-accuracy is
training time. Every impl gets the same initial weights and the same batches, so their final
accuracies must agree closely: the cross-rung proof that every backward pass is right.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness import models
from harness.train.scores import metrics

# The weights' functions, where the callers of the loop (`train`, its worker) find them.
from harness.train.weights import (  # noqa: F401
    WeightsError,
    check_save_path,
    init_weights,
    load_weights,
    save_weights,
    weight_shapes,
)


@dataclass(frozen=True)
class Config:
    layers: tuple  # layer widths, input first, classes last: (64, 32, 10)
    epochs: int = 20
    batch: int = 32
    opt: str = "sgd"
    lr: float | None = None  # None: the optimizer's rate in models.HYPER
    seed: int = 0  # initial weights and the batch order of every epoch
    target_acc: float = 0.95
    eval_batch: int = 1000  # rows per forward when evaluating: bounds device memory

    def __post_init__(self):
        if len(self.layers) < 2 or min(self.layers) < 1:
            raise ValueError(
                f"layers must be two or more positive widths, input first "
                f"(e.g. 64-32-10), got {'-'.join(map(str, self.layers))}"
            )
        if self.opt not in models.HYPER:
            raise ValueError(
                f"unknown optimizer {self.opt!r}: expected one of {', '.join(models.HYPER)}"
            )
        if self.epochs < 0 or self.batch < 1:
            raise ValueError(
                f"epochs must be >= 0 and batch >= 1, got epochs={self.epochs}, batch={self.batch}"
            )
        if not 0 < self.target_acc <= 1:
            raise ValueError(f"target accuracy is a fraction in (0, 1], got {self.target_acc}")

    @property
    def layers_label(self) -> str:
        return "-".join(map(str, self.layers))

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else models.HYPER[self.opt]["lr"]


@dataclass
class Result:
    loss_by_epoch: list = field(default_factory=list)  # mean training loss of each epoch
    train_acc_by_epoch: list = field(default_factory=list)
    test_acc_by_epoch: list = field(default_factory=list)
    seconds_by_epoch: list = field(default_factory=list)  # training steps only
    epochs_to_target: int | None = None
    time_to_target_s: float | None = None
    test: dict = field(default_factory=dict)  # metrics() of the final weights on the test set
    weights: dict = field(default_factory=dict)  # final host weights by name

    @property
    def train_s(self) -> float:
        return float(sum(self.seconds_by_epoch))


# ---- placing weights, batches, evaluation -------------------------------------------------


def _role(name: str) -> str:
    return "weight" if name.startswith("w") else "bias"


def batch_order(n: int, batch: int, seed: int, epoch: int) -> list:
    """The shuffled sample indices of each mini-batch of one epoch (the last may be short).

    Seeded by (seed, epoch), so every impl sees the same batches in the same order.
    """
    order_B = np.random.default_rng([seed, epoch]).permutation(n)
    return [order_B[start : start + batch] for start in range(0, n, batch)]


def evaluate(ops, params, x_BI, labels_B, chunk: int = 1000):
    """Forward through the impl's ops in chunks -> (mean loss, predicted classes pred_B)."""
    loss_sum, preds = 0.0, []
    for start in range(0, len(labels_B), chunk):
        rows = slice(start, start + chunk)
        loss, probs_BC, _ = models.mlp_forward(
            ops, params, ops.put(x_BI[rows], "activation"), ops.put(labels_B[rows], "label")
        )
        loss_sum += loss * len(labels_B[rows])
        preds.append(np.argmax(ops.get(probs_BC), axis=1))
    pred_B = np.concatenate(preds) if preds else np.zeros(0, np.int64)
    return loss_sum / max(len(labels_B), 1), pred_B


# ---- the loop -----------------------------------------------------------------------------


def check_fits(config: Config, data) -> None:
    """The MLP's first width must be the dataset's features, its last the classes."""
    if (config.layers[0], config.layers[-1]) != (data.features, data.classes):
        raise ValueError(
            f"MLP {config.layers_label} does not fit dataset {data.name}: it has "
            f"{data.features} features and {data.classes} classes, so the layers "
            f"must start with {data.features} and end with {data.classes}"
        )


def train(
    ops, data, config: Config, weights: dict | None = None, on_epoch: Callable | None = None
) -> Result:
    """Train one impl; `weights` (host, by name) default to init_weights(layers, seed).

    `on_epoch(epoch, result)` is called after each epoch's evaluation (progress printing).
    """
    check_fits(config, data)
    host = weights if weights is not None else init_weights(config.layers, config.seed)
    params = [ops.put(w, _role(name)) for name, w in host.items()]
    state = [
        [ops.put(np.zeros_like(w), _role(name)) for _ in range(models.OPT_STATE[config.opt])]
        for name, w in host.items()
    ]
    result, step, pred_test_B = Result(), 0, None
    for epoch in range(1, config.epochs + 1):
        loss_sum = 0.0
        batches = batch_order(len(data.labels_train_B), config.batch, config.seed, epoch)
        start = time.perf_counter()
        for rows_B in batches:
            x_BI = ops.put(data.x_train_BI[rows_B], "activation")
            labels_B = ops.put(data.labels_train_B[rows_B], "label")
            step += 1
            loss, _, cache = models.mlp_forward(ops, params, x_BI, labels_B)
            grads = models.mlp_backward(ops, params, cache, labels_B)
            models.apply_update(ops, config.opt, params, grads, state, step, lr=config.lr)
            loss_sum += loss * len(rows_B)
        ops.sync()
        result.seconds_by_epoch.append(time.perf_counter() - start)
        # Evaluation: outside the clock.
        result.loss_by_epoch.append(loss_sum / len(data.labels_train_B))
        _, pred_train_B = evaluate(
            ops, params, data.x_train_BI, data.labels_train_B, config.eval_batch
        )
        _, pred_test_B = evaluate(
            ops, params, data.x_test_BI, data.labels_test_B, config.eval_batch
        )
        result.train_acc_by_epoch.append(float(np.mean(pred_train_B == data.labels_train_B)))
        result.test_acc_by_epoch.append(float(np.mean(pred_test_B == data.labels_test_B)))
        if result.epochs_to_target is None and result.test_acc_by_epoch[-1] >= config.target_acc:
            result.epochs_to_target, result.time_to_target_s = epoch, result.train_s
        if on_epoch:
            on_epoch(epoch, result)
    if pred_test_B is None:  # no epochs: evaluate the weights as given (loaded ones)
        _, pred_test_B = evaluate(
            ops, params, data.x_test_BI, data.labels_test_B, config.eval_batch
        )
    result.test = metrics(data.labels_test_B, pred_test_B, data.classes)
    result.weights = {
        name: np.asarray(ops.get(p), dtype=np.float32).copy()
        for name, p in zip(host, params, strict=True)
    }
    return result
