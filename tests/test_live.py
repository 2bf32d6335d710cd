"""The live training view: progress() from a Result, and View on a terminal and in a pipe."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from harness.train import live
from harness.train.loop import Result

ROOT = Path(__file__).resolve().parent.parent
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
IMPLS = ("numpy", "c-naive", "pure_python")
EPOCHS = 3

# A child that shows View the way `train` does: every impl's epochs, then its status. Each
# impl's loss is its epoch over 10 plus its index, so every row's last loss is known.
SCRIPT = textwrap.dedent(f"""
    import signal, sys
    from harness.train.live import View
    impls = {list(IMPLS)!r}
    with View(impls, live=None) as view:
        for index, impl in enumerate(impls):
            for epoch in range(1, {EPOCHS} + 1):
                view.update(impl, {{"epoch": epoch, "epochs": {EPOCHS}, "unit": "samples",
                    "loss": epoch / 10 + index, "acc": 0.5, "rate": 1000.0 * epoch,
                    "rss_bytes": 50 * 2**20, "gpu_util_pct": None, "gpu_mem_bytes": None,
                    "eta_s": {EPOCHS} - epoch}})
            view.done(impl, "ok")
        if sys.argv[1:] == ["interrupt"]:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, inside the block
""")


def fake_result(seconds, samples=None) -> Result:
    result = Result(
        loss_by_epoch=[0.9, 0.5][: len(seconds)],
        train_acc_by_epoch=[0.6, 0.8][: len(seconds)],
        test_acc_by_epoch=[0.55, 0.75][: len(seconds)],
        seconds_by_epoch=list(seconds),
    )
    if samples is not None:
        result.samples_by_epoch = list(samples)  # the loop's new field, set as it will be
    return result


@pytest.fixture
def no_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # an import that fails
    live._nvml.cache_clear()
    yield
    live._nvml.cache_clear()


def test_progress_has_the_rate_of_the_last_epoch_and_the_eta_from_the_mean(no_nvml):
    state = live.progress(fake_result([1.0, 3.0], [1000, 1500]), epoch=2, epochs=10)
    assert state["rate"] == pytest.approx(500.0)  # 1500 samples in 3 s
    assert state["eta_s"] == pytest.approx(8 * 2.0)  # 8 epochs left, 2 s each so far
    assert (state["epoch"], state["epochs"], state["unit"]) == (2, 10, "samples")
    assert (state["loss"], state["acc"]) == (0.5, 0.75)
    assert live.psutil is None or state["rss_bytes"] > 0
    assert state["gpu_util_pct"] is None and state["gpu_mem_bytes"] is None


def test_progress_without_sample_counts_has_no_rate_and_is_json_friendly(no_nvml):
    state = live.progress(fake_result([2.0]), epoch=1, epochs=1, unit="tokens")
    assert state["rate"] is None and state["eta_s"] == 0 and state["unit"] == "tokens"
    assert json.loads(json.dumps(state)) == state


def test_without_psutil_memory_is_unknown_and_shown_as_a_dash(no_nvml, monkeypatch):
    monkeypatch.setattr(live, "psutil", None)
    state = live.progress(fake_result([1.0], [100]), epoch=1, epochs=2)
    assert state["rss_bytes"] is None and " - MiB " in live.line("numpy", state)


def test_progress_reads_gpu_util_and_memory_through_nvml(monkeypatch):
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = type("NVMLError", (Exception,), {})
    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetHandleByIndex = lambda index: "gpu0"
    nvml.nvmlDeviceGetUtilizationRates = lambda handle: types.SimpleNamespace(gpu=87, memory=40)
    nvml.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(used=3 * 2**30)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    live._nvml.cache_clear()
    try:
        state = live.progress(fake_result([1.0], [100]), epoch=1, epochs=2)
    finally:
        live._nvml.cache_clear()
    assert (state["gpu_util_pct"], state["gpu_mem_bytes"]) == (87.0, 3 * 2**30)
    assert live.line("cuda-naive", state).endswith(" gpu 87% 3072 MiB")


def test_a_plain_line_reads_as_the_log_of_an_epoch():
    state = {"epoch": 3, "epochs": 20, "loss": 0.12341, "acc": 0.972, "rate": 12345.2}
    state.update(unit="samples", rss_bytes=85 * 2**20, eta_s=12.2)
    assert live.line("numpy", state) == (
        "  numpy        epoch  3/20 loss 0.1234 acc 97.2% 12345 samples/s 85 MiB eta 12 s"
    )


def test_an_impl_the_view_was_not_given_is_named_with_the_expected_ones():
    with pytest.raises(KeyError, match="'cuda' is not in this view: expected one of numpy, c"):
        live.View(["numpy", "c"], live=False).update("cuda", {})


def run_script(stderr, *args):
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, *args], stderr=stderr, env=env, cwd=ROOT)


def on_a_terminal(*args) -> str:
    """What the script writes to a pseudo-terminal as its stderr, read from the master side."""
    master, slave = os.openpty()
    child = run_script(slave, *args)
    os.close(slave)  # the child holds it now: reading the master ends when the child exits
    chunks = []
    try:
        while select.select([master], [], [], 30)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal's last writer
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        child.wait(timeout=30)
    return b"".join(chunks).decode()


def test_on_a_terminal_the_table_is_redrawn_in_place_and_ends_with_every_last_epoch():
    shown = on_a_terminal()
    assert "\x1b[1A" in shown and "\x1b[2K" in shown  # cursor up, erase line: in place
    assert shown.count("\x1b[1A") >= len(IMPLS) * EPOCHS  # every update redrew the rows
    final = ESCAPE.sub("", shown.rsplit("\x1b[2K", 1)[-1])  # after the last erase: one frame
    assert "samples/s" in final
    for index, impl in enumerate(IMPLS):
        row = next(r for r in final.splitlines() if r.startswith(impl + " "))
        assert f"{EPOCHS}/{EPOCHS}" in row and f"{EPOCHS / 10 + index:.4f}" in row, row
        assert row.split()[-1] == "ok", row


def test_ctrl_c_inside_the_block_gives_the_terminal_its_cursor_back():
    shown = on_a_terminal("interrupt")
    assert "KeyboardInterrupt" in shown
    hidden, restored = shown.rfind("\x1b[?25l"), shown.rfind("\x1b[?25h")
    assert hidden >= 0 and restored > hidden


def test_in_a_pipe_every_update_is_one_plain_line():
    child = run_script(subprocess.PIPE)
    err = child.communicate(timeout=30)[1].decode()
    assert child.returncode == 0, err
    assert "\x1b" not in err
    lines = err.splitlines()
    assert len(lines) == len(IMPLS) * (EPOCHS + 1)  # every epoch's update, then a status
    assert (
        lines[0] == "  numpy        epoch 1/3 loss 0.1000 acc 50.0% 1000 samples/s 50 MiB eta 2 s"
    )
    assert lines[EPOCHS] == "  numpy        ok"
