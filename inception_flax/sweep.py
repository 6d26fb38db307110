"""Sweeps: a base config, named variants (each a set of overrides) crossed with seeds.

An experiment file (`experiments/NAME.py`) is an ordinary config whose `sweep` field says:

    config.sweep.axes = [{"released": {}, "double_3x3": {"model.module_35": "double_3x3"}},
                         {"relu": {}, "linear": {"model.factorization_activation": "linear"}}]
    config.sweep.combine = "product"      # or "zip": the i-th variant of every axis together
    config.sweep.seeds = (0, 1, 2)
    config.sweep.fixed_cost = True        # width solved to the baseline's multiply-adds (±1%)
    config.sweep.baseline = "released+relu"

Variant names of several axes are joined with "+". Each run lives in `DIR/<variant>/seed<k>/`
with its own checkpoints and `final.json`; `DIR/sweep.json` lists every planned run.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
import os
import time
import traceback

import ml_collections

from inception_flax import cost, reporting
from inception_flax.config import InceptionConfig

FINISHED = ("done", "diverged", "failed")


@dataclasses.dataclass
class Run:
    variant: str
    seed: int
    config: ml_collections.ConfigDict
    index: int

    @property
    def name(self) -> str:
        return f"{self.variant}/seed{self.seed}"

    def model_config(self) -> InceptionConfig:
        return model_of(self.config)


def model_of(config: ml_collections.ConfigDict) -> InceptionConfig:
    return InceptionConfig(**config.model.to_dict())


def is_sweep(config: ml_collections.ConfigDict) -> bool:
    return "sweep" in config


def _apply(config: ml_collections.ConfigDict, overrides: dict) -> None:
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node[parent]
        if leaf not in node:
            raise ValueError(f"variant override {key!r} names no config field; valid fields "
                             f"there: {', '.join(sorted(node.keys()))}.")
        node[leaf] = value


def variants(config: ml_collections.ConfigDict) -> list[tuple[str, dict]]:
    """(name, overrides) of every variant, axes combined as the sweep says."""
    axes = [list(axis.items()) for axis in config.sweep.axes]
    if config.sweep.combine == "product":
        combos = itertools.product(*axes)
    elif config.sweep.combine == "zip":
        if len({len(axis) for axis in axes}) > 1:
            raise ValueError("sweep.combine='zip' needs axes of one length; got "
                             f"{[len(axis) for axis in axes]}.")
        combos = zip(*axes)
    else:
        raise ValueError(f"sweep.combine={config.sweep.combine!r} is not valid; choose "
                         "'product' or 'zip'.")
    result = []
    for combo in combos:
        overrides = {}
        for _, axis_overrides in combo:
            overrides.update(dict(axis_overrides))
        result.append(("+".join(name for name, _ in combo), overrides))
    return result


def expand(config: ml_collections.ConfigDict) -> list[Run]:
    """Every run of the sweep, in a fixed order (variants, then seeds)."""
    base = copy.deepcopy(config)
    sweep = base.sweep
    with base.unlocked():
        del base["sweep"]
    runs, target_macs = [], None
    named = variants(config)
    names = [name for name, _ in named]
    baseline = sweep.baseline or names[0]
    if baseline not in names:
        raise ValueError(f"sweep.baseline={baseline!r} is not a variant; variants: "
                         f"{', '.join(names)}.")
    configs = {}
    for name, overrides in named:
        variant = copy.deepcopy(base)
        _apply(variant, overrides)
        configs[name] = variant
    if sweep.fixed_cost:
        target = configs[baseline]
        target_macs = cost.cost(model_of(target), target.image_size).total.macs
        for name, variant in configs.items():
            solved = cost.solve_depth_multiplier(model_of(variant), variant.image_size,
                                                 target_macs)
            variant.model.depth_multiplier = float(round(solved.depth_multiplier, 6))
    for name in names:
        for seed in sweep.seeds:
            run_config = copy.deepcopy(configs[name])
            run_config.seed = int(seed)
            runs.append(Run(name, int(seed), run_config, len(runs)))
    return runs


def shard_of(runs: list[Run], shard: str | None) -> list[Run]:
    """This job's runs: `shard` "i/n", else Slurm's array index where set, else all."""
    if shard is None and "SLURM_ARRAY_TASK_ID" in os.environ:
        first = int(os.environ.get("SLURM_ARRAY_TASK_MIN", 0))
        index = int(os.environ["SLURM_ARRAY_TASK_ID"]) - first
        count = int(os.environ.get("SLURM_ARRAY_TASK_COUNT", 1))
        shard = f"{index}/{count}"
    if shard is None:
        return runs
    try:
        index, count = (int(part) for part in shard.split("/"))
        assert 0 <= index < count
    except (ValueError, AssertionError):
        raise ValueError(f"--shard {shard!r} is not i/n with 0 <= i < n (e.g. 0/4).") from None
    return [run for run in runs if run.index % count == index]


def run_costs(run: Run):
    return cost.cost(run.model_config(), run.config.image_size).total


def dry_run(runs: list[Run]) -> str:
    lines = [f"{'run':<40} {'params':>12} {'multiply-adds':>16}  image"]
    for run in runs:
        total = run_costs(run)
        lines.append(f"{run.name:<40} {total.params:>12,} {total.macs:>16,}  "
                     f"{run.config.image_size}")
    return "\n".join(lines)


def status_of(workdir: str, run: Run) -> str | None:
    path = os.path.join(workdir, run.name, "final.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f).get("status")


def write_plan(workdir: str, config: ml_collections.ConfigDict, runs: list[Run]) -> None:
    os.makedirs(workdir, exist_ok=True)
    planned = []
    for r in runs:
        total = run_costs(r)
        planned.append({"variant": r.variant, "seed": r.seed, "dir": r.name,
                        "params": total.params, "macs": total.macs})
    plan = {"sweep": config.sweep.to_dict(), "runs": planned}
    reporting.write_json_atomically(os.path.join(workdir, "sweep.json"), plan)


def run_sweep(config: ml_collections.ConfigDict, workdir: str, shard: str | None = None,
              train_fn=None) -> int:
    """Runs this shard's runs that are not finished; returns the number that failed or
    diverged (0: all good). `train_fn(config, run_dir)` defaults to the trainer, with one
    compilation cache for the sweep (`workdir/jax_cache`): seeds of a variant compile once."""
    if train_fn is None:
        from inception_flax.train import train_and_evaluate
        cache = os.path.join(workdir, "jax_cache")
        train_fn = functools.partial(train_and_evaluate, compilation_cache_dir=cache)
    runs = expand(config)
    mine = shard_of(runs, shard)
    write_plan(workdir, config, runs)
    bad, started, finished_here = 0, time.time(), 0
    for position, run in enumerate(mine):
        run_dir = os.path.join(workdir, run.name)
        status = status_of(workdir, run)
        if status in FINISHED:
            print(f"[{position + 1}/{len(mine)}] {run.name}: {status} already, skipped",
                  flush=True)
            bad += status != "done"
            continue
        checkpoints = os.path.join(run_dir, "checkpoints")
        resuming = os.path.isdir(checkpoints) and any(n.isdigit() for n in os.listdir(checkpoints))
        print(f"[{position + 1}/{len(mine)}] {run.name}: "
              f"{'resuming' if resuming else 'starting'}", flush=True)
        try:
            record = train_fn(run.config, run_dir)
            status = record["status"]
        except Exception as error:  # noqa: BLE001 (one failed run must not stop the others)
            status = "diverged" if type(error).__name__ == "Diverged" else "failed"
            if status == "failed":
                os.makedirs(run_dir, exist_ok=True)
                reporting.write_json_atomically(os.path.join(run_dir, "final.json"), {
                    "status": "failed", "error": f"{type(error).__name__}: {error}",
                    "traceback": traceback.format_exc(), "config": run.config.to_dict()})
        if status == "preempted":
            print("preempted: stopping the sweep; start the same command again to go on",
                  flush=True)
            return 0
        bad += status != "done"
        finished_here += 1
        elapsed = time.time() - started
        left = len(mine) - position - 1
        counts = _counts(workdir, runs)
        print(f"{run.name}: {status}. sweep: {counts['done']} done, {counts['failed']} failed, "
              f"{counts['left']} left; this shard's ETA "
              f"{reporting.format_seconds(elapsed / finished_here * left)}", flush=True)
    return bad


def _counts(workdir: str, runs: list[Run]) -> dict:
    statuses = [status_of(workdir, run) for run in runs]
    return {"done": statuses.count("done"),
            "failed": sum(s in ("failed", "diverged") for s in statuses),
            "left": sum(s not in FINISHED for s in statuses)}
