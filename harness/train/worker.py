"""The child process of `train` (harness/commands/train.py): trains one impl, reports its row.

It reads a JSON spec on stdin (the impl, the dataset, the config, weights to load, where to save
them), prints each epoch's progress to stderr, and answers with one protocol line on stdout
(`@@nnladder {"kind": "row", ...}`), as harness/execute/worker.py does for `run`. So a segfault
in an impl's native code, or an impl that exits, costs that impl's row, not the other impls'.
"""

from __future__ import annotations

import json
import os
import sys

from harness.commands.train import train_one
from harness.execute.child import PREFIX
from harness.train import datasets
from harness.train import loop as train


def main() -> int:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # an impl's own prints go to stderr, never into the protocol
    sys.stdout = sys.stderr
    spec = json.load(sys.stdin)
    data = datasets.load(spec["dataset"], spec["mnist"])
    config = train.Config(**{**spec["config"], "layers": tuple(spec["config"]["layers"])})
    weights = train.load_weights(spec["load"], config.layers) if spec["load"] else None
    fields, result = train_one(spec["impl"], data, config, weights)
    saved = None
    if result is not None and spec["save"]:
        saved = str(train.save_weights(spec["save"], result.weights))
    protocol.write(PREFIX + json.dumps({"kind": "row", "row": fields, "saved": saved}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
