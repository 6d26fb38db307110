"""The one entry point: train and evaluate a config, or run a sweep of them, in a workdir.

    python run_experiment.py --config experiments/quickstart.py --workdir runs/quickstart \
        --workers 2
    python run_experiment.py --config configs/fashion_mnist.py --workdir runs/fashion
    python run_experiment.py --config configs/imagenet_inception_v3.py --workdir runs/v3 \
        --config.model.module_35=fig5 --config.global_batch_size=1024
    python run_experiment.py --config experiments/factorization.py --workdir runs/fact \
        --config.sweep.only='released,35x35_*' --dry_run

Flags are absl's (`--flag=value` or `--flag value`), as every entry point of the project
takes them (`inception_flax/cli.py`); config fields are set as `--config.FIELD=VALUE`.
Starting the same command again resumes: a run from its latest checkpoint (a damaged one is
set aside), a sweep by skipping finished runs and resuming interrupted ones. A sweep (a config
with a `sweep` field, see experiments/) writes each run to DIR/<variant>/seed<k>/ and its
tables to DIR/results.*. A bad value (a field out of its range, an unknown field, a run
directory another live command holds) is one sentence on stderr and exit code 2, with nothing
written; a diverged run exits 1.
`--workers N` runs a sweep in N processes on this machine's CPU, each on its own cores
(inception_flax/workers.py). Multi-host (Slurm, TPU pods): run the same command in every
process with --distributed; JAX reads the coordinator from the environment
(jax.distributed.initialize). Where TCMalloc is installed (Debian: libtcmalloc-minimal4) the
command runs itself again with it preloaded (inception_flax/malloc.py;
INCEPTION_FLAX_MALLOC=system keeps glibc's allocator).
"""

import os
import sys

from inception_flax import cli, disk, malloc, workers

workers.enter()  # first: a worker of `--workers N` pins itself to its cores
malloc.use_tcmalloc()  # runs this command again with TCMalloc where it is installed
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Config or experiment file, e.g. configs/fashion_mnist.py or "
    "experiments/quickstart.py (append :imagenet for an experiment on ImageNet).",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, metrics, final.json and tables go.")
flags.DEFINE_bool("dry_run", False, "List the variants and runs with their widths, parameters, "
                  "multiply-adds and the grids their stages of modules act on, the parts where "
                  "the variants differ and the seeds trained together; warn where a kernel is "
                  "larger than its grid; run nothing.")
flags.DEFINE_string("shard", None, "Run part i of n of a sweep's units of work (a run, or "
                    "the seeds trained as one program), as i/n (default: the Slurm array task "
                    "where SLURM_ARRAY_TASK_ID is set, else everything).")
flags.DEFINE_integer("workers", 1, "Run a sweep on this machine's CPU in this many processes "
                     "(at most one per unit of work), each pinned to its share of the cores and "
                     "running one shard (--shard i/n); the tables are written once all have "
                     "finished; --dry_run lists each worker's runs. For small networks on a "
                     "CPU (the quickstart uses 2); not for accelerators.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first (one process "
                  "per host; coordinator from the cluster environment).")
flags.DEFINE_bool("set_aside_stale", False, "A run directory made under another config (any "
                  "field but the bookkeeping ones, inception_flax/run_dir.py) is refused; with "
                  "this flag it is moved aside as <dir>.stale-<date> and trained afresh.")
flags.DEFINE_bool("retry_diverged", False, "A sweep skips a diverged run; with this flag it is "
                  "moved aside as <dir>.diverged-<date> and trained afresh. (A failed run is "
                  "always retried.)")
flags.mark_flags_as_required(["config", "workdir"])


def print_dry_run(units) -> int:
    from inception_flax import sweep
    listing, warnings = sweep.dry_run(units)
    print(listing, flush=True)
    for line in warnings:
        print(line, file=sys.stderr)
    return 0


def run_workers(config, workdir: str, count: int) -> int:
    """`--workers N`: the sweep in `count` processes (N, at most one per unit of work) on this
    machine's CPU cores, then its tables."""
    import jax
    from inception_flax import sweep
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the next line's probe
    if jax.default_backend() != "cpu":
        raise ValueError(f"--workers splits the CPU's cores between processes, and this machine "
                         f"trains on {jax.default_backend()}: leave out --workers (one process "
                         f"drives the device; sweep.seeds_per_program shares it between seeds).")
    runs = sweep.check(config)  # every run's config and directory, before a worker starts
    sweep.find_stale(workdir, runs, FLAGS.set_aside_stale)
    from inception_flax import stages
    code = workers.run(count, sys.orig_argv[1:])
    while not code and stages.more_to_run(config, workdir):  # until decided: stage by stage
        code = workers.run(count, sys.orig_argv[1:])
    if os.path.exists(os.path.join(workdir, "sweep.json")):  # a worker began the sweep
        write_tables(workdir)
    if code:
        print(f"a worker exited with code {code}: a run failed or diverged (see its final.json) "
              "or a worker stopped (see its lines above).", file=sys.stderr)
    return code


def write_tables(workdir: str) -> None:
    from inception_flax import results
    results.write(workdir)
    with open(os.path.join(workdir, "results.md")) as f:
        print(f.read())


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax and TFDS log every step at INFO
    disk.quiet_disk_faults()  # a full disk is said once, below, not by every writer
    import jax
    if FLAGS.distributed:
        jax.distributed.initialize()
    config, workdir = FLAGS.config, FLAGS.workdir
    try:
        return run(config, workdir)
    except Exception as error:  # noqa: BLE001 (one sentence, or re-raised)
        code = cli.report(error, workdir)
        if code is None:
            raise
        return code


def run(config, workdir: str) -> int:
    """A run or a sweep as the flags say; returns the exit code."""
    import jax
    from inception_flax import sweep
    is_sweep = sweep.is_sweep(config)
    workers.check_flags(FLAGS.workers, is_sweep, FLAGS.shard, FLAGS.distributed)
    if FLAGS.shard and not is_sweep:
        raise ValueError("--shard splits a sweep's runs between jobs, and this config is one "
                         "run: leave out --shard.")
    if not is_sweep:
        if FLAGS.dry_run:
            return print_dry_run([[sweep.Run("run", config.seed, config, 0)]])
        disk.check_workdir(workdir)
        from inception_flax import train
        record = train.train_and_evaluate(config, workdir,
                                          set_aside_stale=FLAGS.set_aside_stale)
        if record["status"] == "diverged":
            print(f"diverged: {record['error']}; see {workdir}/final.json.", file=sys.stderr)
            return cli.EXIT_FAILED
        return 0
    units = sweep.programs(sweep.expand(config), sweep.seeds_per_program(config))
    count = min(FLAGS.workers, len(units))  # no worker without a unit of work
    if FLAGS.dry_run:
        print(sweep.describe(config))
        if FLAGS.workers > 1:
            print(workers.describe(count, units))
        return print_dry_run(sweep.shard_of(units, FLAGS.shard))
    disk.check_workdir(workdir)
    if FLAGS.workers > 1:
        return run_workers(config, workdir, count)
    failed = sweep.run_sweep(config, workdir, FLAGS.shard,
                             set_aside_stale=FLAGS.set_aside_stale,
                             retry_diverged=FLAGS.retry_diverged)
    if workers.is_worker():
        return cli.EXIT_FAILED if failed else 0  # the starting command writes the tables
    if jax.process_index() == 0:
        write_tables(workdir)
    if failed:
        print(f"{failed} run(s) failed or diverged; see their final.json.", file=sys.stderr)
        return cli.EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.argv = cli.last_wins(sys.argv, "--config.")
    app.run(main, flags_parser=cli.absl_parser(FLAGS))
