"""One shard of a sweep of the tiny config (the quickstart's variants, 2 seeds) with a
stand-in trainer, then its tables, as `run_experiment.py` ends a sweep. For the test of two
shards at once: each waits, before its first run, until the other has started.

    python tests/scripts/sweep_shard.py WORKDIR i/n BARRIER_DIR
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from inception_flax import results, sweep  # noqa: E402
from tests.helpers import fake_train, sweep_config  # noqa: E402

workdir, shard, barrier = sys.argv[1:4]
calls = []
train = fake_train(calls)


def train_fn(configs, workdirs):
    count = int(shard.split("/")[1])
    open(os.path.join(barrier, shard.replace("/", "_")), "w").close()
    deadline = time.time() + 120
    while len(os.listdir(barrier)) < count and time.time() < deadline:
        time.sleep(0.02)  # the other shard's process is starting
    return train(configs, workdirs)


sweep.run_sweep(sweep_config(seeds=(0, 1)), workdir, shard, train_fn)
results.write(workdir)
print("trained", *(os.path.relpath(c, workdir) for c in calls))
