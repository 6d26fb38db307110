"""The one entry point: train and evaluate a config in a workdir (resuming where it stopped).

    python run_experiment.py --config configs/fashion_mnist.py --workdir runs/fashion
    python run_experiment.py --config configs/imagenet_inception_v3.py --workdir runs/v3 \
        --config.model.module_35=double_3x3 --config.global_batch_size=1024

Multi-host (Slurm, TPU pods): run the same command in every process with --distributed; JAX
reads the coordinator from the environment (jax.distributed.initialize).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/fashion_mnist.py.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and final.json go.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first (one process "
                  "per host; coordinator from the cluster environment).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax and TFDS log every step at INFO
    import jax
    if FLAGS.distributed:
        jax.distributed.initialize()
    from inception_flax import train
    try:
        train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except train.Diverged as error:
        print(f"diverged: {error}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    app.run(main)
