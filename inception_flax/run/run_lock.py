"""One live command per run directory: an advisory lock that the operating system releases
when its holder exits or is killed, so nothing stale is left behind.

Process 0 of a run takes the lock of the run's directory (`DIR/.lock`, `files.try_lock`); the
other processes of a `--distributed` run share the directory and take none. A sweep takes each
run's lock before training it and skips a run whose lock a live process holds. Within one
process, taking a lock it already holds does nothing.
"""

from __future__ import annotations

import os

from inception_flax.utils import files

NAME = ".lock"
_held: dict[str, int] = {}  # real path of a run directory → the open lock file's descriptor


class Locked(ValueError):
    """The run directory is in use by another live process."""


def acquire(workdir: str) -> None:
    """Takes `workdir`'s lock (creating the directory), or raises `Locked` naming the
    process that holds it."""
    os.makedirs(workdir, exist_ok=True)
    key = os.path.realpath(workdir)
    if key in _held:
        return
    try:
        fd = files.try_lock(os.path.join(workdir, NAME))
    except files.Held as held:
        raise Locked(f"{workdir} is in use by another command (process {held}); wait for "
                     "it to finish, or give this one another --workdir.") from None
    _held[key] = fd


def release(workdir: str) -> None:
    """Gives `workdir`'s lock back, if this process holds it."""
    fd = _held.pop(os.path.realpath(workdir), None)
    if fd is not None:
        try:
            os.ftruncate(fd, 0)  # no holder named (`holder`) once let go
        except OSError:
            pass  # a full or read-only disk: the lock goes all the same
        os.close(fd)  # closing the descriptor releases the lock


def held(workdir: str) -> bool:
    return os.path.realpath(workdir) in _held


def holder(workdir: str) -> int | None:
    """The process id of the live process on this machine that holds `workdir`'s lock, read
    from the lock file without taking the lock (which would turn a starting run away); None
    where none does."""
    try:
        with open(os.path.join(workdir, NAME)) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, another user's
    return pid
