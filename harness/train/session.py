"""One impl's training, in this process or in a child of its own: the row `train` stores.

`train_one` trains and returns the row's fields; an impl's failure is a result, not a crash.
`train_isolated` runs it in a child process (harness/train/worker.py) through the one child
protocol that `run` uses too (harness/execute/child.py), so a segfault in an impl's native
code costs that impl's row: an error with the signal and the child's last lines.
"""

from __future__ import annotations

import sys
import time

from harness import registry
from harness.execute.check import missing_op
from harness.execute.child import Child
from harness.train import loop, scores

WORKER = "harness.train.worker"


def train_one(name: str, data, config: loop.Config, weights) -> tuple:
    """-> (row fields, result or None)."""
    cls = registry.get_class(name)
    fields = {"impl": name, "device": cls.device}
    reason = registry.unavailable_reason(name)
    if reason:
        return {**fields, "status": "unavailable", "reason": reason}, None

    def progress(epoch, result):
        print(
            f"  {name:<12} epoch {epoch:>3}/{config.epochs} "
            f"loss {result.loss_by_epoch[-1]:.4f}  train {result.train_acc_by_epoch[-1]:6.1%}"
            f"  test {result.test_acc_by_epoch[-1]:6.1%}  {result.seconds_by_epoch[-1]:.3f} s",
            file=sys.stderr,
            flush=True,
        )

    start = time.perf_counter()
    try:
        ops = registry.create(name)
        fields.update(ops.info())
        result = loop.train(ops, data, config, weights, on_epoch=progress)
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
        **scores.result_fields(result),
        "wall_s": time.perf_counter() - start,
    }, result  # wall: training + evaluation


def train_isolated(name: str, spec: dict) -> tuple:
    """train_one in a child process -> (row fields, saved path or None).

    The child loads the dataset and the weights itself from `spec`; its epoch lines are passed
    through as they come. Training has no time limit: a child is waited for until it ends."""
    with Child(WORKER, {**spec, "impl": name}, echo=True) as child:
        message = child.next()
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
