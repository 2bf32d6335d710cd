"""Deliberately broken impls for the tests, joined through NNLADDER_IMPLS=tests.fault_impls.

Each breaks one way the harness must survive: a wrong answer, a missing op, a segfault in
native code, a hang, a worker that never exits, a launcher that fails at once.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from pathlib import Path

from impls.numpy_impl import NumpyImpl


class WrongImpl(NumpyImpl):
    name = "fault-wrong"

    def matmul(self, a_MK, b_KN):
        c_MN = super().matmul(a_MK, b_KN)
        c_MN[0, 0] += 1.0  # one entry off: the gate must see it
        return c_MN


class PartialImpl(NumpyImpl):
    name = "fault-partial"

    def relu(self, x_BI):
        raise NotImplementedError


class SegfaultImpl(NumpyImpl):
    name = "fault-segv"

    def matmul(self, a_MK, b_KN):
        if a_MK.shape[0] > 16:  # the smallest size runs, so the crash is mid-sweep
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        return super().matmul(a_MK, b_KN)


class SegfaultInTraining(NumpyImpl):
    name = "fault-segv-train"

    def sgd(self, p, g, lr):
        print("about to update")  # its last words: the row's reason quotes them
        ctypes.string_at(0)


class HangImpl(NumpyImpl):
    name = "fault-hang"

    def matmul(self, a_MK, b_KN):
        if a_MK.shape[0] > 16:
            pidfile = os.environ.get("NNLADDER_FAULT_PIDFILE")
            if pidfile:  # tells a test which process hangs, and that it has begun to
                Path(pidfile).write_text(str(os.getpid()))
            time.sleep(3600)
        return super().matmul(a_MK, b_KN)


class SlowWrongImpl(NumpyImpl):
    """Its smallest matmul is wrong and slow: a budget that learned from it would skip the
    larger sizes."""

    name = "fault-wrong-slow"

    def matmul(self, a_MK, b_KN):
        c_MN = super().matmul(a_MK, b_KN)
        if a_MK.shape[0] == 16:
            time.sleep(0.5)
            c_MN[0, 0] += 1.0
        return c_MN


class LingerImpl(NumpyImpl):
    """Leaves a thread that never ends: the worker finishes its cells but never exits."""

    name = "fault-linger"

    def __init__(self):
        super().__init__()
        threading.Thread(target=threading.Event().wait).start()


class LaunchFailsImpl(NumpyImpl):
    """Its launcher exits at once without reading the spec (an mpiexec that cannot start)."""

    name = "fault-launch"

    @classmethod
    def launch_prefix(cls, ranks):
        return [sys.executable, "-c", "import sys; sys.exit(3)"]


class BrokenConstructorImpl(NumpyImpl):
    name = "fault-init"

    def __init__(self):
        raise RuntimeError("no device left")
