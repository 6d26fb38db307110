"""Does a run depend on how many CPU cores its process has, beyond the rounding?

XLA:CPU splits its work by the cores a process may use, so a run's rounding depends on them
(docs/sweeps.md). This script separates rounding from a real effect, for
one quickstart run (figure 4, `--seed`), in two processes pinned to 1 and to 2 cores, from
the same initial state and the same batches:

1. float64 training for `--steps` steps on each: if only the rounding differs, the two
   trajectories stay ~1e-12 apart (float64's rounding, amplified by the steps).
2. At every `--every`-th state of the float64 trajectory, one step's gradients and batch-norm
   statistics computed in float32 on each core count, against float64's: the size of each
   core count's float32 error. A reduction order that loses precision on one core (the
   batch-norm variance E[x²] − E[x]², say) would show as a larger error there.
3. float32 training for `--steps` steps on each: where the two trajectories part.

    uv run python benchmarks/core_split.py --json out.json [--seed 4 --steps 200 --every 25]

Needs 2 CPU cores. Writes everything measured to `--json` and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(cores: int, seed: int, steps: int, every: int, out: str) -> None:
    """In this process, pinned to `cores` cores: the three measurements, saved to `out`."""
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])
    sys.path.insert(0, ROOT)
    import jax
    import numpy as np

    from experiments import quickstart
    from inception_flax.run import settings, steps, train
    from inception_flax.sweeps import plan

    jax.config.update("jax_enable_x64", True)
    run = next(r for r in plan.expand(quickstart.get_config())
               if r.variant == "fig4" and r.seed == 0)
    config = run.config
    config.seed, config.compilation_cache = seed, False
    config.num_epochs = steps / 937  # only the schedule's length: we step by hand
    with tempfile.TemporaryDirectory() as scratch:
        runs = {}
        for dtype in ("float64", "float32"):
            config.model.dtype = dtype
            runs[dtype] = train.set_up([settings.validate(config.copy_and_resolve_references())],
                                       [os.path.join(scratch, dtype)], None)
    cast = lambda tree, dtype: jax.tree_util.tree_map(  # noqa: E731
        lambda x: x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x, tree)
    initial = runs["float32"].state
    batches = runs["float32"].datasets[0].train_batches(0)
    batches = [next(batches) for _ in range(steps)]
    results = {"cores": len(os.sched_getaffinity(0)), "seed": seed, "steps": steps}

    def train_steps(dtype):
        state, losses, kept = cast(initial, np.float64 if dtype == "float64" else np.float32), \
            [], {}
        step_fn = runs[dtype].train_step
        for step, batch in enumerate(batches):
            if step % every == 0:
                kept[step] = jax.device_get(state)
            state, metrics = step_fn(state, steps.to_global(batch,
                                                            runs[dtype].batch_sharding))
            losses.append(float(metrics["loss"]))
        return losses, kept

    started = time.time()
    results["float64_losses"], states = train_steps("float64")
    results["float64_seconds"] = time.time() - started
    results["float32_losses"], _ = train_steps("float32")
    # One step's gradients and batch statistics from each float64 state, in both dtypes.
    errors, saved = [], {}
    for step, state in states.items():
        batch = steps.to_global(batches[step], runs["float32"].batch_sharding)
        computed = {}
        for dtype, np_dtype in (("float64", np.float64), ("float32", np.float32)):
            s = cast(state, np_dtype)
            grads, stats, _ = runs[dtype].train_step.gradients(s.params, s.batch_stats, s.rng,
                                                                s.step, batch)
            computed[dtype] = jax.device_get((grads, stats))
            saved.update({f"{dtype}/step{step}/{name}": value
                          for name, value in named_leaves(grads).items()})
        (g64, b64), (g32, b32) = computed["float64"], computed["float32"]
        worst = sorted(((relative_error(a, e), name) for (name, a), e in zip(
            named_leaves(g32).items(), named_leaves(g64).values())), reverse=True)[:5]
        errors.append({"step": step,
                       "gradient": relative_error(g32, g64), "largest_leaves": worst,
                       "batch_stats_mean": relative_error(leaves(b32, "mean"), leaves(b64, "mean")),
                       "batch_stats_var": relative_error(leaves(b32, "var"), leaves(b64, "var"))})
    results["float32_error_at_float64_states"] = errors
    np.savez(out + ".npz", **{f"params/step{k}": flat(v.params) for k, v in states.items()},
             **saved)
    with open(out, "w") as f:
        json.dump(results, f)


def named_leaves(tree) -> dict:
    import jax
    return {"/".join(str(getattr(k, "key", k)) for k in path): x
            for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def leaves(tree, name):
    import jax
    return [x for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]
            if getattr(path[-1], "key", None) == name]


def flat(tree):
    import jax
    import numpy as np
    return np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(tree)])


def gradient_differences(one: dict, two: dict, dtype: str) -> list[dict]:
    """At each saved state: the relative difference of one step's `dtype` gradients computed
    on 1 and on 2 cores from the same state, overall and for the five leaves that differ
    most."""
    import numpy as np
    rows = []
    steps = sorted({k.split("/")[1] for k in one if k.startswith(dtype + "/")},
                   key=lambda s: int(s[4:]))
    for step in steps:
        names = [k for k in one if k.startswith(f"{dtype}/{step}/")]
        a = np.concatenate([np.ravel(one[k]) for k in names]).astype(np.float64)
        b = np.concatenate([np.ravel(two[k]) for k in names]).astype(np.float64)
        per_leaf = sorted(((float(np.linalg.norm(one[k] - two[k]) / max(
            np.linalg.norm(two[k]), 1e-300)), k.split("/", 2)[2]) for k in names), reverse=True)
        rows.append({"step": int(step[4:]),
                     "relative": float(np.linalg.norm(a - b) / np.linalg.norm(b)),
                     "largest_leaves": per_leaf[:5]})
    return rows


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    return f"{len(os.sched_getaffinity(0))} cores of {names[0] if names else 'an unknown CPU'}"


def relative_error(approximate, exact) -> float:
    """‖approximate − exact‖ / ‖exact‖ over every leaf together."""
    import numpy as np
    a, e = flat(approximate).astype(np.float64), flat(exact)
    return float(np.linalg.norm(a - e) / np.linalg.norm(e))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--cores", type=int, help=argparse.SUPPRESS)  # a measuring process
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cores:
        measure(args.cores, args.seed, args.steps, args.every, args.out)
        return 0
    if len(os.sched_getaffinity(0)) < 2:
        print("error: needs 2 CPU cores.", file=sys.stderr)
        return 2
    import numpy as np
    parts = {}
    for cores in (1, 2):  # one after the other: each alone on the machine
        out = f"{args.json}.{cores}core"
        subprocess.run([sys.executable, __file__, "--json", args.json, "--seed", str(args.seed),
                        "--steps", str(args.steps), "--every", str(args.every),
                        "--cores", str(cores), "--out", out], check=True,
                       env=dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3"))
        with open(out) as f:
            parts[cores] = json.load(f)
        parts[cores]["params"] = dict(np.load(out + ".npz"))
        os.remove(out)
        os.remove(out + ".npz")
    one, two = parts[1], parts[2]
    summary = {"machine": cpu_model(), "date": time.strftime("%Y-%m-%d"),
               "seed": args.seed, "steps": args.steps,
               "float64_seconds": {c: parts[c]["float64_seconds"] for c in parts}}
    # 1. float64 on 1 and 2 cores: how far apart the parameters are, step by step, and one
    # step's gradients from the same (float64) state: rounding alone leaves them ~1e-15 apart.
    params = sorted((k for k in one["params"] if k.startswith("params/")),
                    key=lambda k: int(k.rsplit("step", 1)[1]))
    summary["float64_parameter_difference"] = {
        k.split("/")[1]: float(np.linalg.norm(one["params"][k] - two["params"][k])
                               / np.linalg.norm(two["params"][k])) for k in params}
    summary["float64_loss_difference_max"] = float(np.max(np.abs(
        np.subtract(one["float64_losses"], two["float64_losses"]))))
    for dtype in ("float64", "float32"):
        summary[f"{dtype}_gradient_1_vs_2_cores"] = gradient_differences(
            one["params"], two["params"], dtype)
    # 2. float32's error on each core count at the same float64 states.
    summary["float32_error"] = {c: parts[c]["float32_error_at_float64_states"] for c in parts}
    # 3. float32 on 1 and 2 cores: the first step whose loss differs, and by how much later.
    losses = {c: np.array(parts[c]["float32_losses"]) for c in parts}
    apart = np.nonzero(losses[1] != losses[2])[0]
    summary["float32_first_step_apart"] = int(apart[0]) + 1 if len(apart) else None
    summary["float32_losses"] = {c: parts[c]["float32_losses"] for c in parts}
    summary["float64_losses"] = {c: parts[c]["float64_losses"] for c in parts}
    with open(args.json, "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if "losses" not in k}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
