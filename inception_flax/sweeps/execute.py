"""Running a sweep's units of work in this process: which runs are finished, failed,
diverged or made under another config, their locks, and the trainer's call for each unit
(one run, or the seeds of a variant trained as one program)."""

from __future__ import annotations

import functools
import os
import sys
import time
import traceback

import jax
import ml_collections
import numpy as np

from inception_flax.run import checkpoint, input_pipeline, run_dir, run_lock, run_log
from inception_flax.sweeps import plan
from inception_flax.run.settings import Settings
from inception_flax.sweeps.plan import Run
from inception_flax.utils import disk, files

FINISHED = ("done", "diverged", "failed")

def status_of(workdir: str, run: Run, warn: bool = False) -> str | None:
    """The status in the run's record; None where it has none (or a damaged one: with
    `warn`, one line says so)."""
    final = run_dir.read_final(os.path.join(workdir, run.name), warn)
    return final.get("status") if final else None


def run_sweep(config: ml_collections.ConfigDict, workdir: str, shard: str | None = None,
              train_fn=None, set_aside_stale: bool = False, retry_diverged: bool = False,
              runs: list[Run] | None = None, rebuild_decisions: bool = False) -> int:
    """Runs this shard's runs that are not finished, `sweep.seeds_per_program` seeds of a
    variant at a time as one program; returns the number that failed or diverged (0: all
    good). `runs`: the sweep's expansion (`plan.expand`, made here where not given: a
    command expands its sweep once). `train_fn(settings, run_dirs) -> records` defaults to
    the trainer (`default_trainer`). With `sweep.until_decided`, the runs come in stages, as
    `stages.run` decides.

    Before any run starts, every run's directory is checked against its config
    (`find_stale`): one made under another config is refused, or with `set_aside_stale`
    moved aside and trained afresh. A finished run is skipped; a failed one is retried (its
    record kept as `final.failed.json`); a diverged one stays recorded, or with
    `retry_diverged` is moved aside and trained afresh; a damaged record counts as
    unfinished. A sweep run until decided makes its decisions from the records and checks
    them against `decisions.json` (`rebuild_decisions`: writes it anew instead); stale runs
    set aside take the decisions made from them along (`stages`). Bad data and a full or read-only disk stop the sweep (the exception goes up:
    nothing is recorded as failed, the same command resumes).

    Seeds trained together must resume from the same step: after a restart (with the same or
    another `seeds_per_program`), a unit's unfinished seeds are trained together where their
    latest checkpoints are at the same step, apart where they are not."""
    train_fn = train_fn or default_trainer(workdir)
    runs = plan.expand(config) if runs is None else runs
    stale = find_stale(workdir, runs, set_aside_stale)
    if config.sweep.get("until_decided"):
        from inception_flax.sweeps import stages
        stages.set_aside_stale_decisions(workdir, stale)
        return stages.run(config, workdir, runs, shard, train_fn, stale, retry_diverged,
                          rebuild_decisions or retry_diverged)
    plan.write_plan(workdir, config, runs)
    units = plan.shard_of(plan.groups(runs, plan.seeds_per_program(config)), shard)
    bad = run_units(units, workdir, runs, train_fn, stale, retry_diverged)
    return 0 if bad is None else bad


def default_trainer(workdir: str):
    """`train.train_seeds` with one compilation cache for the sweep (`workdir/jax_cache`):
    seeds of a variant compile once."""
    from inception_flax.run.train import train_seeds
    return functools.partial(train_seeds,
                             compilation_cache_dir=os.path.join(workdir, "jax_cache"))


def run_units(units: list[list[Run]], workdir: str, planned: list[Run], train_fn,
              stale: dict, retry_diverged: bool) -> int | None:
    """Trains the units (see `run_sweep`); returns how many runs failed or diverged, or None
    when preempted (SIGTERM: the runs in training saved, the same command goes on)."""
    mine = [run for unit in units for run in unit]
    positions = {run.name: f"[{i + 1}/{len(mine)}] {run.name}" for i, run in enumerate(mine)}
    bad, started, finished_here, held = 0, time.time(), 0, 0
    for unit in units:
        todo = []
        for run in unit:
            path = os.path.join(workdir, run.name)
            final = None if run.name in stale else run_dir.read_final(path, warn=False)
            status = final.get("status") if final else None
            if status == "done" or (status == "diverged" and not retry_diverged):
                print(f"{positions[run.name]}: {status} already, skipped", flush=True)
                bad += status != "done"
                continue
            in_use = _lock(path)
            if in_use:
                print(f"{positions[run.name]}: skipped: {in_use}", flush=True)
                held += 1
                continue
            _prepare(path, positions[run.name], stale.pop(run.name, None), final)
            todo.append(run)
        try:
            outcome = _train_unit(train_fn, workdir, todo, positions)
        finally:
            for run in todo:
                run_lock.release(os.path.join(workdir, run.name))
        if outcome is None:
            print("preempted: stopping the sweep; start the same command again to go on",
                  flush=True)
            return None
        bad += outcome
        finished_here += len(todo)
        if todo:
            left = len(mine) - mine.index(todo[-1]) - 1
            counts = _counts(workdir, planned)
            print(f"sweep: {counts['done']} done, {counts['failed']} failed, {counts['left']} "
                  f"left; this shard's ETA "
                  f"{run_log.format_seconds((time.time() - started) / finished_here * left)}",
                  flush=True)
    if held:
        print(f"{held} run(s) skipped: another live command is training them (it records "
              "them; tables written before it finishes leave them out)", file=sys.stderr,
              flush=True)
    return bad


def find_stale(workdir: str, runs: list[Run], set_aside_stale: bool) -> dict[str, list]:
    """{run: the fields that differ} for every run of the sweep (all shards) whose directory
    was made under another config (`run_dir.stale_fields`); without `set_aside_stale`, a
    ValueError (one sentence) if there is any."""
    stale = {}
    for run in runs:
        fields = run_dir.stale_fields(os.path.join(workdir, run.name), run.config,
                                      checkpoint.stored_fields)
        if fields:
            stale[run.name] = fields
    if stale and not set_aside_stale:
        name, fields = next(iter(stale.items()))
        others = f" (and {len(stale) - 1} other run(s))" if len(stale) > 1 else ""
        raise ValueError(f"{run_dir.describe_stale(os.path.join(workdir, name), fields)}"
                         f"{others}; use another --workdir, the config they were made with, or "
                         "--set_aside_stale to move them aside and train them afresh.")
    return stale


def _prepare(path: str, where: str, stale: list | None, final: dict | None) -> None:
    """Readies a locked run directory to be trained: a stale one or (retried) a diverged one is
    moved aside, a failed record is kept as `final.failed.json`, a damaged one set aside."""
    status = final.get("status") if final else None
    if stale or status == "diverged":
        why = "stale" if stale else "diverged"
        if jax.process_index() == 0:
            run_lock.release(path)
            moved = run_dir.set_aside(path, why)
            run_lock.acquire(path)
            reason = run_dir.describe_stale("it", stale) if stale else \
                f"it diverged ({final.get('error')})"
            print(f"{where}: {reason}: moved aside as {moved}; training afresh", flush=True)
    elif status == "failed":
        if jax.process_index() == 0:
            os.replace(os.path.join(path, "final.json"), os.path.join(path, "final.failed.json"))
        print(f"{where}: failed before ({final.get('error')}); retrying (that record is kept as "
              "final.failed.json)", flush=True)
    elif jax.process_index() == 0:
        run_dir.set_aside_damaged_final(path)


def _lock(run_dir: str) -> str | None:
    """Takes the run's lock (process 0, for every process of the sweep); returns why the run
    must be skipped (another live command holds it), or None."""
    in_use = None
    if jax.process_index() == 0:
        try:
            run_lock.acquire(run_dir)
        except run_lock.Locked as locked:
            in_use = str(locked)
    if jax.process_count() > 1:  # the processes of one sweep train the same runs
        from jax.experimental import multihost_utils
        skip = bool(multihost_utils.broadcast_one_to_all(np.array(in_use is not None)))
        in_use = (in_use or "in use by another command") if skip else None
    return in_use


def _train_unit(train_fn, workdir: str, todo: list[Run], positions: dict) -> int | None:
    """Trains a unit's unfinished runs, those at the same resume step together; returns how
    many failed or diverged, or None when preempted."""
    bad = 0
    for step, together in _by_resume_step(workdir, todo):
        for run in together:
            print(f"{positions[run.name]}: "
                  f"{f'resuming at step {step}' if step else 'starting'}"
                  + (f" (one program with {len(together) - 1} other seed(s))"
                     if len(together) > 1 else ""), flush=True)
        statuses = _train(train_fn, workdir, together)
        for run, status in zip(together, statuses):
            print(f"{run.name}: {status}", flush=True)
        if "preempted" in statuses:
            return None
        bad += sum(status != "done" for status in statuses)
    return bad


def _train(train_fn, workdir: str, together: list[Run]) -> list[str]:
    """Trains runs as one program; a failure is recorded in each run's final.json, except bad
    data and the disk's faults, which stop the sweep (raised)."""
    dirs = [os.path.join(workdir, run.name) for run in together]
    try:
        return [record["status"] for record in train_fn([r.settings for r in together], dirs)]
    except Exception as error:  # noqa: BLE001 (one failed run must not stop the others)
        if isinstance(error, input_pipeline.DataError) or disk.fault_of(error):
            raise
        for run, run_dir in zip(together, dirs):
            os.makedirs(run_dir, exist_ok=True)
            files.write_json_atomically(os.path.join(run_dir, "final.json"), {
                "status": "failed", "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(), "config": run.config.to_dict()})
        return ["failed"] * len(together)


def _by_resume_step(workdir: str, runs: list[Run]) -> list[tuple[int, list[Run]]]:
    """The runs grouped by the step of their latest checkpoint (0: none), in order."""
    groups: dict[int, list[Run]] = {}
    for run in runs:
        groups.setdefault(checkpoint.latest_step(os.path.join(workdir, run.name)), []).append(run)
    return list(groups.items())


def _counts(workdir: str, runs: list[Run]) -> dict:
    statuses = [status_of(workdir, run) for run in runs]
    return {"done": statuses.count("done"),
            "failed": sum(s in ("failed", "diverged") for s in statuses),
            "left": sum(s not in FINISHED for s in statuses)}


# ---------------------------------------------------------------------------------------------
# Units of work handed out to `--workers` processes.

def hand_out(workdir: str, units: list[list[Run]], planned: list[Run], stale: dict) -> str:
    """Writes the units of work for `--workers` (each run's settings as it records them, the
    planned runs, and those made under another config) to `DIR/.work.json`, so that no worker
    expands the sweep again; returns the file's path."""
    path = os.path.join(workdir, ".work.json")
    files.write_json_atomically(path, {
        "units": [[_record(run) for run in unit] for unit in units],
        "planned": [_record(run) for run in planned], "stale": stale})
    return path


def take_part(path: str, shard: str) -> tuple[list[list[Run]], list[Run], dict]:
    """A worker's part of the units in `path` (`hand_out`): (its units, the planned runs, the
    stale ones)."""
    work = run_dir.read_json(path)
    units = [[_run(r) for r in unit] for unit in work["units"]]
    return plan.shard_of(units, shard), [_run(r) for r in work["planned"]], work["stale"]


def _record(run: Run) -> dict:
    return {"variant": run.variant, "seed": run.seed, "index": run.index,
            "config": run.config.to_dict()}


def _run(record: dict) -> Run:
    return Run(record["variant"], record["seed"], Settings.of_record(record["config"]),
               record["index"])
