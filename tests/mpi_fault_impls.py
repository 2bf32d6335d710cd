"""A sharded impl with one failing rank, for tests/test_sharded.py (NNLADDER_IMPLS).

`sharded-col-faulty` is sharded-col whose `linear` raises on the rank named by
NNLADDER_TEST_FAIL_RANK, from its NNLADDER_TEST_FAIL_CALL-th call on (default 1: the
harness's correctness check; 3: inside the timed rounds). Only this test module reads these
variables: production code has no fault hook.
"""

from __future__ import annotations

import os

from impls.sharded import ColumnParallel


class FaultyRank(ColumnParallel):
    name = "sharded-col-faulty"

    def __init__(self):
        super().__init__()
        self.calls = 0

    def linear(self, x_BI, w_IOp, b_Op):
        self.calls += 1
        if self.rank == int(os.environ.get("NNLADDER_TEST_FAIL_RANK", "-1")) and self.calls >= int(
            os.environ.get("NNLADDER_TEST_FAIL_CALL", "1")
        ):
            raise RuntimeError(f"injected fault on rank {self.rank} at call {self.calls}")
        return super().linear(x_BI, w_IOp, b_Op)
