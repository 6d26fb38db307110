"""A sweep in N processes on this machine's CPU, each on its own cores (`--workers N`).

XLA:CPU spreads each operation of a program over the cores its process may use; for a small
network much of a step then goes to handing work between threads, and processes pinned to a
core each keep every core busy with work of their own (docs/sweeps.md has
the measurement). So `run` starts the same command N times as shard i/N of the units of work its starting
command wrote to a file (`--shard`: consecutive slices, `part`, so that a variant's seeds stay
in one process and reuse its programs) and prints their lines prefixed with `[worker i]`. Each worker pins itself to its
share of the cores (`enter`, first thing in `run_experiment.py`, before JAX starts its
threads). The workers run in a session of their own: Ctrl-C (SIGINT) or SIGTERM to the command
that started them, or its death, sends each worker SIGTERM, on which it stops as a preempted
run does (a run in training saves a checkpoint first; the same command resumes). The workers
leave the tables, and the decisions between the stages of a sweep run until decided, to that
command: it makes them once every worker has finished.

For CPU training only: on an accelerator, one process drives the device (and
`sweep.seeds_per_program` shares it between seeds). Standard library only, so that
`run_experiment.py` can call `enter` before anything heavy is imported.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading

ENV = "INCEPTION_FLAX_WORKER"  # in a worker's environment: "i/n:cores", e.g. "1/2:2,3"
WORK = "INCEPTION_FLAX_WORK"  # and the file that holds the units of work
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def part(items: list, index: int, count: int) -> list:
    """The `index`-th of `count` consecutive slices of `items`, as equal as they can be (the
    first ones one longer where they do not divide)."""
    size, extra = divmod(len(items), count)
    start = index * size + min(index, extra)
    return items[start:start + size + (index < extra)]


def core_sets(count: int, cores: list[int]) -> list[list[int]]:
    """`cores` split into `count` consecutive sets as equal as they can be (`part`)."""
    if not 1 <= count <= len(cores):
        raise ValueError(f"--workers={count} needs between 1 and {len(cores)} workers: this "
                         f"process may use {len(cores)} CPU core(s) ({_spans(cores)}), and each "
                         f"worker takes at least one.")
    return [part(cores, i, count) for i in range(count)]


def is_worker() -> bool:
    """True in a process that `run` started."""
    return bool(os.environ.get(ENV))


def enter() -> None:
    """In a worker (else nothing): pins this process to its cores, and asks for SIGTERM when
    the command that started it dies. Call it before JAX is imported."""
    if not is_worker():
        return
    cores = [int(core) for core in os.environ[ENV].partition(":")[2].split(",")]
    os.sched_setaffinity(0, cores)
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # that command died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def slurm_shard() -> str | None:
    """"i/n" of a Slurm array task (the task's index from the array's first, of its count),
    or None outside one: the one place that reads Slurm's environment."""
    if "SLURM_ARRAY_TASK_ID" not in os.environ:
        return None
    first = int(os.environ.get("SLURM_ARRAY_TASK_MIN", 0))
    index = int(os.environ["SLURM_ARRAY_TASK_ID"]) - first
    return f"{index}/{int(os.environ.get('SLURM_ARRAY_TASK_COUNT', 1))}"


def refuse_flags(count: int, is_sweep: bool, shard: str | None, distributed: bool) -> None:
    """Refuses `--workers count` where it cannot work (a ValueError says why and what to do)."""
    if count < 1:
        raise ValueError(f"--workers={count} is not valid; use 1 (one process, the default) or "
                         "more (processes on this machine's CPU cores).")
    if count == 1:
        return
    if not is_sweep:
        raise ValueError("--workers splits a sweep's runs between processes, and this config "
                         "is one run: leave out --workers.")
    if shard or distributed or slurm_shard():
        raise ValueError("--workers starts its own shards in one process each; leave out "
                         "--shard and --distributed, and run it outside a Slurm array (or "
                         "leave out --workers).")


def describe(count: int, units: list) -> str:
    """Which runs each of `count` workers takes, and on which cores (for `--dry_run`)."""
    sets = core_sets(count, sorted(os.sched_getaffinity(0)))
    return "\n".join(
        f"worker {i} (CPU core(s) {_spans(cores)}): "
        + ", ".join(run.name for unit in part(units, i, count) for run in unit)
        for i, cores in enumerate(sets))


def work() -> str | None:
    """In a worker, the file its starting command handed the work out in (else None)."""
    return os.environ.get(WORK)


def run(count: int, command: list[str], work_file: str) -> int:
    """Runs `command` (the arguments of `python`: `run_experiment.py` and its flags) as `count`
    workers, worker i with `--workers=1 --shard=i/count` on its own cores, each taking its
    part of the units of work in `work_file` (the starting command wrote them: no worker
    expands the sweep again); returns the worst exit code (`_outcome`: a worker stopped by
    this command counts as 0, one killed by another signal as 1)."""
    sets = core_sets(count, sorted(os.sched_getaffinity(0)))
    workers = []
    for i, cores in enumerate(sets):
        env = dict(os.environ, PYTHONUNBUFFERED="1",  # each line as it is printed
                   **{ENV: f"{i}/{count}:{','.join(map(str, cores))}", WORK: work_file})
        workers.append(subprocess.Popen(
            [sys.executable, *command, "--workers=1", f"--shard={i}/{count}"], env=env,
            text=True, bufsize=1, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True))
        print(f"[worker {i}] shard {i}/{count} on CPU core(s) {_spans(cores)}", flush=True)
    pumps = [threading.Thread(target=_pump, args=(pipe, out, f"[worker {i}] "))
             for i, worker in enumerate(workers)
             for pipe, out in ((worker.stdout, sys.stdout), (worker.stderr, sys.stderr))]
    for pump in pumps:
        pump.start()
    previous = {s: signal.signal(s, lambda signum, frame: _stop(workers))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [worker.wait() for worker in workers]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    for pump in pumps:
        pump.join()
    return max(_outcome(code) for code in codes)


def _outcome(code: int) -> int:
    """A worker's exit code as the command's: a worker ended by the SIGTERM this command
    sent it when asked to stop (`_stop`) was stopped as a preempted run is, whatever it was
    doing (setting up a run, between runs): 0, nothing lost, the same command goes on; any
    other signal is a failure (1)."""
    if code < 0:
        return 0 if stopped() and -code == signal.SIGTERM else 1
    return code


_STOPPED: list = []  # set once Ctrl-C or SIGTERM asked the workers to stop


def stopped() -> bool:
    """Whether this command was asked to stop its workers (then it starts no more)."""
    return bool(_STOPPED)


def _stop(workers: list[subprocess.Popen]) -> None:
    _STOPPED.append(True)
    print("stopping the workers: each saves its run; start the same command again to go on",
          file=sys.stderr, flush=True)
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)


def _pump(pipe, out, prefix: str) -> None:
    for line in pipe:
        out.write(prefix + line)
        out.flush()
    pipe.close()


def _spans(cores: list[int]) -> str:
    """[0, 1, 2, 5] → "0-2,5"."""
    spans, start = [], None
    for i, core in enumerate(cores):
        if start is None:
            start = core
        if i + 1 == len(cores) or cores[i + 1] != core + 1:
            spans.append(f"{start}" if start == core else f"{start}-{core}")
            start = None
    return ",".join(spans)
