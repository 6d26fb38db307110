"""One training process for the multi-process and multi-device tests.

    python tests/scripts/train_process.py WORKDIR DEVICES [PROCESS_ID NUM_PROCESSES PORT]
        [--config.FIELD=VALUE ...]
"""

import os
import sys

workdir, devices = sys.argv[1], int(sys.argv[2])
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import jax  # noqa: E402

rest = sys.argv[3:]
if rest and not rest[0].startswith("--"):
    process_id, num_processes, port = (int(a) for a in rest[:3])
    rest = rest[3:]
    jax.distributed.initialize(f"localhost:{port}", num_processes=num_processes,
                               process_id=process_id)

from tests.scripts.tiny import tiny_config  # noqa: E402

import ast  # noqa: E402

from inception_flax.run import train  # noqa: E402
from inception_flax.sweeps import plan  # noqa: E402


def value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a string such as fig5


config = tiny_config()
plan.apply_overrides(config, {item[len("--config."):].split("=", 1)[0]:
                               value(item.split("=", 1)[1]) for item in rest})
try:
    train.train_and_evaluate(config, workdir)
except ValueError as error:
    sys.exit(f"error: {error}")
