"""The MPI job an impl's ranks run in (impls/sharded.py): which rank, its spec, barriers, aborts.

Under MPI every rank runs the harness (execute/ranks.py runs each cell on all of them in
step), so that the job speaks with one voice and no rank is left waiting for ever:

- only rank 0 reads stdin (MPICH forwards stdin to rank 0 alone) and broadcasts the spec;
- only rank 0 reports: protocol lines, stored rows, printed tables;
- ranks wait for one another in barriers that sleep (`line_up`), not in MPI's spinning ones;
- an uncaught exception on any rank aborts the job (MPI_Abort) instead of hanging it.

Starting the job is the impl's side (`launch_prefix`: mpiexec of the mpich wheel, -n P), since
an impl imports nothing of the harness; which machines it starts on is the launcher's: `run
--hosts FILE` names a Hydra hostfile (`host` or `host:slots` a line, `#` comments) through
HYDRA_HOST_FILE, which Hydra's mpiexec reads as it reads `-f FILE`. The harness imports
mpi4py only here and in execute/ranks.py, and only when MPI is in use: it is an optional
extra.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

# Seconds a rank whose cell failed waits for the others to reach the same point before it
# concludes that it failed alone and aborts the job (they all arrive at once when they all
# failed alike: they ran the same code on the same shapes).
AGREE_S = 5.0
# Environment variables the MPI launchers set in every rank (MPICH / Hydra, Open MPI, PMIx).
_LAUNCHER_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")
HOSTFILE_VAR = "HYDRA_HOST_FILE"  # Hydra's mpiexec reads it as `-f`


def check_hostfile(path: str) -> str:
    """A Hydra hostfile's lines checked before any mpiexec reads it. -> its absolute path: what
    `run` sets HOSTFILE_VAR to for the mpiexec it starts, and what rows record."""
    file = os.path.abspath(path)
    try:
        lines = Path(file).read_text().splitlines()
    except OSError as error:
        raise ValueError(f"--hosts {path}: cannot read the hostfile ({error.strerror})") from None
    for number, line in enumerate(lines, 1):
        entry = line.split("#", 1)[0].strip()
        host, _, slots = entry.partition(":")
        if entry and (not host or " " in host or (slots and not slots.isdigit())):
            raise ValueError(
                f"--hosts {path}, line {number}: {line.strip()!r} is not a Hydra host line "
                "(expected `host` or `host:slots`, slots a whole number)"
            )
    if not any(line.split("#", 1)[0].strip() for line in lines):
        raise ValueError(f"--hosts {path}: the hostfile names no host")
    return file


def host() -> str:
    """The name of the machine this rank runs on (MPI's processor name)."""
    from mpi4py import MPI

    return MPI.Get_processor_name()


def under_mpiexec() -> bool:
    """Whether this process is one rank of a job started by mpiexec."""
    return any(name in os.environ for name in _LAUNCHER_VARS)


def world():
    """The job's communicator, every rank in it."""
    from mpi4py import MPI

    return MPI.COMM_WORLD


def rank() -> int:
    return world().rank if under_mpiexec() else 0


def is_root() -> bool:
    return rank() == 0


def abort_on_uncaught() -> None:
    """Under mpiexec, an exception no one catches ends every rank, with this rank's error.

    Without it the failed rank exits while the others wait in a collective for ever: the
    standard fix (what `python -m mpi4py` does) is MPI_Abort from sys.excepthook.
    """
    if not under_mpiexec():
        return

    def hook(kind, error, tb):
        text = "".join(traceback.format_exception(kind, error, tb))
        abort(world(), f"rank {world().rank}: {text}")

    sys.excepthook = hook


def read_spec(stream) -> dict:
    """The worker's JSON spec: read by rank 0 and broadcast, since only rank 0 has stdin."""
    if not under_mpiexec():
        return json.load(stream)
    abort_on_uncaught()
    return world().bcast(json.load(stream) if world().rank == 0 else None, root=0)


def abort(comm, message: str) -> None:
    """End every rank of comm's job, with this rank's message on stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    # mpiexec forwards a rank's stderr asynchronously and an abort tears the job down at
    # once: without this pause the message could die with the job (seen once in CI).
    time.sleep(0.5)
    comm.Abort(1)


def line_up(give_up=None) -> None:
    """A barrier of every rank that sleeps while it waits (MPI's blocking waits spin: ranks
    waiting for rank 0 to finish the single-process impls of `mpiexec ... harness run` would
    take the cores those timings need). give_up(): called when AGREE_S have passed, if given.
    Outside mpiexec there is nothing to wait for."""
    if not under_mpiexec():
        return
    request, deadline = world().Ibarrier(), time.monotonic() + AGREE_S
    while not request.Test():
        if give_up and time.monotonic() > deadline:
            give_up()
        time.sleep(1e-3)
