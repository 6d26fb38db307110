"""A stand-in for `run_experiment.py` under `workers.run`: prints its flags, its CPU cores and
its worker variables; with `--wait`, waits for SIGTERM and exits 0 on it; with `--setting_up`,
waits with SIGTERM's default action (it dies of it, as a worker setting up a run does); else
exits 3 as the last shard, 0 otherwise.

    python -c "from inception_flax.sweeps import workers; \
        workers.run(2, ['tests/scripts/worker_standin.py'], 'work.json')"
"""

import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from inception_flax.sweeps import workers  # noqa: E402

workers.enter()

print("args", *sys.argv[1:], "cores", *sorted(os.sched_getaffinity(0)),
      "worker", os.environ["INCEPTION_FLAX_WORKER"], "work", workers.work(), flush=True)
if "--wait" in sys.argv:
    def stop(signum, frame):
        print("stopped on SIGTERM", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    print("waiting", flush=True)
    while True:
        signal.pause()
if "--setting_up" in sys.argv:
    print("waiting", flush=True)
    while True:
        signal.pause()
count = sys.argv[-1].rpartition("/")[2]
sys.exit(3 if sys.argv[-1] == f"--shard={int(count) - 1}/{count}" else 0)
