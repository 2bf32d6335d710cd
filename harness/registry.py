"""Finds the impls: every `Impl` subclass with a name in a module of the impls/ package.

The harness reaches impls only through here. A module that fails to import (a missing
optional dependency, a broken build) does not break the others: it is listed as unavailable
with the error as its reason. Impls kept outside this project join through the environment:
NNLADDER_IMPLS=package.module,other.module (importable modules, scanned like impls/ files).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from functools import lru_cache

import impls
from harness.contract import Impl


class Broken(Impl):
    """Stands in for an impl module that could not be imported."""

    device = "cpu"
    rung = 99

    def __init__(self, module: str, error: str):
        self.name, self._reason = module, error

    def unavailable_reason(self) -> str:
        return self._reason


@lru_cache(maxsize=1)
def _discover() -> dict:
    found = {}
    modules = [f"impls.{m.name}" for m in pkgutil.iter_modules(impls.__path__)]
    modules += [m for m in os.environ.get("NNLADDER_IMPLS", "").split(",") if m]
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # noqa: BLE001 - any import failure makes it unavailable
            short = module_name.rsplit(".", 1)[-1]
            found[short] = Broken(short, f"import of {module_name} failed: {error!r}")
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Impl)
                and value.name
                and value.__module__ == module.__name__
            ):
                found[value.name] = value
    return dict(sorted(found.items(), key=lambda item: (item[1].rung, item[0])))


def names() -> list:
    return list(_discover())


def get_class(name: str):
    registered = _discover()
    if name not in registered:
        raise KeyError(f"unknown impl {name!r}: expected one of {', '.join(registered)}")
    return registered[name]


def unavailable_reason(name: str) -> str | None:
    return get_class(name).unavailable_reason()


def create(name: str) -> Impl:
    """An instance ready to run, or RuntimeError saying why it cannot run here."""
    cls = get_class(name)
    reason = cls.unavailable_reason()
    if reason:
        raise RuntimeError(f"impl {name!r} is unavailable here: {reason}")
    return cls()
