"""The one entry point: train and evaluate a config, or run a sweep of them, in a workdir.

    python run_experiment.py --config experiments/quickstart.py --workdir runs/quickstart \\
        --workers 2
    python run_experiment.py --config configs/fashion_mnist.py --workdir runs/fashion
    python run_experiment.py --config configs/imagenet_inception_v3.py --workdir runs/v3 \\
        --config.model.module_35=fig5 --config.global_batch_size=1024
    python run_experiment.py --config experiments/factorization.py --workdir runs/fact \\
        --config.sweep.only='released,35x35_*' --dry_run

Flags are absl's (`--flag=value` or `--flag value`); config fields are set as
`--config.FIELD=VALUE`. This file parses them and makes one call
(`inception_flax.sweeps.command.main`: docs/training.md and docs/sweeps.md say what it does).
Where TCMalloc is installed (Debian: libtcmalloc-minimal4) the command runs itself again with
it preloaded (`inception_flax/utils/malloc.py`; INCEPTION_FLAX_MALLOC=system keeps glibc's
allocator); a worker of `--workers N` first pins itself to its cores.
"""

import os
import sys

from inception_flax.sweeps import workers
from inception_flax.utils import cli, malloc

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
                  "multiply-adds and the grids their stages of modules act on, the parts and "
                  "config fields in which the variants differ and the seeds trained together; "
                  "warn where a kernel is larger than its grid; run nothing.")
flags.DEFINE_string("shard", None, "Run part i of n of a sweep's units of work (a run, or "
                    "the seeds trained as one program), as i/n (default: the Slurm array task "
                    "where SLURM_ARRAY_TASK_ID is set, else everything).")
flags.DEFINE_integer("workers", 1, "Run a sweep on this machine's CPU in this many processes "
                     "(at most one per unit of work), each pinned to its share of the cores and "
                     "running its part of the units of work; the tables are written once all "
                     "have finished; --dry_run lists each worker's runs. For small networks on "
                     "a CPU (the quickstart uses 2); not for accelerators.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first (one process "
                  "per host; coordinator from the cluster environment).")
flags.DEFINE_bool("set_aside_stale", False, "A run directory made under another config (any "
                  "field but the bookkeeping ones, inception_flax/run/run_dir.py) is refused; "
                  "with this flag it is moved aside as <dir>.stale-<date> and trained afresh.")
flags.DEFINE_bool("retry_diverged", False, "A sweep skips a diverged run; with this flag it is "
                  "moved aside as <dir>.diverged-<date> and trained afresh. (A failed run is "
                  "always retried.)")
flags.DEFINE_bool("rebuild_decisions", False, "A sweep run until decided makes its decisions "
                  "again from the records at every start and refuses a decisions.json that "
                  "disagrees with them (edited, damaged, or records changed since); with this "
                  "flag it writes decisions.json anew from the records and says what changed.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax and TFDS log every step at INFO
    from inception_flax.sweeps import command
    return command.main(cli.loaded_config(FLAGS["config"]), command.Flags(
        FLAGS.workdir, FLAGS.dry_run, FLAGS.shard, FLAGS.workers, FLAGS.distributed,
        FLAGS.set_aside_stale, FLAGS.retry_diverged, FLAGS.rebuild_decisions))


if __name__ == "__main__":
    sys.argv = cli.last_wins(sys.argv, "--config.")
    app.run(main, flags_parser=cli.absl_parser(FLAGS))
