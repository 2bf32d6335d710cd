"""One colour per impl, the same in every figure and table of the report.

Each family of rungs has its hue, told by the registry's `rung`: pure Python red, NumPy orange,
the C ladder blue, the CUDA ladder green, the sharded rungs purple, anything else grey (an
impl the registry does not know, or one whose module failed to import). Inside a family the
shade darkens up its rungs, so the top of a ladder is its darkest; impls of one rung take the
registry's order, darkest first (which puts `c`, rung 4 of the C GEMM ladder, first). A known
impl's colour depends on the registry alone; an unknown one's on the unknown names asked for.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.colors import to_hex

from harness import registry

# family: (the rungs it holds, its colormap, the lightest and darkest shade of it used); one
# impl alone in its family takes the middle of that range
FAMILIES = {
    "python": ((0,), "Reds", 0.55, 0.9),
    "numpy": ((1,), "Oranges", 0.45, 0.8),
    "c": ((2,), "Blues", 0.4, 0.95),
    "cuda": ((3, 4), "Greens", 0.4, 0.95),
    "sharded": ((5,), "Purples", 0.4, 0.95),
    "other": ((), "Greys", 0.4, 0.85),
}
UNKNOWN_RUNG = 99  # what the registry gives an impl whose module did not import


def family(rung: int) -> str:
    return next((name for name, (rungs, *_) in FAMILIES.items() if rung in rungs), "other")


def colours(impls) -> dict:
    """{impl: '#rrggbb'} for every name in `impls`, in their order, no two the same."""
    known = registry.names()
    rungs = {name: registry.get_class(name).rung for name in known}
    rungs.update({name: UNKNOWN_RUNG for name in sorted(set(impls) - set(known))})
    position = {name: i for i, name in enumerate(rungs)}  # the registry's, unknown names after
    members: dict = {}
    for name in sorted(rungs, key=lambda n: (-rungs[n], position[n])):  # darkest first
        members.setdefault(family(rungs[name]), []).append(name)
    shade = {}
    for name, names in members.items():
        _, colormap, light, dark = FAMILIES[name]
        values = np.linspace(dark, light, len(names)) if len(names) > 1 else [(light + dark) / 2]
        shade.update(
            {
                n: to_hex(matplotlib.colormaps[colormap](v))
                for n, v in zip(names, values, strict=True)
            }
        )
    return {impl: shade[impl] for impl in impls}
