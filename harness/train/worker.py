"""The child process of `train` (harness/train/session.py): trains one impl, reports its row.

It reads a JSON spec on stdin (the impl, the dataset, the config, weights to load, where to save
them), prints each epoch's progress to stderr, and answers with one protocol message (the child
protocol of harness/execute/child.py, as `run`'s worker does): {"kind": "row", "row": ...,
"saved": path or None}. So a segfault in an impl's native code, or an impl that exits, costs
that impl's row, not the other impls'.
"""

from __future__ import annotations

import json
import sys

from harness.execute import child
from harness.train import datasets, loop, session


def main() -> int:
    send = child.channel()
    spec = json.load(sys.stdin)
    data = datasets.load(spec["dataset"], spec["mnist"])
    config = loop.Config(**{**spec["config"], "layers": tuple(spec["config"]["layers"])})
    weights = loop.load_weights(spec["load"], config.layers) if spec["load"] else None
    fields, result = session.train_one(spec["impl"], data, config, weights)
    saved = None
    if result is not None and spec["save"]:
        saved = str(loop.save_weights(spec["save"], result.weights))
    send(kind="row", row=fields, saved=saved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
