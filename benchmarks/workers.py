"""`--workers N` against one process: images per second of the quickstart's train step (figure
5, eighth width, batch 64, 75×75 synthetic images) in one process on all the cores this one
may use, and in one process per core, pinned to it as `--workers` pins its workers, all
stepping at once.

    uv run python benchmarks/workers.py [--rounds 5] [--steps 50] [--json out.json]

Each process builds the state, compiles and runs its first step (its start-up), then, in the
per-core case, waits until every process has got that far, and runs `--rounds` rounds of
`--steps` steps. A process's figure is the median over its rounds; the per-core case's is the
sum over its processes, and its ratio to the one process's. The steps are
`steps.build`', as in `benchmarks/seeds_together.py`, whose child program this one runs.
A sweep gains more than its step: a process's input pipeline, logging and evaluation run
between its steps, and the other processes' steps fill that time (docs/sweeps.md, "Sweeps and result
tables", compares the quickstart's wall time both ways)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import seeds_together  # noqa: E402

sys.path.insert(0, seeds_together.ROOT)
from inception_flax.utils import malloc
from inception_flax.sweeps import workers  # noqa: E402

BARRIER = """
import os, time
open(os.path.join({directory!r}, str(os.getpid())), "w").close()
while len(os.listdir({directory!r})) < {count}:
    time.sleep(0.05)
"""


def processes(count: int, rounds: int, steps: int) -> list[dict]:
    """`count` processes, one per core set of `workers.core_sets`, stepping at once."""
    sets = workers.core_sets(count, sorted(os.sched_getaffinity(0)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory() as directory:
        code = seeds_together.child_code(1, "xla", rounds, steps,
                                          BARRIER.format(directory=directory, count=count))
        started = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                    text=True, env=env,
                                    preexec_fn=lambda c=cores: os.sched_setaffinity(0, c))
                   for cores in sets]
        outputs = [p.communicate()[0] for p in started]
    if any(p.returncode for p in started):
        codes = [p.returncode for p in started]
        raise SystemExit(f"a benchmark process failed: exit codes {codes}")
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def main():
    malloc.use_tcmalloc()  # as run_experiment.py: its processes inherit it
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    rows = []
    for count in (1, cores):
        measured = processes(count, args.rounds, args.steps) if count > 1 else [
            seeds_together.child(1, "xla", args.rounds, args.steps)]
        batch = measured[0]["batch"]
        medians = [common.median_and_spread(m["seed_steps_per_s"])[0] * batch for m in measured]
        rows.append({"processes": count, "cores_each": cores // count,
                     "images_per_s": sum(medians), "per_process": medians,
                     "rounds": [[r * batch for r in m["seed_steps_per_s"]] for m in measured],
                     "startup_s": [m["startup_s"] for m in measured]})
        startups = ", ".join(f"{m['startup_s']:.1f}" for m in measured)
        print(f"{count} process(es) of {cores // count} core(s): {sum(medians):.0f} images/s "
              f"({', '.join(f'{m:.0f}' for m in medians)}), start-up {startups} s", flush=True)
    for row in rows:
        row["vs_one_process"] = row["images_per_s"] / rows[0]["images_per_s"]
    result = {"date": datetime.date.today().isoformat(), "machine": seeds_together.cpu_name(),
              "cores": cores, "allocator": malloc.active(), "device": measured[0]["device"],
              "jax": measured[0]["jax"],
              "setup": f"experiments/quickstart.py, figure 5, batch {batch}, "
                       f"{measured[0]['image_size']}×{measured[0]['image_size']}",
              "rounds": args.rounds, "steps_per_round": args.steps, "rows": rows}
    print("| processes | cores each | images/s (sum) | vs one process |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['processes']} | {r['cores_each']} | {r['images_per_s']:.0f} | "
              f"{r['vs_one_process']:.2f}× |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
