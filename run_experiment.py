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

from inception_flax import malloc, workers

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
    sweep.check(config)  # every run's config, before a worker starts
    code = workers.run(count, sys.orig_argv[1:])
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
    import jax
    if FLAGS.distributed:
        jax.distributed.initialize()
    from inception_flax import sweep
    config, workdir = FLAGS.config, FLAGS.workdir
    try:
        workers.check_flags(FLAGS.workers, sweep.is_sweep(config), FLAGS.shard,
                            FLAGS.distributed)
        if not sweep.is_sweep(config):
            if FLAGS.dry_run:
                return print_dry_run([[sweep.Run("run", config.seed, config, 0)]])
            from inception_flax import train
            record = train.train_and_evaluate(config, workdir)
            if record["status"] == "diverged":
                print(f"diverged: {record['error']}; see {workdir}/final.json.", file=sys.stderr)
                return 1
            return 0
        units = sweep.programs(sweep.expand(config), sweep.seeds_per_program(config))
        count = min(FLAGS.workers, len(units))  # no worker without a unit of work
        if FLAGS.dry_run:
            print(sweep.describe(config))
            if FLAGS.workers > 1:
                print(workers.describe(count, units))
            return print_dry_run(sweep.shard_of(units, FLAGS.shard))
        if FLAGS.workers > 1:
            return run_workers(config, workdir, count)
        failed = sweep.run_sweep(config, workdir, FLAGS.shard)
        if workers.is_worker():
            return 1 if failed else 0  # the command that started the workers writes the tables
        if jax.process_index() == 0:
            write_tables(workdir)
        if failed:
            print(f"{failed} run(s) failed or diverged; see their final.json.", file=sys.stderr)
            return 1
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    app.run(main)
