"""One impl's training, in this process or in a child of its own: the row `train` stores.

`train_one` trains and returns the row's fields; an impl's failure is a result, not a crash.
After each epoch it hands `on_progress` the epoch's live.progress dict (what the live view
shows). `train_isolated` runs it in a child process (harness/train/worker.py) through the one
child protocol that `run` uses too (harness/execute/child.py): the child sends each progress
dict as an interim message, then its row, so a segfault in an impl's native code costs that
impl's row: an error with the signal and the child's last lines.
"""

from __future__ import annotations

import time

from harness import registry
from harness.execute.check import missing_op
from harness.execute.child import Child
from harness.train import live, lm, loop, scores

WORKER = "harness.train.worker"


def fit(ops, data, config, weights, on_epoch):
    """The loop of the config's model: lm.py's for the GPT, loop.py's for the classifiers."""
    if config.model == "gpt":
        return lm.train(ops, data, config, weights, on_epoch=on_epoch)
    return loop.train(ops, data, config, weights, on_epoch=on_epoch)


def train_one(name: str, data, config, weights, on_progress=None) -> tuple:
    """-> (row fields, result or None)."""
    cls = registry.get_class(name)
    fields = {"impl": name, "device": cls.device}
    reason = registry.unavailable_reason(name)
    if reason:
        return {**fields, "status": "unavailable", "reason": reason}, None
    unit = "tokens" if config.model == "gpt" else "samples"

    def progress(epoch, result):  # in the training process, where its memory and GPU are
        if on_progress is not None:
            on_progress(live.progress(result, epoch, config.epochs, unit))

    start = time.perf_counter()
    try:
        ops = registry.create(name)
        fields.update(ops.info())
        result = fit(ops, data, config, weights, progress)
    except NotImplementedError as error:
        return {
            **fields,
            "status": "unsupported",
            "reason": f"{name} does not implement {missing_op(error)}",
        }, None
    except Exception as error:  # noqa: BLE001 - one impl's failure must not stop the others
        return {**fields, "status": "error", "reason": f"{type(error).__name__}: {error}"}, None
    return {
        **fields,
        "status": "ok",
        "reason": "",
        **scores.result_fields(result, config.model),
        "wall_s": time.perf_counter() - start,
    }, result  # wall: training + evaluation


def train_isolated(name: str, spec: dict, on_progress=None) -> tuple:
    """train_one in a child process -> (row fields, saved path or None).

    The child loads the dataset and the weights itself from `spec`; its progress dicts reach
    on_progress as they come, and its other stderr lines are passed through. Training has no
    time limit: a child is waited for until it ends."""
    with Child(WORKER, {**spec, "impl": name}, echo=True) as child:
        message = child.result(
            lambda interim: on_progress(interim["progress"]) if on_progress else None
        )
        if message is not None:
            child.finish()
            return message["row"], message["saved"]
        cause = child.cause()
    return {
        "impl": name,
        "device": registry.get_class(name).device,
        "status": "error",
        "reason": cause,
    }, None
