"""The live training view: each impl's epoch, loss, accuracy, rate, memory and ETA as it trains.

`progress(result, epoch, epochs)` turns a training Result into one JSON-friendly dict: the
training process calls it after each epoch, so a child can send it to its parent as it is.
`View` shows those dicts, one row per impl: on a terminal, a rich table redrawn in place (rich's
Live, which also restores the cursor when Ctrl-C stops it); on anything else, such as a pipe or
a CI log, one plain line per update and no escape codes.
"""

from __future__ import annotations

import functools
import os
import sys

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

try:
    import psutil
except ImportError:  # a dev extra, not a dependency: without it memory shows as "-"
    psutil = None

MIB = 2**20
# The table's columns; the rate's header is "<unit>/s". Figures are right-aligned, so one
# space between columns is enough and the table fits in 80 columns.
COLUMNS = ("impl", "epoch", "loss", "acc", "rate", "MiB", "GPU %", "GPU MiB", "ETA", "status")
LEFT = ("impl", "status")
STATUS_STYLE = {"waiting": "dim", "training": "cyan", "ok": "green"}  # any other status: red


# ---- what one epoch says ------------------------------------------------------------------


@functools.cache
def _nvml():
    """(pynvml, GPU 0's handle), or None without nvidia-ml-py, a driver or a GPU.

    Opened once per process and left open: an epoch's reading then costs two NVML calls."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
    except pynvml.NVMLError:
        return None


def gpu_state() -> tuple:
    """-> (GPU 0's utilisation in percent, its memory in use in bytes), each None without NVML.

    Device-wide figures: NVML's per-process memory is often missing inside containers, and
    `train` runs one impl at a time, so the device's use is that impl's."""
    found = _nvml()
    if found is None:
        return None, None
    pynvml, handle = found
    try:
        util = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
        return float(util), int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except pynvml.NVMLError:  # a GPU that stops answering must not stop the training
        return None, None


def _last(values):
    return float(values[-1]) if values else None


def progress(result, epoch: int, epochs: int, unit: str = "samples") -> dict:
    """One epoch of a loop.Result as a JSON-friendly dict (what View.update shows).

    rate: `unit` per second over the last epoch (samples_by_epoch over its training time; None
    when the loop does not count them). eta_s: the remaining epochs times the mean epoch time
    so far; epoch times are training steps only, so evaluation makes it a little optimistic.
    """
    seconds = result.seconds_by_epoch
    counted = _last(getattr(result, "samples_by_epoch", None))
    took = _last(seconds)
    mean_s = sum(seconds) / len(seconds) if seconds else None
    gpu_util_pct, gpu_mem_bytes = gpu_state()
    return {
        "epoch": epoch,
        "epochs": epochs,
        "loss": _last(result.loss_by_epoch),
        "acc": _last(result.test_acc_by_epoch),
        "rate": counted / took if counted is not None and took else None,
        "unit": unit,
        "rss_bytes": psutil.Process(os.getpid()).memory_info().rss if psutil else None,
        "gpu_util_pct": gpu_util_pct,
        "gpu_mem_bytes": gpu_mem_bytes,
        "eta_s": max(epochs - epoch, 0) * mean_s if mean_s is not None else None,
    }


# ---- how it is shown ----------------------------------------------------------------------


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cells(impl: str, state: dict) -> dict:
    """A progress dict's figures as text, by column; "-" for what is unknown or not yet seen."""

    def shown(key, form):
        value = state.get(key)
        return form(value) if value is not None else "-"

    epochs = state.get("epochs")
    width = len(str(epochs)) if epochs is not None else 1
    epoch = f"{state['epoch']:>{width}}/{epochs}" if "epoch" in state else "-"
    return {
        "impl": impl,
        "epoch": epoch,
        "loss": shown("loss", "{:.4f}".format),
        "acc": shown("acc", "{:.1%}".format),
        "rate": shown("rate", "{:.0f}".format),
        "MiB": shown("rss_bytes", lambda rss: f"{rss / MIB:.0f}"),
        "GPU %": shown("gpu_util_pct", "{:.0f}".format),
        "GPU MiB": shown("gpu_mem_bytes", lambda used: f"{used / MIB:.0f}"),
        "ETA": shown("eta_s", duration),
    }


def line(impl: str, state: dict) -> str:
    """One update as a plain line: "  numpy        epoch  3/20 loss 0.1234 acc 97.2% ..."."""
    c = cells(impl, state)
    text = (
        f"  {impl:<12} epoch {c['epoch']} loss {c['loss']} acc {c['acc']} {c['rate']} "
        f"{state.get('unit', 'samples')}/s {c['MiB']} MiB eta {c['ETA']}"
    )
    if state.get("gpu_util_pct") is not None or state.get("gpu_mem_bytes") is not None:
        text += f" gpu {c['GPU %']}% {c['GPU MiB']} MiB"
    return text


class View:
    """Every impl's latest progress: a table redrawn in place on a terminal, lines elsewhere.

    `live` None: in place exactly when `stream` is a terminal. Use it as a context manager; the
    final table stays on the screen when the block ends, however it ends."""

    def __init__(self, impls: list, stream=sys.stderr, live: bool | None = None):
        self.impls = list(impls)
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self.states = {impl: {} for impl in self.impls}
        self.statuses = {impl: "waiting" for impl in self.impls}
        self._live = None

    def __enter__(self) -> View:
        if self.live:
            console = Console(file=self.stream, force_terminal=True)
            # Redrawn on each update only: between epochs nothing changes.
            self._live = Live(self.table(), console=console, auto_refresh=False)
            self._live.start(refresh=True)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._live is not None:
            self._live.update(self.table())
            self._live.stop()  # draws the last frame, shows the cursor again
            self._live = None

    def _check(self, impl: str) -> None:
        if impl not in self.states:
            raise KeyError(
                f"impl {impl!r} is not in this view: expected one of {', '.join(self.impls)}"
            )

    def update(self, impl: str, state: dict) -> None:
        """Show `impl`'s progress (a dict from progress(), perhaps through JSON)."""
        self._check(impl)
        self.states[impl], self.statuses[impl] = state, "training"
        self._show(line(impl, state))

    def done(self, impl: str, status: str) -> None:
        """`impl` has finished: its row keeps its last progress and says `status` (ok, error...)."""
        self._check(impl)
        self.statuses[impl] = status
        self._show(f"  {impl:<12} {status}")

    def _show(self, text: str) -> None:
        if self._live is not None:
            self._live.update(self.table(), refresh=True)
        else:
            print(text, file=self.stream, flush=True)

    def table(self) -> Table:
        units = {state["unit"] for state in self.states.values() if "unit" in state}
        headers = {"rate": f"{units.pop()}/s" if len(units) == 1 else "per s"}
        table = Table(box=None, padding=(0, 1, 0, 0), header_style="bold")
        for column in COLUMNS:
            justify = "left" if column in LEFT else "right"
            table.add_column(headers.get(column, column), justify=justify, no_wrap=True)
        for impl in self.impls:
            status = self.statuses[impl]
            styled = Text(status, style=STATUS_STYLE.get(status, "red"))
            row = {**cells(impl, self.states[impl]), "status": styled}
            table.add_row(*(row[column] for column in COLUMNS))
        return table
