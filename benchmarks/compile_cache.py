"""What JAX's persistent compilation cache saves a sweep: two seeds of one variant, each in a
fresh process, with the one cache directory `run_sweep` gives all runs of a sweep.

    uv run python benchmarks/compile_cache.py [--config fashion_mnist] [--epochs 0.005]
        [--json out.json]

Each run trains `--epochs` of `configs/<config>.py` (0.005: 4 steps) and evaluates on 256
examples; the figure is its `startup_s`
(from the call until the first step's result is ready: set-up, both compilations, one step).
The second run finds the first run's programs in the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

CHILD = """
import json, sys
sys.path.insert(0, {root!r})
from configs import {config} as module
from inception_flax.run import train
config = module.get_config()
config.seed, config.num_epochs, config.max_eval_examples = {seed}, {epochs}, 256
record = train.train_and_evaluate(config, {workdir!r}, compilation_cache_dir={cache!r})
print(json.dumps({{"startup_s": record["startup_s"], "wall_time_s": record["wall_time_s"]}}))
"""


def run(config: str, seed: int, epochs: float, root: str) -> dict:
    code = CHILD.format(root=ROOT, config=config, seed=seed, epochs=epochs,
                        workdir=os.path.join(root, f"seed_{seed}"),
                        cache=os.path.join(root, "jax_cache"))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="fashion_mnist", help="a module in configs/")
    parser.add_argument("--epochs", type=float, default=0.005)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        first = run(args.config, 0, args.epochs, root)
        second = run(args.config, 1, args.epochs, root)
    result = {"config": f"configs/{args.config}.py", "first_startup_s":
              first["startup_s"], "second_startup_s": second["startup_s"],
              "fraction": second["startup_s"] / first["startup_s"]}
    print(f"start-up (set-up, compilation, first step) of {result['config']}: first seed "
          f"{result['first_startup_s']:.1f} s, second seed with the cache "
          f"{result['second_startup_s']:.1f} s ({result['fraction']:.0%} of the first)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
