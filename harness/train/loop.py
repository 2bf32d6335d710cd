"""End-to-end training over contract ops, so every impl trains the same classifier the same way.

A run: host weights from a seed (or a saved npz) -> impl.put -> per epoch, seeded shuffled
mini-batches: forward, loss, backward, optimizer step (the net of train/nets.py: the MLP or
the CNN) -> evaluation through the impl's forward on the train and test sets -> metrics on
host arrays (train/scores.py). Only the training steps are timed: evaluation, and reading each
step's gradients back for their norms (train/record.py), run outside the clock, so
time-to-accuracy is training time. Every impl gets the same initial weights and the same
batches, so their final accuracies must agree closely: the cross-rung proof that every
backward pass is right. The GPT's loop is lm.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness import models
from harness.train import nets
from harness.train.record import Recorder, Result, host_weights  # noqa: F401 - Result: its answer
from harness.train.scores import metrics

# The weights' functions, where the callers of the loop (`train`, its worker) find them.
from harness.train.weights import (  # noqa: F401
    WeightsError,
    check_save_path,
    init_weights,
    load_params,
    load_weights,
    role,
    save_weights,
    weight_shapes,
)

MODELS = ("mlp", "cnn")
ACT_ROWS = 256  # the fixed evaluation batch of the activation histograms: the first test rows


@dataclass(frozen=True)
class Config:
    layers: tuple = ()  # the MLP's widths, input first, classes last: (64, 32, 10)
    epochs: int = 20
    batch: int = 32
    opt: str = "sgd"
    lr: float | None = None  # None: the optimizer's rate in models.HYPER
    seed: int = 0  # initial weights and the batch order of every epoch
    target_acc: float = 0.95
    eval_batch: int = 1000  # rows per forward when evaluating: bounds device memory
    model: str = "mlp"  # or "cnn"
    channels: tuple = nets.CNN_CHANNELS  # the CNN's
    image: int | None = None  # the side of the CNN's images; None: the data's

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}: expected one of {', '.join(MODELS)}")
        if self.model == "mlp" and (len(self.layers) < 2 or min(self.layers) < 1):
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
        """The MLP's widths, or the CNN's channels: 64-32-10, 1-8-16."""
        return "-".join(map(str, self.layers if self.model == "mlp" else self.channels))

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else models.HYPER[self.opt]["lr"]


# ---- placing weights, batches, evaluation -------------------------------------------------


def _role(name: str) -> str:
    return "weight" if name.startswith("w") else "bias"


def batch_order(n: int, batch: int, seed: int, epoch: int) -> list:
    """The shuffled sample indices of each mini-batch of one epoch (the last may be short).

    Seeded by (seed, epoch), so every impl sees the same batches in the same order.
    """
    order_B = np.random.default_rng([seed, epoch]).permutation(n)
    return [order_B[start : start + batch] for start in range(0, n, batch)]


def evaluate(ops, net, params, x, labels_B, chunk: int = 1000):
    """Forward through the impl's ops in chunks -> (mean loss, predicted classes pred_B)."""
    loss_sum, preds = 0.0, []
    for start in range(0, len(labels_B), chunk):
        rows = slice(start, start + chunk)
        loss, probs_BC, _ = net.forward(
            ops, params, ops.put(x[rows], "activation"), ops.put(labels_B[rows], "label")
        )
        loss_sum += loss * len(labels_B[rows])
        preds.append(np.argmax(ops.get(probs_BC), axis=1))
    pred_B = np.concatenate(preds) if preds else np.zeros(0, np.int64)
    return loss_sum / max(len(labels_B), 1), pred_B


# ---- the loop -----------------------------------------------------------------------------


def check_fits(config: Config, data) -> None:
    """The net must fit the data: the MLP's first width its features, its last the classes;
    the CNN's images square ones (nets.py says each mismatch)."""
    nets.for_config(config, data)


def train(
    ops, data, config: Config, weights: dict | None = None, on_epoch: Callable | None = None
) -> Result:
    """Train one impl; `weights` (host, by name) default to the net's seeded init.

    `on_epoch(epoch, result)` is called after each epoch's evaluation (progress).
    """
    net = nets.for_config(config, data)
    host = weights if weights is not None else net.init(config.seed)
    params = [ops.put(w, role(name, w.shape)) for name, w in host.items()]
    state = [
        [
            ops.put(np.zeros_like(w), role(name, w.shape))
            for _ in range(models.OPT_STATE[config.opt])
        ]
        for name, w in host.items()
    ]
    x_train, x_test = net.inputs(data.x_train_BI), net.inputs(data.x_test_BI)
    result, step, pred_test_B = Result(), 0, None
    recorder = Recorder(result, host, config.epochs)

    def activations():  # on the fixed evaluation batch
        out = net.activations(ops, params, ops.put(x_test[:ACT_ROWS], "activation"))
        return {layer: ops.get(a) for layer, a in out.items()}

    for epoch in range(1, config.epochs + 1):
        loss_sum, seconds = 0.0, 0.0
        for rows_B in batch_order(len(data.labels_train_B), config.batch, config.seed, epoch):
            start = time.perf_counter()
            x = ops.put(x_train[rows_B], "activation")
            labels_B = ops.put(data.labels_train_B[rows_B], "label")
            step += 1
            loss, _, cache = net.forward(ops, params, x, labels_B)
            grads = net.backward(ops, params, cache, labels_B)
            models.apply_update(ops, config.opt, params, grads, state, step, lr=config.lr)
            ops.sync()
            seconds += time.perf_counter() - start
            loss_sum += loss * len(rows_B)
            recorder.gradients([ops.get(g) for g in grads])  # outside the clock
        result.seconds_by_epoch.append(seconds)
        result.samples_by_epoch.append(len(data.labels_train_B))
        # Evaluation: outside the clock.
        result.loss_by_epoch.append(float(loss_sum) / len(data.labels_train_B))
        _, pred_train_B = evaluate(
            ops, net, params, x_train, data.labels_train_B, config.eval_batch
        )
        _, pred_test_B = evaluate(ops, net, params, x_test, data.labels_test_B, config.eval_batch)
        result.train_acc_by_epoch.append(float(np.mean(pred_train_B == data.labels_train_B)))
        result.test_acc_by_epoch.append(float(np.mean(pred_test_B == data.labels_test_B)))
        if result.epochs_to_target is None and result.test_acc_by_epoch[-1] >= config.target_acc:
            result.epochs_to_target, result.time_to_target_s = epoch, result.train_s
        recorder.end_epoch(epoch, lambda: host_weights(ops, host, params), activations)
        if on_epoch:
            on_epoch(epoch, result)
    if pred_test_B is None:  # no epochs: evaluate the weights as given (loaded ones)
        _, pred_test_B = evaluate(ops, net, params, x_test, data.labels_test_B, config.eval_batch)
    result.test = metrics(data.labels_test_B, pred_test_B, data.classes)
    result.weights = host_weights(ops, host, params)
    return result
