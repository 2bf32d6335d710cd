"""The child process of `train` (harness/train/session.py): trains one impl, reports its row.

It reads a JSON spec on stdin (the impl, the model, its data and config, weights to load, where
to save them; train/plan.py's `spec`), sends each epoch's progress as an interim message and
answers with one protocol message (the child protocol of harness/execute/child.py, as `run`'s
worker does): {"kind": "row", "row": ..., "saved": path or None}. So a segfault in an impl's
native code, or an impl that exits, costs that impl's row, not the other impls'.
"""

from __future__ import annotations

import json
import sys

from harness.execute import child
from harness.train import plan, session
from harness.train.weights import save_weights


def main() -> int:
    send = child.channel()
    spec = json.load(sys.stdin)
    data, config = plan.from_spec(spec)
    weights = plan.load_weights(spec["load"], config, data) if spec["load"] else None
    fields, result = session.train_one(
        spec["impl"],
        data,
        config,
        weights,
        on_progress=lambda progress: send(kind=child.INTERIM, progress=progress),
    )
    saved = None
    if result is not None and spec["save"]:
        saved = str(save_weights(spec["save"], result.weights))
    send(kind="row", row=fields, saved=saved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
