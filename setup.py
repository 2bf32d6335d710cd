"""Builds the C rung's extension module, nnladder_c, from kernels/c/*.c (metadata: pyproject.toml),
and harness.measure._callgrind (harness/measure/count.py's instruction counts) where valgrind's headers exist.

The build is optional: without a working C compiler the project still installs, the build
prints why, and impls/c_ext.py reports itself unavailable with that reason. OpenMP is used where
the compiler has it (rung 4 runs on one thread otherwise). The AVX2/FMA micro-kernel needs no
-march flag: it is compiled for AVX2 by a target attribute and picked at run time.

NNLADDER_C_SANITIZE=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer instead of
-O3 (tox -e sanitize); such a module loads only with libasan preloaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
SOURCES = sorted(str(p.relative_to(HERE)) for p in (HERE / "kernels" / "c").glob("*.c"))
OPENMP = ["-fopenmp"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer", "-g", "-O1"]
INCLUDE_DIRS = [*os.environ.get("CPATH", "").split(os.pathsep), "/usr/local/include",
                "/usr/include"]
HAVE_CALLGRIND_H = any((Path(d) / "valgrind" / "callgrind.h").exists() for d in INCLUDE_DIRS if d)


class OptionalBuildExt(build_ext):
    """build_ext that turns a missing or failing compiler into a warning, not a failed install."""

    def initialize_options(self):
        super().initialize_options()
        self.skipped = set()  # names of the extensions that were not built

    def run(self):
        try:
            super().run()
        except Exception as error:  # noqa: BLE001 - no compiler at all is raised from run()
            for ext in self.extensions:
                self._skip(ext, error)

    def copy_extensions_to_source(self):
        self.extensions = [ext for ext in self.extensions if ext.name not in self.skipped]
        super().copy_extensions_to_source()  # only what was built

    def build_extension(self, ext):
        if ext.name == "harness.measure._callgrind":
            try:
                super().build_extension(ext)
            except Exception as error:  # noqa: BLE001 - only `run --instructions` needs it
                self._skip(ext, error)
            return
        flags = SANITIZE if os.environ.get("NNLADDER_C_SANITIZE") == "1" else ["-O3"]
        ext.extra_compile_args = ["-std=c11", *flags, *OPENMP]
        ext.extra_link_args = [*flags, *OPENMP]
        try:
            super().build_extension(ext)
            return
        except Exception as error:  # noqa: BLE001 - retried without OpenMP, then skipped
            first_error = error
        ext.extra_compile_args = ["-std=c11", *flags]
        ext.extra_link_args = list(flags)
        try:
            super().build_extension(ext)
            print("nnladder: built nnladder_c without OpenMP (the compiler lacks it): "
                  f"rung 4 runs on one thread ({first_error})", file=sys.stderr)
        except Exception as error:  # noqa: BLE001
            self._skip(ext, error)

    def _skip(self, ext, error):
        self.skipped.add(ext.name)
        what = ("the c impls report themselves unavailable" if ext.name == "nnladder_c"
                else "`run --instructions` says it is unavailable")
        print(f"nnladder: WARNING: the C extension {ext.name} was not built ({error}); the "
              f"project installs without it and {what}", file=sys.stderr)


setup(
    ext_modules=[Extension("nnladder_c", sources=SOURCES, include_dirs=["kernels/c",
                                                                          numpy.get_include()],
                           depends=[str(p.relative_to(HERE))
                                    for p in (HERE / "kernels" / "c").glob("*.h")])]
    + ([Extension("harness.measure._callgrind", sources=["harness/measure/_callgrind.c"])]
       if HAVE_CALLGRIND_H else []),
    cmdclass={"build_ext": OptionalBuildExt},
)
