"""TCMalloc for the processes that train or benchmark, where it is installed.

XLA:CPU allocates each step's temporary buffers afresh (gigabytes for our train step at
299×299), and glibc's allocator hands blocks that large back to the kernel when they are freed,
so every step page-faults the same memory in again. TCMalloc keeps freed memory for the next
step, and the step runs markedly faster (the measurements are in `benchmarks/NOTES.md`). An
allocator can only be chosen before a process starts, so the entry points (`run_experiment.py`,
`benchmarks/train_step.py`) call `use_tcmalloc()` first: it executes the same command again
with the library preloaded. Install it with Debian's `libtcmalloc-minimal4`; without it, or
with `INCEPTION_FLAX_MALLOC=system`, nothing changes.
"""

from __future__ import annotations

import ctypes.util
import os
import sys

ENV = "INCEPTION_FLAX_MALLOC"  # "system": keep glibc's allocator
LIBRARIES = ("tcmalloc_minimal", "tcmalloc")


def find() -> str | None:
    """The installed TCMalloc library's name (as the dynamic loader finds it), or None."""
    for name in LIBRARIES:
        found = ctypes.util.find_library(name)
        if found:
            return found
    return None


def active() -> str:
    """"tcmalloc" if this process was started with TCMalloc preloaded, else "system"."""
    return "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "system"


def use_tcmalloc() -> None:
    """Executes this process's command again with TCMalloc preloaded, once; returns without
    doing anything where it is already loaded, not installed, or `INCEPTION_FLAX_MALLOC` is
    "system". Call it before anything else is imported or started."""
    if os.environ.get(ENV) == "system" or active() == "tcmalloc" or sys.platform != "linux":
        return
    library = find()
    if library is None:
        return
    env = dict(os.environ, LD_PRELOAD=" ".join(
        p for p in (os.environ.get("LD_PRELOAD", ""), library) if p))
    env.setdefault("TCMALLOC_RELEASE_RATE", "0")  # keep freed pages for the next step
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
