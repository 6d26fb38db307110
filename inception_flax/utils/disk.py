"""The disk a run writes to: a `--workdir` checked before anything starts, and a disk that fills
up or turns read-only while a run writes, recognised in whatever exception it surfaces as and
said in one sentence.

A full disk reaches us as an `OSError` (ENOSPC) from our own writes, as a warning from JAX's
compilation cache, and as orbax's or TensorStore's errors, which carry the errno only in their
text ("No space left on device [os_error_code='28']"). Nothing is lost when it happens: a
checkpoint is written to a temporary directory and renamed when complete, so the newest
complete one stays, and the same command resumes from it once there is room.

Standard library only.
"""

from __future__ import annotations

import errno
import os
import re
import sys

_ERRNOS = {errno.ENOSPC: "full", errno.EDQUOT: "over its quota", errno.EROFS: "read-only"}
_TEXT = re.compile(r"No space left on device|Disk quota exceeded|Read-only file system|"
                   r"os_error_code='?(28|122|30)\b")


def fault_of(error: BaseException) -> str | None:
    """"full", "over its quota" or "read-only" where `error` (or an exception it was raised
    from or while handling) is the disk's, else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _ERRNOS:
            return _ERRNOS[error.errno]
        match = _TEXT.search(str(error))
        if match:
            text = match.group(0)
            return ("read-only" if "Read-only" in text or "30" in text
                    else "over its quota" if "quota" in text or "122" in text else "full")
        error = error.__cause__ or error.__context__
    return None


def quiet_disk_faults() -> None:
    """Keeps the disk's faults out of the log lines and warnings of other writers (orbax's
    threads, asyncio's "exception was never retrieved", JAX's compilation cache) and out of
    stderr (TensorStore's writes that fail after orbax has closed their event loop print
    "Event loop is closed" tracebacks, hundreds in a sweep): the entry point says them once,
    in one sentence."""
    import logging
    import warnings

    if not isinstance(sys.stderr, _QuietStderr):
        sys.stderr = _QuietStderr(sys.stderr)

    class Filter(logging.Filter):
        def filter(self, record):
            return not _TEXT.search(record.getMessage())
    for name in ("", "absl", "asyncio", "orbax"):
        logging.getLogger(name).addFilter(Filter())
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(Filter())
    warnings.filterwarnings("ignore", message=r"(?s).*(No space left on device|Disk quota "
                            r"exceeded|Read-only file system)")


class _QuietStderr:
    """stderr without the tracebacks TensorStore's threads print when a write's result comes
    back to an event loop orbax has already closed (every frame in asyncio, ending in
    "RuntimeError: Event loop is closed"); everything else passes through unchanged."""

    NOISE = ("Traceback (most recent call last):", "asyncio/base_events.py",
             "RuntimeError: Event loop is closed")

    def __init__(self, stream):
        self.stream, self.partial, self.block = stream, "", []

    def write(self, text: str) -> int:
        self.partial += text
        while "\n" in self.partial:
            line, self.partial = self.partial.split("\n", 1)
            self._line(line + "\n")
        return len(text)

    def _line(self, line: str) -> None:
        if not self.block and not line.startswith(self.NOISE[0]):
            self.stream.write(line)
            return
        self.block.append(line)
        if line.startswith((" ", self.NOISE[0])):
            return  # the block goes on until its exception's line
        block, self.block = "".join(self.block), []
        files = re.findall(r'File "([^"]+)"', block)
        if not (line.startswith(self.NOISE[2]) and files
                and all(f.endswith(self.NOISE[1]) for f in files)):
            self.stream.write(block)

    def flush(self) -> None:
        if self.partial and not self.block:
            self.stream.write(self.partial)
            self.partial = ""
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def free_bytes(path: str) -> int:
    stat = os.statvfs(_existing(path))
    return stat.f_bavail * stat.f_frsize


def checkpoint_bytes(workdir: str) -> int | None:
    """The size of the largest complete checkpoint under `workdir` (a run's `checkpoints/<step>`
    or, in a sweep, any run's), or None where there is none."""
    sizes = []
    for root, dirs, _ in os.walk(workdir):
        if os.path.basename(root) == "checkpoints":
            sizes += [_size(os.path.join(root, d)) for d in dirs if d.isdigit()]
            dirs[:] = []
        dirs[:] = [d for d in dirs if d != "jax_cache"]
    return max(sizes, default=None)


def describe(fault: str, workdir: str) -> str:
    """The one sentence for a disk `fault` met while writing under `workdir`."""
    size = checkpoint_bytes(workdir)
    needs = (f"one checkpoint of this run takes {_human(size)}" if size is not None
             else "no checkpoint was written yet")
    if fault == "read-only":
        what = f"the disk holding {workdir} turned read-only"
    else:
        what = (f"the disk holding {workdir} is {fault} ({_human(free_bytes(workdir))} free; "
                f"{needs})")
    return (f"{what}: nothing was lost (each run resumes from its newest complete "
            "checkpoint); make room and run the same command again.")


def check_workdir(workdir: str) -> None:
    """A ValueError (one sentence) where `workdir` cannot be a run's directory: a file, or on a
    disk this process cannot write. Creates nothing."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f"--workdir {workdir} is a file, not a directory; give a directory "
                         "(it is created where it does not exist).")
    parent = _existing(workdir)
    if not os.path.isdir(parent):
        raise ValueError(f"--workdir {workdir} cannot be created: {parent} is a file; give "
                         "a path under a directory.")
    if os.statvfs(parent).f_flag & os.ST_RDONLY:
        raise ValueError(f"--workdir {workdir} is on a read-only file system ({parent}); give "
                         "a directory on a disk you can write to.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--workdir {workdir} cannot be written ({parent} is not writable by "
                         "this user); give a directory you can write to.")
    check_path_length(workdir, "--workdir", INNER)


# What a run's directory holds below it at the deepest (orbax's checkpoint files), for the
# length check of a path that must hold runs.
INNER = 128


def check_path_length(path: str, what: str, inner: int = 0) -> None:
    """A ValueError (one sentence) where `path` has a component longer than its file system
    takes, or is too long (with `inner` characters more below it) for a path."""
    path = os.path.abspath(path)
    parent = _existing(path)
    if not os.path.isdir(parent):
        return  # check_workdir says what is wrong with it
    name_max = os.pathconf(parent, "PC_NAME_MAX")
    path_max = os.pathconf(parent, "PC_PATH_MAX")
    for part in path.split(os.sep):
        if len(os.fsencode(part)) > name_max:
            raise ValueError(f"{what}: its name {part[:40]}... is {len(os.fsencode(part))} "
                             f"bytes, and the file system takes {name_max}; give a shorter "
                             "one.")
    if len(os.fsencode(path)) + inner > path_max:
        raise ValueError(f"{what}: its path is {len(os.fsencode(path))} bytes, and with "
                         f"what a run writes below it the file system's {path_max} is "
                         "exceeded; give a shorter one.")


def _existing(path: str) -> str:
    """`path`, or its nearest ancestor that exists."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def _size(directory: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, files in os.walk(directory) for name in files)


def _human(size: float) -> str:
    if size < 1024:
        return f"{size:.0f} bytes"
    for unit in ("KiB", "MiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} GiB"
