"""Rung 05's tile sizes (kernels/cuda/05_warptile.cu): one configuration, the sweep's grid, and
the choice stored per GPU.

The kernel takes its eight tile sizes as -D options at load (NVRTC through CuPy, nvcc in the
tests, g++ in the emulation). A configuration is checked here before any compiler sees it,
by the rules the kernel's static_asserts state, so a bad one fails with the field it breaks.
benchmarks/warptile_sweep.py times every configuration of GRID on a GPU and stores the
fastest under the GPU's name in CHOICES; the tiled rung reads it when it is made (the
default where this GPU has none).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

# The project's results/ folder (harness/results/store.py's RESULTS), where the sweep writes.
CHOICES = Path(__file__).resolve().parent.parent / "results" / "warptile.json"
STATIC_SHARED_BYTES = 48 * 1024  # what a block may take without a dynamic opt-in
STAGES = 2  # the kernel's WT_STAGES


class WarptileConfig(NamedTuple):
    """bm x bn: a block's tile of c; bk: its K slab; wm x wn: a warp's tile, in wniter
    sub-tiles across n; tm x tn: a thread's outputs in each sub-tile."""

    bm: int = 128
    bn: int = 128
    bk: int = 16
    wm: int = 64
    wn: int = 64
    wniter: int = 4
    tm: int = 8
    tn: int = 4

    @property
    def threads(self) -> int:
        return 32 * (self.bm // self.wm) * (self.bn // self.wn)

    @property
    def label(self) -> str:
        """'128x128x16 w64x64/4 t8x4': block and slab, warp tile / sub-tiles, thread tile."""
        return (
            f"{self.bm}x{self.bn}x{self.bk} w{self.wm}x{self.wn}/{self.wniter} t{self.tm}x{self.tn}"
        )

    @property
    def defines(self) -> tuple:
        """The -D options that build the kernel with these tiles: all eight, always."""
        return tuple(f"-DWT_{field.upper()}={value}" for field, value in self._asdict().items())

    def checked(self) -> WarptileConfig:
        """Itself, or ValueError naming the rule of 05_warptile.cu's static_asserts it breaks."""
        bm, bn, bk, wm, wn, wniter, tm, tn = self
        rules = [
            (all(v > 0 for v in self), "every size positive"),
            (bm % wm == 0 and bn % wn == 0, "bm % wm == 0 and bn % wn == 0"),
            (wm % tm == 0 and wn % wniter == 0, "wm % tm == 0 and wn % wniter == 0"),
            (wn // wniter % tn == 0, "(wn / wniter) % tn == 0"),
            ((wm // tm) * (wn // wniter // tn) == 32, "(wm / tm) x (wn / wniter / tn) == 32 lanes"),
            (tn % 4 == 0 and bk % 4 == 0, "tn and bk multiples of 4 (float4 access)"),
            (self.threads <= 1024, "at most 1024 threads a block"),
            (bm * bk % (4 * self.threads) == 0, "bm x bk a multiple of 4 x threads"),
            (bk * bn % (4 * self.threads) == 0, "bk x bn a multiple of 4 x threads"),
            (
                STAGES * (bm * (bk + 4) + bk * bn) * 4 <= STATIC_SHARED_BYTES,
                f"{STAGES} stages of bm x (bk + 4) + bk x bn floats within 48 KiB",
            ),
        ]
        for holds, rule in rules:
            if not holds:
                raise ValueError(f"warptile tiles {tuple(self)} ({self.label}) break: {rule}")
        return self

    @classmethod
    def parse(cls, value) -> WarptileConfig:
        """From stored JSON, {"bm": 128, ...} with all eight fields, checked."""
        if not isinstance(value, dict) or set(value) != set(cls._fields):
            raise ValueError(
                f"a warptile config needs exactly the fields {cls._fields}, got {value!r}"
            )
        return cls(**{k: int(v) for k, v in value.items()}).checked()


DEFAULT = WarptileConfig()
# The sweep's grid: the default, a shorter and a longer-lived K slab, 256-thread blocks, narrow
# blocks in either direction, 8-wide thread tiles. Every one compiles for sm_90 without spills
# (tests/test_cuda_nvcc.py) and two besides the default pass the emulation (test_cuda_emu.py).
GRID = (
    DEFAULT,
    WarptileConfig(bk=8),
    WarptileConfig(wm=32, tm=4),  # 256 threads of 4 x 16 outputs
    WarptileConfig(bn=64, wn=32, wniter=2),  # 128 x 64 tiles: twice the blocks
    WarptileConfig(bm=64, wm=32, tm=4),  # 64 x 128 tiles
    WarptileConfig(wniter=2, tn=8),  # 8 x 8 outputs in 2 sub-tiles
    WarptileConfig(bm=256, bk=8),  # 256 x 128 tiles, 256 threads of 128 outputs
)


def chosen(gpu: str, path: Path | None = None) -> WarptileConfig:
    """The configuration the sweep chose for this GPU (its CUDA name) in `path` (CHOICES by
    default), DEFAULT if none."""
    path = path or CHOICES
    if not path.exists():
        return DEFAULT
    try:
        choices = json.loads(path.read_text())
        entry = choices.get(gpu)
        return DEFAULT if entry is None else WarptileConfig.parse(entry["config"])
    except (ValueError, AttributeError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path}: expected {{GPU name: {{'config': {{{', '.join(WarptileConfig._fields)}}}}}}} "
            f"as benchmarks/warptile_sweep.py writes it ({error}); delete the file or run the "
            "sweep again"
        ) from None


def record(gpu: str, config: WarptileConfig, details: dict, path: Path | None = None) -> Path:
    """Store `config` as this GPU's choice in `path` (CHOICES by default), beside the other
    GPUs' choices, with `details` (what the sweep measured); written whole, then renamed, so a
    reader never sees half a file."""
    path = path or CHOICES
    choices = json.loads(path.read_text()) if path.exists() else {}
    choices[gpu] = {"config": config.checked()._asdict(), "label": config.label, **details}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(choices, indent=1) + "\n")
    temporary.replace(path)
    return path
