"""The GPT's training loop: a character-level language model on the shipped corpus.

A run: host parameters from a seed (or a saved npz) -> impl.put -> `steps` Adam steps, each on
a seeded batch of B windows of T characters (train/corpus.py), forward, loss, backward and
update through the impl's ops (harness/models/transformer.py). Every `eval_every` steps (an
"epoch" of the loop, so progress and the learning curves work as for the classifiers) the
validation loss and next-character accuracy on fixed validation batches, outside the clock;
at the end a seeded sample generated through the impl's forward. Every impl starts from the
same parameters and sees the same batches, so their losses agree: the cross-rung check is
the loss of step 50 (train/checks.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness import models
from harness.train import corpus as text
from harness.train.record import Recorder, Result, host_weights
from harness.train.weights import role
from harness.workloads.base import normal
from harness.workloads.transformer import block_arrays  # the block's init, as its workload's

ACT_BATCH = 0  # the validation batch the activation histograms are taken on


@dataclass(frozen=True)
class LMConfig:
    steps: int = 300
    eval_every: int = 50  # steps per "epoch": an evaluation interval
    batch: int = 8  # B sequences
    context: int = 32  # T characters each
    dim: int = 32  # D
    blocks: int = 2  # L transformer blocks
    heads: int = 4  # G
    opt: str = "adam"
    lr: float | None = 3e-3  # None: the optimizer's rate in models.HYPER
    seed: int = 0  # initial parameters, the batches, the sample
    target_loss: float = 2.5  # validation loss (nats per character) whose time is reported
    val_batches: int = 4
    sample_chars: int = 200
    model: str = "gpt"

    def __post_init__(self):
        if self.opt not in models.HYPER:
            raise ValueError(
                f"unknown optimizer {self.opt!r}: expected one of {', '.join(models.HYPER)}"
            )
        sizes = {k: getattr(self, k) for k in ("eval_every", "batch", "context", "dim", "blocks")}
        if self.steps < 0 or min(sizes.values()) < 1 or self.heads < 1 or self.val_batches < 1:
            raise ValueError(
                f"steps must be >= 0 and the sizes >= 1, got steps={self.steps}, "
                + ", ".join(f"{k}={v}" for k, v in sizes.items())
                + f", heads={self.heads}, val_batches={self.val_batches}"
            )
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be a multiple of heads {self.heads}")
        if not self.target_loss > 0:
            raise ValueError(f"target loss is a positive loss, got {self.target_loss}")

    @property
    def epochs(self) -> int:
        return math.ceil(self.steps / self.eval_every)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else models.HYPER[self.opt]["lr"]

    @property
    def label(self) -> str:
        return f"L{self.blocks} D{self.dim} G{self.heads} T{self.context}"


def param_shapes(config: LMConfig, vocab: int) -> dict:
    """{wte_VD: (V, D), wpe_TD: (T, D), h0_g1_D: (D,), ...} in models.gpt_params' order."""
    sizes = {"V": vocab, "T": config.context, "D": config.dim, "H": 4 * config.dim}
    return {
        name: tuple(sizes[c] for c in name.rsplit("_", 1)[1])
        for name in models.gpt_params(config.blocks)
    }


def init_params(config: LMConfig, vocab: int) -> dict:
    """Seeded host parameters, initialised as the gpt workload's (workloads/transformer.py)."""
    rng = np.random.default_rng(config.seed)
    host = {
        "wte_VD": normal(rng, (vocab, config.dim), 0.1),
        "wpe_TD": normal(rng, (config.context, config.dim), 0.1),
    }
    for block in range(config.blocks):
        arrays = block_arrays(rng, config.dim, prefix=f"h{block}_")
        host.update({name: array for name, (array, _) in arrays.items()})
    host["gf_D"] = 1 + normal(rng, (config.dim,), 0.1)
    host["bf_D"] = normal(rng, (config.dim,), 0.1)
    return host


def _put_ids(ops, *ids):
    return [ops.put(i, "label") for i in ids]


def evaluate(ops, params, batches, config: LMConfig) -> tuple:
    """-> (mean loss, next-character accuracy) over the fixed validation batches."""
    losses, hits = [], []
    for tokens_R, labels_R, positions_R in batches:
        placed = _put_ids(ops, tokens_R, positions_R, labels_R)
        loss, cache = models.gpt_forward(
            ops, params, *placed, config.batch, config.heads, config.dim
        )
        losses.append(float(loss))
        hits.append(np.argmax(ops.get(cache[-1]), axis=1) == labels_R)
    return float(np.mean(losses)), float(np.mean(np.concatenate(hits)))


def activations(ops, params, batch, config: LMConfig) -> dict:
    """{embed, h0, h1, ..., ln_f, logits}: each stage's output on one validation batch."""
    tokens_R, _, positions_R = (ops.put(i, "label") for i in batch)
    wte_VD, wpe_TD, *blocks, gf_D, bf_D = params
    out = {"embed": ops.add(ops.embedding(tokens_R, wte_VD), ops.embedding(positions_R, wpe_TD))}
    x_RD, n = out["embed"], len(models.BLOCK_PARAMS)
    for at in range(0, len(blocks), n):
        x_RD, _ = models.block_forward(
            ops, blocks[at : at + n], x_RD, config.batch, config.heads, config.dim
        )
        out[f"h{at // n}"] = x_RD
    out["ln_f"] = ops.layernorm(x_RD, gf_D, bf_D)[0]
    out["logits"] = ops.matmul(out["ln_f"], ops.transpose(wte_VD))
    return {layer: ops.get(a) for layer, a in out.items()}


def sample(ops, params, corpus, config: LMConfig, prompt: str = "\n") -> str:
    """`sample_chars` characters after `prompt`, each drawn from the impl's forward's next-
    character probabilities by a generator seeded with the run's seed (seeded multinomial)."""
    rng = np.random.default_rng([config.seed, 1])  # not the batches' stream
    ids = list(corpus.encode(prompt))
    for _ in range(config.sample_chars):
        window_R = np.array(ids[-config.context :], dtype=np.int64)
        placed = _put_ids(ops, window_R, np.arange(len(window_R)), window_R)  # labels unused
        _, cache = models.gpt_forward(ops, params, *placed, 1, config.heads, config.dim)
        probs_V = np.asarray(ops.get(cache[-1]), dtype=np.float64)[-1]
        ids.append(int(rng.choice(len(probs_V), p=probs_V / probs_V.sum())))
    return corpus.decode(ids[len(prompt) :])


def train(
    ops, corpus, config: LMConfig, weights: dict | None = None, on_epoch: Callable | None = None
) -> Result:
    """Train one impl; `weights` (host, by name) default to init_params(config, V).

    `on_epoch(epoch, result)` is called after each evaluation interval."""
    host = weights if weights is not None else init_params(config, corpus.vocab)
    params = [ops.put(w, role(name, w.shape)) for name, w in host.items()]
    slots = models.OPT_STATE[config.opt]
    state = [
        [ops.put(np.zeros_like(w), role(n, w.shape)) for _ in range(slots)] for n, w in host.items()
    ]
    val = text.fixed_batches(corpus.val_R, config.batch, config.context, config.val_batches)
    result, step = Result(), 0
    recorder = Recorder(result, host, config.epochs)
    B, G, D = config.batch, config.heads, config.dim
    for epoch in range(1, config.epochs + 1):
        seconds, first = 0.0, step
        for _ in range(min(config.eval_every, config.steps - step)):
            step += 1
            tokens_R, labels_R, positions_R = text.batch(
                corpus.train_R, B, config.context, config.seed, step
            )
            start = time.perf_counter()
            placed = _put_ids(ops, tokens_R, positions_R, labels_R)
            loss, cache = models.gpt_forward(ops, params, *placed, B, G, D)
            grads = models.gpt_backward(ops, params, cache, placed[2], B, G)
            models.apply_update(ops, config.opt, params, grads, state, step, lr=config.lr)
            ops.sync()
            seconds += time.perf_counter() - start
            result.loss_by_step.append(float(loss))
            recorder.gradients([ops.get(g) for g in grads])  # outside the clock
        result.seconds_by_epoch.append(seconds)
        result.samples_by_epoch.append((step - first) * B * config.context)
        result.loss_by_epoch.append(float(np.mean(result.loss_by_step[first:])))
        val_loss, val_acc = evaluate(ops, params, val, config)  # outside the clock
        result.val_loss_by_epoch.append(val_loss)
        result.test_acc_by_epoch.append(val_acc)
        if result.epochs_to_target is None and val_loss <= config.target_loss:
            result.epochs_to_target, result.time_to_target_s = epoch, result.train_s
        recorder.end_epoch(
            epoch,
            lambda: host_weights(ops, host, params),
            lambda: activations(ops, params, val[ACT_BATCH], config),
        )
        if on_epoch:
            on_epoch(epoch, result)
    if not result.val_loss_by_epoch:  # no steps: evaluate the parameters as given (loaded)
        val_loss, val_acc = evaluate(ops, params, val, config)
    result.test = {"val_loss": val_loss, "accuracy": val_acc}
    result.sample = sample(ops, params, corpus, config)
    result.weights = host_weights(ops, host, params)
    return result
