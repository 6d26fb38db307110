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
import itertools
import json
import os

import ml_collections

from inception_flax.model import cost
from inception_flax.model.architecture import InceptionConfig
from inception_flax.run import run_dir
from inception_flax.run.settings import (RANGES, Settings, check_ranges, resolve, validate,
                                         with_data_classes)
from inception_flax.sweeps import workers
from inception_flax.utils import files

@dataclasses.dataclass
class Run:
    """One run of a sweep: its variant, seed and validated `Settings` (the config with every
    model field set, and its `InceptionConfig`), which travel with it to the trainer."""

    variant: str
    seed: int
    settings: Settings
    index: int

    @property
    def name(self) -> str:
        return f"{self.variant}/seed{self.seed}"

    @property
    def config(self) -> ml_collections.ConfigDict:
        return self.settings.config

    @property
    def model(self) -> InceptionConfig:
        return self.settings.model


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
    strange = [name for axis in axes for name, _ in axis if not isinstance(name, str)]
    if strange:
        raise ValueError(f"sweep variant names must be strings; got {strange[0]!r} "
                         f"({type(strange[0]).__name__}) in sweep.axes.")
    result = []
    for combo in combos:
        overrides = {}
        for _, axis_overrides in combo:
            overrides.update(dict(axis_overrides))
        result.append(("+".join(name for name, _ in combo), overrides))
    names = [name for name, _ in result]
    repeated = sorted({name for name in names if names.count(name) > 1})
    bad = [name for name in names if not usable_name(name)]
    if repeated or bad:
        raise ValueError(f"sweep variant names must be distinct, non-empty, of printable "
                         f"characters without '/', not starting with '.', not a file the sweep "
                         f"writes ({', '.join(SWEEP_FILES)}) and at most {NAME_BYTES} bytes; "
                         f"got {', '.join(map(repr, repeated + bad))} (a run's directory is "
                         "named by its variant; the names of several axes are joined with "
                         "'+').")
    return result


# What a sweep writes at the top of its workdir (tables, plots, plan, decisions, the
# compilation cache): no variant, whose runs' directories are named by it, may take a name.
SWEEP_FILES = ("sweep.json", "decisions.json", "results.md", "results.tex", "results.csv",
               "forest.png", "accuracy_vs_macs.png", "training_curves.png", "jax_cache")
NAME_BYTES = 255  # a file name's length on common file systems (checked on the real one too)


def usable_name(name) -> bool:
    """Whether `name` can name a run's directory (see `variants`)."""
    return (isinstance(name, str) and bool(name) and name.isprintable() and "/" not in name
            and os.sep not in name and not name.startswith(".")
            and not any(name == f or name.startswith(f + ".") for f in SWEEP_FILES)
            and len(os.fsencode(name)) <= NAME_BYTES)


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


def recorded_classes(workdir: str) -> dict:
    """{dataset: model.num_classes} the finished runs of the sweep in `workdir` recorded (for
    a data-dependent class count when the data is not there: `settings.with_data_classes`)."""
    try:
        plan = run_dir.read_json(os.path.join(workdir, "sweep.json"))
    except (run_dir.Damaged, OSError):
        plan = None  # the command says so where it reads it
    found = {}
    for run in (plan or {}).get("runs", []):
        final = run_dir.read_final(os.path.join(workdir, run["dir"]), warn=False) or {}
        config = final.get("config") if isinstance(final.get("config"), dict) else {}
        if config.get("dataset") and (config.get("model") or {}).get("num_classes"):
            found.setdefault(config["dataset"], config["model"]["num_classes"])
    return found


def expand(config: ml_collections.ConfigDict, data: bool = True,
           recorded: dict | None = None) -> list[Run]:
    """The runs of the selected variants (`sweep.only`), in a fixed order (variants, then
    seeds), each variant validated once (`settings.validate`: a ValueError says what is
    wrong) before any run starts. With `fixed_cost`, each variant's width is solved to the
    baseline's multiply-adds, except for the variants in `fixed_cost_exempt`. A
    `model.num_classes` left None is the data's (`settings.with_data_classes`; not `data`: a
    dry run, which reads no data where it cannot; `recorded`: what a finished sweep's runs
    recorded, for data no longer there)."""
    sweep, named = config.sweep, variants(config)
    names, chosen = [name for name, _ in named], selected(config)
    baseline_of(config)  # a ValueError where it names no variant
    check_ranges(config, [f for f in RANGES if f.startswith("sweep.")])  # alpha, margin...
    from inception_flax.sweeps import sequential
    for field, choices in (("spending", sequential.SPENDINGS),
                           ("boundaries", sequential.BOUNDARIES),
                           ("population", sequential.POPULATIONS)):
        if field in sweep and sweep[field] not in choices:
            raise ValueError(f"sweep.{field}={sweep[field]!r} is not valid; choose "
                             f"{' or '.join(map(repr, choices))}.")
    if all(k in sweep for k in ("min_seeds", "max_seeds", "seeds_per_stage")):
        # Checked whether or not until_decided is on: a design that cannot run is a mistake.
        sequential.looks(sweep.min_seeds, sweep.max_seeds, sweep.seeds_per_stage)
    for name in sweep.get("fixed_cost_exempt") or ():
        if name not in names:
            raise ValueError(f"sweep.fixed_cost_exempt names {name!r}, which is not a variant; "
                             f"variants: {', '.join(names)}.")
    base = copy.deepcopy(config)
    with base.unlocked():
        del base["sweep"]
    variant_configs = {}
    for name, overrides in named:
        variant = copy.deepcopy(base)
        apply_overrides(variant, overrides)
        variant_configs[name] = with_data_classes(variant, data, recorded)  # its own data's
    solved = fixed_cost_widths(config, variant_configs) if sweep.fixed_cost else {}
    seeds, runs = distinct_seeds(sweep.seeds), []
    for name in chosen:
        variant = variant_configs[name]
        if name in solved:
            variant.model.depth_multiplier = solved[name]
        checked = validate(variant, data)
        for seed in seeds:
            seeded = copy.deepcopy(checked.config)
            seeded.seed = int(seed)
            runs.append(Run(name, int(seed), Settings(seeded, checked.model), len(runs)))
    return runs


def fixed_cost_widths(config: ml_collections.ConfigDict, variant_configs: dict) -> dict:
    """{variant: the depth_multiplier whose multiply-adds match the baseline's} for every
    selected variant not in `fixed_cost_exempt`."""
    exempt, chosen = tuple(config.sweep.get("fixed_cost_exempt") or ()), selected(config)
    target = resolve(variant_configs[baseline_of(config)])
    target_macs = cost.cost(target.model, target.config.image_size).total.macs
    widths = {}
    for name, variant in variant_configs.items():
        if name in exempt or name not in chosen:
            continue
        model = resolve(variant).model
        widths[name] = float(round(cost.solve_depth_multiplier(
            model, variant.image_size, target_macs,
            config.sweep.fixed_cost_tolerance).depth_multiplier, 6))
    return widths


def distinct_seeds(seeds) -> list[int]:
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


def seeds_per_program(config: ml_collections.ConfigDict) -> int:
    k = config.sweep.get("seeds_per_program", 1)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"sweep.seeds_per_program={k!r} is not valid; use a whole number "
                         ">= 1 (1: each seed alone).")
    return k


def groups(runs: list[Run], size: int) -> list[list[Run]]:
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
    shard = shard or workers.slurm_shard()
    if shard is None:
        return units
    try:
        index, count = (int(part) for part in shard.split("/"))
        assert 0 <= index < count
    except (ValueError, AssertionError):
        raise ValueError(f"--shard {shard!r} is not i/n with 0 <= i < n (e.g. 0/4).") from None
    return workers.part(units, index, count)


def run_costs(run: Run):
    return cost.cost(run.model, run.config.image_size).total


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
        from inception_flax.sweeps import sequential
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
    reports = {run.variant: cost.cost(run.model, run.config.image_size)
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
        lines.append(f"{run.name:<34} {run.model.depth_multiplier:>8.4g} "
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
    files.write_json_atomically(os.path.join(workdir, "sweep.json"), plan)
