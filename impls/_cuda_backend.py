"""The one seam between the CUDA rungs' ops (impls/_cuda_base.py) and CUDA: a backend.

CupyBackend compiles each .cu file of kernels/cuda with NVRTC (`cupy.RawModule`), launches on
the current stream and reads the peak of CuPy's memory pool. The tests hand the same ops a
backend that runs the same kernel sources compiled for the CPU (tests/cuda_emu), so the
launch geometry and arguments are tested without a GPU. CuPy is imported only when a backend
is made, so that this module imports everywhere and a machine without CuPy, a driver or a GPU
sees the CUDA impls as unavailable, with the reason.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

KERNELS = Path(__file__).resolve().parent.parent / "kernels" / "cuda"

_KERNEL_NAME = re.compile(
    r'extern "C" __global__ void\s+(?:__launch_bounds__\([\w, ]+\)\s*)?(\w+)\('
)


def kernel_names(source: str) -> list:
    """The names of the kernels a .cu source defines (its `extern "C" __global__` functions)."""
    return _KERNEL_NAME.findall(source)


@lru_cache(maxsize=1)
def cuda_unavailable_reason() -> str | None:
    """Why CUDA impls cannot run here (no CuPy, no driver, no GPU), or None."""
    try:
        import cupy
    except ImportError as error:
        return f"CuPy is not installed ({error}); pip install cupy-cuda12x"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # noqa: BLE001 - CUDARuntimeError and friends: no driver
        return f"no usable CUDA driver: {type(error).__name__}: {error}"
    if count == 0:
        return "no CUDA GPU is visible (getDeviceCount() == 0)"
    return None


def gpu_name() -> str:
    """The CUDA name of the GPU CuPy runs on ("NVIDIA H200"): what tuned choices are kept by."""
    import cupy

    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    return name.decode() if isinstance(name, bytes) else name


class CupyBackend:
    """Our kernels on the GPU: one cupy.RawModule per .cu file, compiled on first use; `defines`
    maps a file to the NVRTC options it is built with besides the standard (05_warptile.cu's
    tile sizes, -DWT_BM=...)."""

    def __init__(self, files, defines=None):
        import cupy

        self.xp = cupy
        self._where = {}
        for file in files:
            source = (KERNELS / file).read_text()
            options = ("--std=c++17", *(defines or {}).get(file, ()))
            module = cupy.RawModule(code=source, options=options)
            self._where.update((name, module) for name in kernel_names(source))
        self._functions = {}
        self.multiprocessors = cupy.cuda.Device().attributes["MultiProcessorCount"]

    def launch(self, kernel, grid, block, args):
        function = self._functions.get(kernel)
        if function is None:
            function = self._functions[kernel] = self._where[kernel].get_function(kernel)
        function(grid, block, args)

    def empty(self, shape, dtype=np.float32):
        return self.xp.empty(shape, dtype=dtype)

    def to_device(self, x_np):
        return self.xp.asarray(x_np)

    def to_host(self, x):
        return self.xp.asnumpy(x)

    def address(self, x) -> int:
        return x.data.ptr

    def sync(self):
        self.xp.cuda.get_current_stream().synchronize()

    def peak_bytes(self, fn) -> int:
        """Bytes taken from CuPy's memory pool at the peak of one fn() call, beyond what was
        in use before it: the arrays fn allocates, whether or not the pool had them cached."""
        hook = _peak_hook()
        self.sync()
        with hook:
            fn()
            self.sync()
        return hook.peak


def _peak_hook():
    """A CuPy memory hook that follows the bytes in use from the pool and keeps their peak."""
    import cupy

    class PeakHook(cupy.cuda.MemoryHook):
        name = "nnladder_peak"

        def __init__(self):
            self.in_use = self.peak = 0

        def malloc_postprocess(self, device_id, size, mem_size, mem_ptr, pmem_id):
            self.in_use += mem_size
            self.peak = max(self.peak, self.in_use)

        def free_postprocess(self, device_id, mem_size, mem_ptr, pmem_id):
            self.in_use -= mem_size

    return PeakHook()
