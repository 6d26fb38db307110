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
        os.close(fd)  # closing the descriptor releases the lock


def held(workdir: str) -> bool:
    return os.path.realpath(workdir) in _held
