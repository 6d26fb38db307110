"""Files written whole or not at all, and the file locks that keep two processes (two shards
of a sweep, two commands on one run directory) from writing over each other. Both kinds of lock
are `fcntl.flock`s, which the operating system releases when their holder exits or is killed,
so nothing stale is left behind. Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os


def write_json_atomically(path: str, data: dict) -> None:
    """Writes a JSON file that readers see whole or not at all, also where two processes
    write it at once."""
    write_text_atomically(path, json.dumps(data, indent=1, default=float))


def write_text_atomically(path: str, text: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


@contextlib.contextmanager
def exclusive(path: str):
    """Holds an exclusive lock on `path` (created where missing) for the `with` block,
    waiting for another holder to let go: for work that must not interleave (the tables of a
    sweep whose shards finish at once, the decisions of a sweep run until decided)."""
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


class Held(ValueError):
    """The lock is held by another live process; the message names it."""


def try_lock(path: str) -> int:
    """Takes an exclusive lock on `path` without waiting and writes this process's id into
    it; returns the open descriptor (closing it lets go). Raises `Held` with the holder's
    process id where another live process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise Held(holder) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd
