"""Deliberately broken impls for the tests, joined through NNLADDER_IMPLS=tests.fault_impls.

Each breaks one way the harness must survive: a wrong answer, a missing op, a segfault in
native code, a hang.
"""

from __future__ import annotations

import ctypes
import time

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
            time.sleep(3600)
        return super().matmul(a_MK, b_KN)
