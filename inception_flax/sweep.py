"""Sweeps: a base config, named variants (each a set of overrides) crossed with seeds.

An experiment file (`experiments/NAME.py`) is an ordinary config whose `sweep` field says:

    config.sweep.axes = [{"released": {}, "fig5": {"model.module_35": "fig5"}},
                         {"relu": {}, "linear": {"model.factorization_activation": "linear"}}]
    config.sweep.combine = "product"      # or "zip": the i-th variant of every axis together
    config.sweep.seeds = (0, 1, 2)
    config.sweep.fixed_cost = True        # width solved to the baseline's multiply-adds (±1%)
    config.sweep.fixed_cost_tolerance = 0.01  # relative
    config.sweep.fixed_cost_exempt = ()   # variants kept at their own width all the same
    config.sweep.baseline = "released+relu"
    config.sweep.only = ""                # comma-separated names or globs: run only these
    config.sweep.notes = {}               # variant: a footnote for the tables
    config.sweep.seeds_per_program = 1    # seeds of a variant trained together (jax.vmap)
    config.sweep.alpha = 0.05             # family-wise error of the table's verdicts (decide.py)
    config.sweep.margin = 0.0             # points of top-1 error; 0: no equivalence verdicts
    config.sweep.until_decided = False    # seeds added in stages until decided (stages.py)
    config.sweep.min_seeds, config.sweep.max_seeds, config.sweep.seeds_per_stage = 3, 12, 3

Variant names of several axes are joined with "+". Each run lives in `DIR/<variant>/seed<k>/`
with its own checkpoints and `final.json`; `DIR/sweep.json` lists every planned run.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import functools
import itertools
import json
import os
import time
import traceback

import jax
import ml_collections
import numpy as np

from inception_flax import (checkpoint, cost, disk, input_pipeline, run_config, run_dir,
                            run_lock, run_log, workers)
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
        return run_config.model_config(self.config)


def is_sweep(config: ml_collections.ConfigDict) -> bool:
    return "sweep" in config


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict) -> None:
    """Sets each dotted key ("model.module_35") of `overrides` in `config`; a key that names
    no field raises a ValueError."""
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node[parent]
        if leaf not in node:
            raise ValueError(f"override {key!r} names no config field; valid fields "
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
    names = [name for name, _ in result]
    repeated = sorted({name for name in names if names.count(name) > 1})
    bad = [name for name in names if not name or "/" in name or name.startswith(".")]
    if repeated or bad:
        raise ValueError(f"sweep variant names must be distinct, non-empty, without '/' and "
                         f"not starting with '.'; got {', '.join(map(repr, repeated + bad))} "
                         "(the names of several axes are joined with '+').")
    return result


def selected(config: ml_collections.ConfigDict) -> list[str]:
    """The variants this sweep runs: all, or those `sweep.only` names (comma-separated names
    or shell-style globs, e.g. "released,35x35_*"), in the experiment's order."""
    names = [name for name, _ in variants(config)]
    patterns = [p.strip() for p in (config.sweep.get("only") or "").split(",") if p.strip()]
    if not patterns:
        return names
    unmatched = [p for p in patterns if not fnmatch.filter(names, p)]
    if unmatched:
        raise ValueError(f"sweep.only={config.sweep.only!r}: {', '.join(map(repr, unmatched))} "
                         f"matches no variant; variants: {', '.join(names)}.")
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def baseline_of(config: ml_collections.ConfigDict) -> str:
    names = [name for name, _ in variants(config)]
    baseline = config.sweep.baseline or names[0]
    if baseline not in names:
        raise ValueError(f"sweep.baseline={baseline!r} is not a variant; variants: "
                         f"{', '.join(names)}.")
    return baseline


def expand(config: ml_collections.ConfigDict) -> list[Run]:
    """The runs of the selected variants (`sweep.only`), in a fixed order (variants, then
    seeds). With `fixed_cost`, each variant's width is solved to the baseline's
    multiply-adds, except for the variants in `fixed_cost_exempt`."""
    base = copy.deepcopy(config)
    sweep = base.sweep
    with base.unlocked():
        del base["sweep"]
    runs, target_macs = [], None
    named = variants(config)
    names = [name for name, _ in named]
    baseline = baseline_of(config)
    chosen = selected(config)
    exempt = tuple(sweep.get("fixed_cost_exempt") or ())
    for name in exempt:
        if name not in names:
            raise ValueError(f"sweep.fixed_cost_exempt names {name!r}, which is not a variant; "
                             f"variants: {', '.join(names)}.")
    configs = {}
    for name, overrides in named:
        variant = copy.deepcopy(base)
        apply_overrides(variant, overrides)
        configs[name] = variant
    if sweep.fixed_cost:
        target = configs[baseline]
        target_macs = cost.cost(run_config.model_config(target),
                                target.image_size).total.macs
        for name, variant in configs.items():
            if name in exempt or name not in chosen:
                continue
            solved = cost.solve_depth_multiplier(run_config.model_config(variant),
                                                 variant.image_size, target_macs,
                                                 sweep.fixed_cost_tolerance)
            variant.model.depth_multiplier = float(round(solved.depth_multiplier, 6))
    seeds = check_seeds(sweep.seeds)
    for name in chosen:
        for seed in seeds:
            seeded = copy.deepcopy(configs[name])
            seeded.seed = int(seed)
            runs.append(Run(name, int(seed), seeded, len(runs)))
    return runs


def check_seeds(seeds) -> list[int]:
    """The sweep's seeds: whole numbers >= 0, each once (a ValueError says what is wrong)."""
    seeds = list(seeds) if isinstance(seeds, (list, tuple)) else [seeds]
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"sweep.seeds={tuple(seeds)!r} is not valid; give whole numbers >= 0, "
                         "e.g. --config.sweep.seeds='(0,1,2)'.")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"sweep.seeds={tuple(seeds)!r} lists seed(s) "
                         f"{', '.join(map(str, repeated))} more than once; give each seed "
                         "once (a seed's run would be counted twice).")
    return seeds


def check(config: ml_collections.ConfigDict) -> list[Run]:
    """The sweep's runs, every run's config checked (a ValueError says what is wrong), before
    the first one starts."""
    runs = expand(config)
    for run in runs:
        run_config.validate(run.config)
    return runs


def seeds_per_program(config: ml_collections.ConfigDict) -> int:
    k = config.sweep.get("seeds_per_program", 1)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"sweep.seeds_per_program={k!r} is not valid; use a whole number "
                         ">= 1 (1: each seed alone).")
    return k


def programs(runs: list[Run], size: int) -> list[list[Run]]:
    """The units of work: each variant's seeds, `size` at a time (`seeds_per_program`), each
    unit trained as one program; in the runs' order."""
    units: list[list[Run]] = []
    for run in runs:
        if units and units[-1][0].variant == run.variant and len(units[-1]) < size:
            units[-1].append(run)
        else:
            units.append([run])
    return units


def shard_of(units: list, shard: str | None) -> list:
    """This job's units of work (runs, or programs of runs): for `shard` "i/n" (else Slurm's
    array index where set, else all), the i-th of n consecutive slices of the units
    (`workers.part`): consecutive, so that a variant's seeds stay in one process where they
    can, and its later seeds reuse its compiled programs."""
    if shard is None and "SLURM_ARRAY_TASK_ID" in os.environ:
        first = int(os.environ.get("SLURM_ARRAY_TASK_MIN", 0))
        index = int(os.environ["SLURM_ARRAY_TASK_ID"]) - first
        count = int(os.environ.get("SLURM_ARRAY_TASK_COUNT", 1))
        shard = f"{index}/{count}"
    if shard is None:
        return units
    try:
        index, count = (int(part) for part in shard.split("/"))
        assert 0 <= index < count
    except (ValueError, AssertionError):
        raise ValueError(f"--shard {shard!r} is not i/n with 0 <= i < n (e.g. 0/4).") from None
    return workers.part(units, index, count)


def run_costs(run: Run):
    return cost.cost(run.model_config(), run.config.image_size).total


def describe(config: ml_collections.ConfigDict) -> str:
    """The sweep in a few lines: its variants, the selection, seeds and cost rule."""
    names = [name for name, _ in variants(config)]
    chosen = selected(config)
    sweep = config.sweep
    lines = [f"variants: {', '.join(names)} (baseline {baseline_of(config)})"]
    if chosen != names:
        lines.append(f"selected by sweep.only={sweep.only!r}: {', '.join(chosen)}")
    lines.append(f"seeds: {', '.join(str(s) for s in sweep.seeds)}; "
                 f"{seeds_per_program(config)} per program (sweep.seeds_per_program)")
    if sweep.get("until_decided"):
        from inception_flax import sequential
        looks = sequential.looks(sweep.min_seeds, sweep.max_seeds, sweep.seeds_per_stage)
        lines.append(f"until decided: looks at {', '.join(map(str, looks))} seeds of each "
                     f"undecided variant and the baseline (the runs below are the most it may "
                     f"train); α = {sweep.alpha:g} over the variants and looks"
                     + (f", margin ±{sweep.margin:g} points" if sweep.margin else ", no margin"))
    elif sweep.get("margin"):
        lines.append(f"verdicts at α = {sweep.alpha:g} over the variants, margin "
                     f"±{sweep.margin:g} points")
    if sweep.fixed_cost:
        exempt = tuple(sweep.get("fixed_cost_exempt") or ())
        lines.append("fixed cost: each variant's width solved to the baseline's multiply-adds "
                     f"(±{sweep.fixed_cost_tolerance:.1%})"
                     + (f", except {', '.join(exempt)}" if exempt else ""))
    return "\n".join(lines)


def dry_run(units: list[list[Run]]) -> tuple[str, list[str]]:
    """The listing `--dry_run` prints (every run's width, parameters, multiply-adds, input
    and the grids its stages of modules act on; the parts of the network and the config
    fields in which the variants differ; the seeds trained together), and the warnings for
    kernels larger than their grid (for stderr)."""
    runs = [run for unit in units for run in unit]
    reports = {run.variant: cost.cost(run.model_config(), run.config.image_size)
               for run in runs}
    differ = _differing_parts(reports)
    header = (f"{'run':<34} {'width':>8} {'params':>12} {'multiply-adds':>15} {'image':>5}  "
              + " / ".join(cost.MODULE_STAGES) + " on")
    lines = [header]
    for run in runs:
        report = reports[run.variant]
        stages = {p.name: p for p in cost.parts(report)}
        grids = " / ".join(
            f"{stages[name].grid[0]}×{stages[name].grid[1]}" + ("*" if name in differ else "")
            for name in cost.MODULE_STAGES if name in stages)
        lines.append(f"{run.name:<34} {run.model_config().depth_multiplier:>8.4g} "
                     f"{report.total.params:>12,} {report.total.macs:>15,} "
                     f"{run.config.image_size:>5}  {grids}")
    if differ:
        lines.append("variants differ in: " + "; ".join(
            f"{name} ({scopes}) on {grids}" for name, (scopes, grids) in differ.items())
            + ("  (* in the grid columns)" if set(differ) & set(cost.MODULE_STAGES) else ""))
    fields = _differing_fields(runs)
    if fields:
        lines.append("variants' configs differ in: " + "; ".join(
            f"{field} ({', '.join(values)})" for field, values in fields.items()))
    if any(len(unit) > 1 for unit in units):
        lines.append("trained together, one program each: " + "; ".join(
            f"{unit[0].variant}/seed " + ", ".join(str(r.seed) for r in unit) for unit in units))
    warnings = list(dict.fromkeys(line for report in reports.values()
                                  for line in cost.grid_warnings(report)))
    return "\n".join(lines), warnings


def _differing_fields(runs: list[Run]) -> dict:
    """{field: its values, in the variants' order} for every field of the config but `seed`
    (and the bookkeeping ones, `run_dir.identity`) that is not the same in all variants:
    training fields (the optimizer, label smoothing...) and model fields alike."""
    configs = {run.variant: run_dir.identity(run.config) for run in runs}
    names = sorted(set().union(*configs.values()) - {"seed"})
    return {name: list(dict.fromkeys(json.dumps(c.get(name)) for c in configs.values()))
            for name in names if len({json.dumps(c.get(name)) for c in configs.values()}) > 1}


def _differing_parts(reports: dict) -> dict:
    """{part: (scopes, grids)} for every part of the network whose structure (apart from
    widths) is not the same in all variants: what the comparison tests."""
    if len(reports) < 2:
        return {}
    by_variant = [{p.name: p for p in cost.parts(r)} for r in reports.values()]
    names = list(dict.fromkeys(name for parts in by_variant for name in parts))
    differ = {}
    for name in names:
        present = [parts[name] for parts in by_variant if name in parts]
        if len(present) < len(by_variant) or len({p.structure for p in present}) > 1:
            grids = " / ".join(dict.fromkeys(f"{p.grid[0]}×{p.grid[1]}" for p in present))
            differ[name] = (present[0].scopes, grids)
    return differ


def status_of(workdir: str, run: Run, warn: bool = False) -> str | None:
    """The status in the run's record; None where it has none (or a damaged one: with
    `warn`, one line says so)."""
    final = run_dir.read_final(os.path.join(workdir, run.name), warn)
    return final.get("status") if final else None


def write_plan(workdir: str, config: ml_collections.ConfigDict, runs: list[Run]) -> None:
    """`sweep.json`: the sweep's settings and every planned run with its cost and its
    config's identity (`run_dir.digest`), by which the tables leave out a record made under
    another config."""
    os.makedirs(workdir, exist_ok=True)
    planned = []
    for r in runs:
        total = run_costs(r)
        planned.append({"variant": r.variant, "seed": r.seed, "dir": r.name,
                        "params": total.params, "macs": total.macs,
                        "depth_multiplier": r.config.model.depth_multiplier,
                        "identity": run_dir.digest(r.config)})
    plan = {"sweep": config.sweep.to_dict(), "runs": planned}
    run_log.write_json_atomically(os.path.join(workdir, "sweep.json"), plan)


def run_sweep(config: ml_collections.ConfigDict, workdir: str, shard: str | None = None,
              train_fn=None, set_aside_stale: bool = False,
              retry_diverged: bool = False) -> int:
    """Runs this shard's runs that are not finished, `sweep.seeds_per_program` seeds of a
    variant at a time as one program; returns the number that failed or diverged (0: all
    good). `train_fn(configs, run_dirs) -> records` defaults to the trainer
    (`train.train_seeds`), with one compilation cache for the sweep (`workdir/jax_cache`):
    seeds of a variant compile once. With `sweep.until_decided`, the runs come in stages, as
    `stages.run` decides.

    Before any run starts, every run's directory is checked against its config
    (`find_stale`): one made under another config is refused, or with `set_aside_stale`
    moved aside and trained afresh. A finished run is skipped; a failed one is retried (its
    record kept as `final.failed.json`); a diverged one stays recorded, or with
    `retry_diverged` is moved aside and trained afresh; a damaged record counts as
    unfinished. Bad data and a full or read-only disk stop the sweep (the exception goes up:
    nothing is recorded as failed, the same command resumes).

    Seeds trained together must resume from the same step: after a restart (with the same or
    another `seeds_per_program`), a unit's unfinished seeds are trained together where their
    latest checkpoints are at the same step, apart where they are not."""
    if train_fn is None:
        from inception_flax.train import train_seeds
        cache = os.path.join(workdir, "jax_cache")
        train_fn = functools.partial(train_seeds, compilation_cache_dir=cache)
    runs = check(config)
    stale = find_stale(workdir, runs, set_aside_stale)
    if config.sweep.get("until_decided"):
        from inception_flax import stages
        return stages.run(config, workdir, runs, shard, train_fn, stale, retry_diverged)
    write_plan(workdir, config, runs)
    units = shard_of(programs(runs, seeds_per_program(config)), shard)
    bad = run_units(units, workdir, runs, train_fn, stale, retry_diverged)
    return 0 if bad is None else bad


def run_units(units: list[list[Run]], workdir: str, planned: list[Run], train_fn,
              stale: dict, retry_diverged: bool) -> int | None:
    """Trains the units (see `run_sweep`); returns how many runs failed or diverged, or None
    when preempted (SIGTERM: the runs in training saved, the same command goes on)."""
    mine = [run for unit in units for run in unit]
    positions = {run.name: f"[{i + 1}/{len(mine)}] {run.name}" for i, run in enumerate(mine)}
    bad, started, finished_here = 0, time.time(), 0
    for unit in units:
        todo = []
        for run in unit:
            path = os.path.join(workdir, run.name)
            final = None if run.name in stale else run_dir.read_final(path, warn=False)
            status = final.get("status") if final else None
            if status == "done" or (status == "diverged" and not retry_diverged):
                print(f"{positions[run.name]}: {status} already, skipped", flush=True)
                bad += status != "done"
                continue
            in_use = _lock(path)
            if in_use:
                print(f"{positions[run.name]}: skipped: {in_use}", flush=True)
                continue
            _prepare(path, positions[run.name], stale.pop(run.name, None), final)
            todo.append(run)
        try:
            outcome = _train_unit(train_fn, workdir, todo, positions)
        finally:
            for run in todo:
                run_lock.release(os.path.join(workdir, run.name))
        if outcome is None:
            print("preempted: stopping the sweep; start the same command again to go on",
                  flush=True)
            return None
        bad += outcome
        finished_here += len(todo)
        if todo:
            left = len(mine) - mine.index(todo[-1]) - 1
            counts = _counts(workdir, planned)
            print(f"sweep: {counts['done']} done, {counts['failed']} failed, {counts['left']} "
                  f"left; this shard's ETA "
                  f"{run_log.format_seconds((time.time() - started) / finished_here * left)}",
                  flush=True)
    return bad


def find_stale(workdir: str, runs: list[Run], set_aside_stale: bool) -> dict[str, list]:
    """{run: the fields that differ} for every run of the sweep (all shards) whose directory
    was made under another config (`run_dir.stale_fields`); without `set_aside_stale`, a
    ValueError (one sentence) if there is any."""
    stale = {}
    for run in runs:
        fields = run_dir.stale_fields(os.path.join(workdir, run.name), run.config,
                                      checkpoint.stored_fields)
        if fields:
            stale[run.name] = fields
    if stale and not set_aside_stale:
        name, fields = next(iter(stale.items()))
        others = f" (and {len(stale) - 1} other run(s))" if len(stale) > 1 else ""
        raise ValueError(f"{run_dir.describe_stale(os.path.join(workdir, name), fields)}"
                         f"{others}; use another --workdir, the config they were made with, or "
                         "--set_aside_stale to move them aside and train them afresh.")
    return stale


def _prepare(path: str, where: str, stale: list | None, final: dict | None) -> None:
    """Readies a locked run directory to be trained: a stale one or (retried) a diverged one is
    moved aside, a failed record is kept as `final.failed.json`, a damaged one set aside."""
    status = final.get("status") if final else None
    if stale or status == "diverged":
        why = "stale" if stale else "diverged"
        if jax.process_index() == 0:
            run_lock.release(path)
            moved = run_dir.set_aside(path, why)
            run_lock.acquire(path)
            reason = run_dir.describe_stale("it", stale) if stale else \
                f"it diverged ({final.get('error')})"
            print(f"{where}: {reason}: moved aside as {moved}; training afresh", flush=True)
    elif status == "failed":
        if jax.process_index() == 0:
            os.replace(os.path.join(path, "final.json"), os.path.join(path, "final.failed.json"))
        print(f"{where}: failed before ({final.get('error')}); retrying (that record is kept as "
              "final.failed.json)", flush=True)
    elif jax.process_index() == 0:
        run_dir.set_aside_damaged_final(path)


def _lock(run_dir: str) -> str | None:
    """Takes the run's lock (process 0, for every process of the sweep); returns why the run
    must be skipped (another live command holds it), or None."""
    in_use = None
    if jax.process_index() == 0:
        try:
            run_lock.acquire(run_dir)
        except run_lock.Locked as locked:
            in_use = str(locked)
    if jax.process_count() > 1:  # the processes of one sweep train the same runs
        from jax.experimental import multihost_utils
        skip = bool(multihost_utils.broadcast_one_to_all(np.array(in_use is not None)))
        in_use = (in_use or "in use by another command") if skip else None
    return in_use


def _train_unit(train_fn, workdir: str, todo: list[Run], positions: dict) -> int | None:
    """Trains a unit's unfinished runs, those at the same resume step together; returns how
    many failed or diverged, or None when preempted."""
    bad = 0
    for step, together in _by_resume_step(workdir, todo):
        for run in together:
            print(f"{positions[run.name]}: "
                  f"{f'resuming at step {step}' if step else 'starting'}"
                  + (f" (one program with {len(together) - 1} other seed(s))"
                     if len(together) > 1 else ""), flush=True)
        statuses = _train(train_fn, workdir, together)
        for run, status in zip(together, statuses):
            print(f"{run.name}: {status}", flush=True)
        if "preempted" in statuses:
            return None
        bad += sum(status != "done" for status in statuses)
    return bad


def _train(train_fn, workdir: str, together: list[Run]) -> list[str]:
    """Trains runs as one program; a failure is recorded in each run's final.json, except bad
    data and the disk's faults, which stop the sweep (raised)."""
    dirs = [os.path.join(workdir, run.name) for run in together]
    try:
        return [record["status"] for record in train_fn([r.config for r in together], dirs)]
    except Exception as error:  # noqa: BLE001 (one failed run must not stop the others)
        if isinstance(error, input_pipeline.DataError) or disk.fault_of(error):
            raise
        for run, run_dir in zip(together, dirs):
            os.makedirs(run_dir, exist_ok=True)
            run_log.write_json_atomically(os.path.join(run_dir, "final.json"), {
                "status": "failed", "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(), "config": run.config.to_dict()})
        return ["failed"] * len(together)


def _by_resume_step(workdir: str, runs: list[Run]) -> list[tuple[int, list[Run]]]:
    """The runs grouped by the step of their latest checkpoint (0: none), in order."""
    groups: dict[int, list[Run]] = {}
    for run in runs:
        groups.setdefault(checkpoint.latest_step(os.path.join(workdir, run.name)), []).append(run)
    return list(groups.items())


def _counts(workdir: str, runs: list[Run]) -> dict:
    statuses = [status_of(workdir, run) for run in runs]
    return {"done": statuses.count("done"),
            "failed": sum(s in ("failed", "diverged") for s in statuses),
            "left": sum(s not in FINISHED for s in statuses)}
