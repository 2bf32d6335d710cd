"""The one child-process protocol, shared by `run` (its cells) and `train` (an impl's training).

The parent starts `python -m <module>` in a session of its own (so a kill takes everything it
started: MPI ranks, threads), writes a JSON spec to its stdin and reads protocol lines from its
stdout: `@@nnladder {...}`, one JSON message each. In the child, `channel()` keeps the
original stdout for those lines and sends everything else the process prints (an impl's own
prints, native libraries writing to fd 1) to stderr, so nothing can be mistaken for a result.
The parent keeps the last lines of the child's stderr, to say why a child died, and can echo
them as they come. A message of kind INTERIM is news on the way to a result (train's progress
after each epoch): `Child.result` hands each to a callback and returns the first message that
is not one, while `next` returns every message as it comes (run's "start" and "row").

A child that ends without its result (a segfault in native code, a launcher that exits at
once), one that sends nothing for too long, and one that stays alive after its last message
(a thread that never ends) are all the parent's to settle: `Child` never waits for ever, and
leaving its `with` block (an error, Ctrl-C) kills the child's whole process group.
"""

from __future__ import annotations

import collections
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading

PREFIX = "@@nnladder "
GRACE_S = 5.0  # after its last message, a child has this long to exit before it is killed
TAIL_LINES = 20
INTERIM = "interim"  # the kind of a message that is progress, not a result


class ChildTimeout(Exception):
    """The child sent nothing within the time allowed."""


def channel():
    """In a child: -> send(**message), writing protocol lines on the original stdout."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(**message):
        protocol.write(PREFIX + json.dumps(message) + "\n")

    return send


def exit_cause(returncode, tail: list) -> str:
    """Why a child ended without its result: the signal or exit code, and its last lines."""
    if returncode is not None and returncode < 0:
        what = f"killed by signal {signal.Signals(-returncode).name}"
    else:
        what = f"worker exited with code {returncode}"
    return what + (f" ({' | '.join(tail[-3:])})" if tail else "")


class Child:
    """One worker process: started with its spec, read message by message, always reaped."""

    def __init__(self, module: str, spec: dict, prefix=(), env=None, echo: bool = False):
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", module],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.tail: collections.deque = collections.deque(maxlen=TAIL_LINES)
        self.messages: queue.Queue = queue.Queue()
        self.readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, args=(echo,), daemon=True),
        ]
        for reader in self.readers:
            reader.start()
        try:
            self.proc.stdin.write(json.dumps(spec))
            self.proc.stdin.close()
        except BrokenPipeError:  # it died before reading its spec: its exit says why
            pass

    def _read_stdout(self):
        for line in self.proc.stdout:
            if line.startswith(PREFIX):
                self.messages.put(json.loads(line[len(PREFIX) :]))
        self.messages.put(None)  # end of stream: the child has exited or closed stdout

    def _read_stderr(self, echo: bool):
        for line in self.proc.stderr:
            if echo:
                sys.stderr.write(line)
            self.tail.append(line.rstrip())

    def next(self, timeout_s: float | None = None) -> dict | None:
        """The next message, None once the child closed its stdout, or ChildTimeout."""
        wait = None if timeout_s is None or not math.isfinite(timeout_s) else timeout_s
        try:
            return self.messages.get(timeout=wait)
        except queue.Empty:
            raise ChildTimeout(f"no message after {timeout_s:g} s") from None

    def result(self, on_interim=None, timeout_s: float | None = None) -> dict | None:
        """The next message that is not INTERIM (None once the child closed its stdout, or
        ChildTimeout); each INTERIM one before it goes to on_interim(message), as it comes."""
        while True:
            message = self.next(timeout_s)
            if message is None or message.get("kind") != INTERIM:
                return message
            if on_interim is not None:
                on_interim(message)

    def kill(self) -> None:
        """Kill the child's process group (it and everything it started), then reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def finish(self, grace_s: float = GRACE_S) -> None:
        """Let the child exit by itself for grace_s, then kill it: its work is done."""
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        self.kill()  # also the processes it left behind in its group

    def cause(self) -> str:
        """Why the child ended (call once it has: its signal or code, its last lines)."""
        self.proc.wait()
        for reader in self.readers:
            reader.join(timeout=1.0)
        return exit_cause(self.proc.returncode, list(self.tail))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        for reader in self.readers:  # the pipes close with the group: the readers end
            reader.join(timeout=1.0)
