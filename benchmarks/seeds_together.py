"""Seeds trained together (`sweep.seeds_per_program`) against one seed alone, on the
quickstart's setup (figure 5, eighth width, the quickstart's batch, 75×75 Fashion-MNIST-sized
inputs; `benchmarks/results/2026-11-28_cpu_seeds_together.json` was measured when that batch
was 32, as its `setup` says; it is 64 since).

    uv run python benchmarks/seeds_together.py [--seeds 3] [--lowerings xla,matmul]
        [--rounds 3] [--steps 20] [--json out.json]

For one seed alone and for `--seeds` seeds as one program (`steps.build(grouped=True)`),
each with every lowering in `--lowerings`, a fresh process builds the state, compiles and runs
the first step (its start-up: "startup_s", from the process's first import to the first
step's result), then `--rounds` rounds of `--steps` steps. The figure is seed-steps per second
(steps × seeds / seconds), the median over rounds, and its ratio to the best alone. Batches are
synthetic uint8 28×28 images (the GPU machine has no Fashion-MNIST); the arithmetic does not
depend on their values.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

CHILD = """
import time
started = time.time()
import json, sys
sys.path.insert(0, {root!r})
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from experiments import quickstart
from inception_flax.run import settings, steps, train
from inception_flax.sweeps import plan

config = quickstart.get_config()
with config.unlocked():
    del config["sweep"]
plan.apply_overrides(config, {{"model.module_35": "fig5", "model.lowering": {lowering!r}}})
seeds = {seeds}
grouped = seeds > 1
mesh = jax.make_mesh((jax.device_count(),), (steps.AXIS,))
group = []
for seed in range(seeds):
    config.seed = seed
    group.append(settings.validate(config.copy_and_resolve_references()))
initialize, step, _ = train.compiled_programs(group, 1875, 10, mesh)
state = initialize(steps.seed_keys(list(range(seeds)), grouped))
rng = np.random.RandomState(0)
lead = (seeds,) if grouped else ()
batch = steps.to_global(
    {{"image": rng.randint(0, 256, lead + (config.global_batch_size, 28, 28, 1)).astype(np.uint8),
      "label": rng.randint(0, 10, lead + (config.global_batch_size,)).astype(np.int32)}},
    NamedSharding(mesh, P(None, steps.AXIS) if grouped else P(steps.AXIS)))
state, metrics = step(state, batch)
jax.block_until_ready(metrics)
startup = time.time() - started
{barrier}
rates = []
for _ in range({rounds}):
    begin = time.time()
    for _ in range({steps}):
        state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    rates.append({steps} * seeds / (time.time() - begin))
print(json.dumps({{"startup_s": startup, "seed_steps_per_s": rates,
                   "device": jax.devices()[0].device_kind, "jax": jax.__version__,
                   "batch": config.global_batch_size, "image_size": config.image_size}}))
"""


def child_code(seeds: int, lowering: str, rounds: int, steps: int, barrier: str = "") -> str:
    """The child's program; `barrier`: code it runs between its first step and the rounds."""
    return CHILD.format(root=ROOT, seeds=seeds, lowering=lowering, rounds=rounds, steps=steps,
                        barrier=barrier)


def child(seeds: int, lowering: str, rounds: int, steps: int) -> dict:
    out = subprocess.run([sys.executable, "-c", child_code(seeds, lowering, rounds, steps)],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lowerings", default="xla,matmul")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    rows = []
    for lowering in args.lowerings.split(","):
        for seeds in (1, args.seeds):
            measured = child(seeds, lowering, args.rounds, args.steps)
            median, spread = common.median_and_spread(measured["seed_steps_per_s"])
            rows.append({"seeds": seeds, "lowering": lowering, "startup_s": measured["startup_s"],
                         "seed_steps_per_s": median, "spread": spread,
                         "rounds": measured["seed_steps_per_s"]})
            print(f"{seeds} seed(s), lowering {lowering}: {median:.2f} seed-steps/s "
                  f"(spread {spread:.0%}), start-up {measured['startup_s']:.1f} s", flush=True)
    best_alone = max(r["seed_steps_per_s"] for r in rows if r["seeds"] == 1)
    for row in rows:
        row["vs_best_alone"] = row["seed_steps_per_s"] / best_alone
    result = {"date": datetime.date.today().isoformat(), "machine": cpu_name(),
              "cores": os.cpu_count(), "device": measured["device"], "jax": measured["jax"],
              "setup": f"experiments/quickstart.py, figure 5, batch {measured['batch']}, "
                       f"{measured['image_size']}×{measured['image_size']}",
              "steps_per_round": args.steps, "rows": rows}
    print("| seeds per program | lowering | seed-steps/s | vs best alone | start-up (s) |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seeds']} | {r['lowering']} | {r['seed_steps_per_s']:.2f} | "
              f"{r['vs_best_alone']:.2f}× | {r['startup_s']:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
