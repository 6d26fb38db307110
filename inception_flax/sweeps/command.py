"""What `run_experiment.py` does with its flags: train one run, or a sweep (in this process, as
one shard of several, or in `--workers` processes that each take a part of its units of work),
or list what either would do (`--dry_run`); then the sweep's tables. Returns the exit code
(`utils.cli`: 0 done, 1 a run failed or diverged, 2 bad input, 3 the disk).
"""

from __future__ import annotations

import dataclasses
import os
import sys

import ml_collections

from inception_flax.sweeps import execute, plan, workers
from inception_flax.utils import cli, disk


@dataclasses.dataclass(frozen=True)
class Flags:
    """The entry point's flags (`run_experiment.py --help` says what each does)."""

    workdir: str
    dry_run: bool = False
    shard: str | None = None
    workers: int = 1
    distributed: bool = False
    set_aside_stale: bool = False
    retry_diverged: bool = False
    rebuild_decisions: bool = False


def main(config: ml_collections.ConfigDict, flags: Flags) -> int:
    """The command; bad input and the disk's faults are one sentence on stderr."""
    disk.quiet_disk_faults()  # a full disk is said once, below, not by every writer
    import jax
    if flags.distributed:
        jax.distributed.initialize()
    try:
        workers.refuse_flags(flags.workers, plan.is_sweep(config), flags.shard,
                             flags.distributed)
        if workers.is_worker():
            return worker(flags)
        return sweep(config, flags) if plan.is_sweep(config) else single_run(config, flags)
    except Exception as error:  # noqa: BLE001 (one sentence, or re-raised)
        code = cli.report(error, flags.workdir)
        if code is None:
            raise
        return code


def single_run(config: ml_collections.ConfigDict, flags: Flags) -> int:
    from inception_flax.run import settings, train
    if flags.shard:
        raise ValueError("--shard splits a sweep's runs between jobs, and this config is one "
                         "run: leave out --shard.")
    checked = settings.validate(config, data=not flags.dry_run)
    if flags.dry_run:
        return print_dry_run([[plan.Run("run", config.seed, checked, 0)]])
    disk.check_workdir(flags.workdir)
    record = train.train_and_evaluate(checked, flags.workdir,
                                      set_aside_stale=flags.set_aside_stale)
    if record["status"] == "diverged":
        print(f"diverged: {record['error']}; see {flags.workdir}/final.json.", file=sys.stderr)
        return cli.EXIT_FAILED
    return 0


def sweep(config: ml_collections.ConfigDict, flags: Flags) -> int:
    """A sweep, expanded once here and handed down."""
    import jax
    runs = plan.expand(config, data=not flags.dry_run,
                       recorded=plan.recorded_classes(flags.workdir))
    units = plan.groups(runs, plan.seeds_per_program(config))
    count = min(flags.workers, len(units))  # no worker without a unit of work
    if flags.dry_run:
        print(plan.describe(config))
        if flags.workers > 1:
            print(workers.describe(count, units))
        return print_dry_run(plan.shard_of(units, flags.shard))
    disk.check_workdir(flags.workdir)
    for run in runs:
        disk.check_path_length(os.path.join(flags.workdir, run.name),
                               f"--workdir {flags.workdir} with run {run.name}", disk.INNER)
    check_data(flags.workdir, plan.shard_of(units, flags.shard))
    if flags.workers > 1:
        return with_workers(config, flags, runs, count)
    failed = execute.run_sweep(config, flags.workdir, flags.shard,
                               set_aside_stale=flags.set_aside_stale,
                               retry_diverged=flags.retry_diverged, runs=runs,
                               rebuild_decisions=flags.rebuild_decisions)
    if jax.process_index() == 0:
        print_tables(flags.workdir)
    if failed:
        print(f"{failed} run(s) failed or diverged; see their final.json.", file=sys.stderr)
        return cli.EXIT_FAILED
    return 0


def check_data(workdir: str, units: list) -> None:
    """The data of each run this command may train (its shard's runs not done or diverged) can
    be had (`input_pipeline.check_available`), checked before anything is written: missing
    data is bad input. A finished sweep needs no data to write its tables again."""
    from inception_flax.run import input_pipeline
    from inception_flax.sweeps import stages
    todo = stages.left_to_train(workdir, [run for unit in units for run in unit])
    sources = {tuple(run.config.get(f) for f in ("dataset", "data_dir", "train_split",
                                                 "eval_split", "global_batch_size",
                                                 "in_memory")): run.config for run in todo}
    for config in sources.values():
        input_pipeline.check_available(config)


def with_workers(config: ml_collections.ConfigDict, flags: Flags, runs: list,
                 count: int) -> int:
    """`--workers N`: the units of work handed out to `count` processes on this machine's CPU
    cores (stage by stage for a sweep run until decided: this command decides between
    them), then the tables."""
    import jax
    from inception_flax.sweeps import stages
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the next line's probe
    if jax.default_backend() != "cpu":
        raise ValueError(f"--workers splits the CPU's cores between processes, and this machine "
                         f"trains on {jax.default_backend()}: leave out --workers (one process "
                         f"drives the device; sweep.seeds_per_program shares it between seeds).")
    staged, code = bool(config.sweep.get("until_decided")), 0
    rebuild = flags.rebuild_decisions or flags.retry_diverged
    while True:
        # Again each stage: the workers set aside and retrained the stale runs of the last.
        stale = execute.find_stale(flags.workdir, runs, flags.set_aside_stale)
        if staged:
            stages.set_aside_stale_decisions(flags.workdir, stale)
            needed, planned = stages.next_units(config, flags.workdir, runs, rebuild)
            rebuild = flags.retry_diverged
        else:
            needed = planned = runs
            plan.write_plan(flags.workdir, config, runs)
        if not needed:
            break
        work = execute.hand_out(flags.workdir,
                                plan.groups(needed, plan.seeds_per_program(config)), planned,
                                stale)
        code = max(code, workers.run(count, sys.orig_argv[1:], work))
        # As in one process (stages.run): a diverged run is recorded and the design goes on;
        # a run left to train (failed, preempted, a worker's fault) holds its look back.
        if not staged or workers.stopped() or stages.left_to_train(flags.workdir, needed):
            break
    print_tables(flags.workdir)
    if code:
        print(f"a worker exited with code {code}: a run failed or diverged (see its final.json) "
              "or a worker stopped (see its lines above).", file=sys.stderr)
    return code


def worker(flags: Flags) -> int:
    """A process `with_workers` started: its part of the units of work handed out."""
    units, planned, stale = execute.take_part(workers.work(), flags.shard)
    failed = execute.run_units(units, flags.workdir, planned,
                               execute.default_trainer(flags.workdir), stale,
                               flags.retry_diverged)
    return cli.EXIT_FAILED if failed else 0  # the starting command writes the tables


def print_dry_run(units) -> int:
    listing, warnings = plan.dry_run(units)
    print(listing, flush=True)
    for line in warnings:
        print(line, file=sys.stderr)
    return 0


def print_tables(workdir: str) -> None:
    from inception_flax.sweeps import tables
    if os.path.exists(os.path.join(workdir, "sweep.json")):  # a sweep began there
        tables.write(workdir)
        with open(os.path.join(workdir, "results.md")) as f:
            print(f.read())
