"""Writing a file whole or not at all: the one way the harness writes what it keeps.

`write_atomic(path, data)` writes to a temporary file beside the target (same folder, so the
rename cannot cross file systems), fsyncs it, then renames it over the target: a reader, or a
run killed at any instant, sees the old file or the new one, never half of one.
The temporary file is a dot-file ending in `.tmp`, so no glob of results (`*/*.jsonl`) can
take it for a result even where a kill leaves it behind. It is created 0644 less the umask,
as a plain open() would (mkstemp's 0600 would hide results from the other users of a shared
machine). On any failure it is removed and a WriteError names the target and the cause.

`reserve(path)` creates a new empty file and never replaces one. `check_writable(path)` says
whether a write could succeed, before any work is done for it, and leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

MODE = 0o644  # less the umask, by os.open


class WriteError(OSError, ValueError):
    """A file that cannot be written, said with its path and the cause.

    An OSError, so code that handles the system's errors still does (errno is the cause's),
    and a ValueError, so the command line prints it as one line, as it does a bad argument
    (io.UnsupportedOperation is both for the same reason).
    """


def _error(message: str, error: OSError) -> WriteError:
    failed = WriteError(message)
    failed.errno = error.errno  # ENOSPC, EACCES, ...: for code that tells them apart
    return failed


def _cause(path: Path, error: OSError) -> str:
    """Why `path` could not be written, in words: the part of the path in the way where a
    file stands where a folder must, else the system's reason."""
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if isinstance(error, (FileExistsError, NotADirectoryError)) and blocker is not None:
        return (
            "it is a file, not a folder"
            if blocker == path
            else f"{blocker} is a file, not a folder"
        )
    return error.strerror or str(error)


def _target(path: Path) -> Path:
    """The file a write to `path` replaces: a link's target (the link stays a link), never a
    folder, a device or a pipe (renaming over /dev/null would replace the device)."""
    target = path.resolve() if path.is_symlink() else path
    if target.exists() and not target.is_file():
        kind = "a folder" if target.is_dir() else "not a regular file"
        raise WriteError(f"cannot write {path}: it is {kind}")
    return target


def make_folder(folder: Path | str) -> Path:
    """`folder` and its missing parents -> the folder; a WriteError says why it cannot be."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _error(f"cannot make the folder {folder}: {_cause(folder, error)}", error) from error
    return folder


def reserve(path: Path | str) -> Path:
    """Create `path` empty (MODE less the umask) where no file has its name -> the path.

    FileExistsError where one has: a name that is taken is never replaced. Any other failure
    raises WriteError naming the path and the cause.
    """
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE))
    except FileExistsError:
        raise
    except OSError as error:
        raise _error(f"cannot create {path}: {_cause(path, error)}", error) from error
    return path


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # os.write may write less than asked (a signal, a pipe, a nearly full disk)
        view = view[os.write(fd, view) :]


def write_atomic(path: Path | str, data: str | bytes) -> Path:
    """Replace `path` with `data` (str is written as UTF-8) atomically -> the path.

    Its folder is made if missing. Raises WriteError (an OSError and a ValueError) naming
    the path and the cause; the old file, if any, is then untouched.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    created = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        target = _target(path)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
        created = True
        try:
            _write_all(fd, payload)
            os.fsync(fd)  # the data is on disk before the rename makes it the file
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as error:
        if created:
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise _error(f"cannot write {path}: {_cause(path, error)}", error) from error
        raise
    return path


def check_writable(path: Path | str) -> Path:
    """`path` if write_atomic could write it now, else a WriteError saying why.

    Checks that the path is not a folder or a device, that its folder exists or can be made
    (the nearest existing parent is a folder), and that a file can be created there, by
    creating one and removing it at once: permissions alone do not tell (root may write a
    read-only folder but not /proc; a read-only mount refuses everyone). Makes no folder and
    leaves no file.
    """
    path = Path(path)
    target = _target(path)
    existing = next(p for p in target.parents if p.exists())  # "." or "/" at the latest
    if not existing.is_dir():
        raise WriteError(f"cannot write {path}: {existing} is a file, not a folder")
    probe = existing / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE))
    except OSError as error:
        raise _error(
            f"cannot write {path}: cannot create a file in {existing}: {error.strerror or error}",
            error,
        ) from error
    probe.unlink()
    return path
