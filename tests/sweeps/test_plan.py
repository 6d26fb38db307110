"""A sweep's plan: expansion, selection, fixed cost, seeds and seeds per program, shards, and
the built-in experiments' dry runs."""

import json

import pytest

from experiments import factorization, grid_reduction, paper_table3, quickstart, receptive_field
from inception_flax import cost as cost_cli
from inception_flax.model import cost
from inception_flax.sweeps import plan
from tests.helpers import (sweep_config)


def test_product_zip_and_seeds():
    config = sweep_config(seeds=(0, 1), axes=[
        {"a": {}, "b": {"model.module_35": "fig5"}},
        {"x": {}, "y": {"label_smoothing": 0.0}, "z": {"model.module_17_n": 5}}],
        baseline="a+x")
    runs = plan.expand(config)
    assert [r.name for r in runs[:3]] == ["a+x/seed0", "a+x/seed1", "a+y/seed0"]
    assert len(runs) == 2 * 3 * 2 and [r.index for r in runs] == list(range(12))
    b_z = [r for r in runs if r.variant == "b+z"][0].config
    assert b_z.model.module_35 == "fig5" and b_z.model.module_17_n == 5
    assert [r.config.seed for r in runs[:2]] == [0, 1]

    config.sweep.combine = "zip"
    with pytest.raises(ValueError, match="axes of one length"):
        plan.expand(config)
    config.sweep.axes = [{"a": {}, "b": {"model.module_35": "fig5"}},
                         {"x": {}, "y": {"label_smoothing": 0.0}}]
    config.sweep.baseline = "a+x"
    assert sorted({r.variant for r in plan.expand(config)}) == ["a+x", "b+y"]


def test_bad_sweeps_say_what_is_wrong():
    with pytest.raises(ValueError, match="names no config field"):
        plan.expand(sweep_config(axes=[{"a": {"model.width": 2}}], baseline="a"))
    with pytest.raises(ValueError, match="is not a variant"):
        plan.expand(sweep_config(baseline="nope"))
    with pytest.raises(ValueError, match="i/n"):
        plan.shard_of([], "3/2")
    for field, value in (("alpha", 2.0), ("alpha", 0.0), ("margin", -1.0),
                         ("margin", float("inf")), ("fixed_cost_tolerance", float("nan"))):
        with pytest.raises(ValueError, match=rf"sweep\.{field}=.* is out of range"):
            plan.expand(sweep_config(**{field: value}))


@pytest.mark.parametrize("name", ["sweep.json", "decisions.json.stale-1", "results.md",
                                  "jax_cache", "a\nb", "a\x00b", "", "x" * 300, "a/b", ".x", 7])
def test_a_name_no_run_directory_can_have_is_refused(name):
    with pytest.raises(ValueError) as raised:
        plan.expand(sweep_config(axes=[{"base": {}, name: {"label_smoothing": 0.0}}],
                                 baseline="base"))
    message = str(raised.value)
    assert repr(name) in message and "\n" not in message


def test_seed_counts_are_checked_whether_or_not_until_decided():
    with pytest.raises(ValueError, match="2 <= min_seeds <= max_seeds"):
        plan.expand(sweep_config(until_decided=False, min_seeds=5, max_seeds=3))


def test_fixed_cost_matches_the_baseline():
    config = sweep_config(fixed_cost=True, baseline="base", axes=[{
        "base": {}, "full_7x7": {"model.module_17": "full"},
        "cheap_stem": {"model.stem": "7x7"}}])
    config.model.depth_multiplier = 0.5  # wide enough that min_depth floors no layer
    config.sweep.seeds = (0,)
    runs = plan.expand(config)
    target = cost.cost(runs[0].model, 75).total.macs
    for run in runs:
        assert abs(plan.run_costs(run).macs - target) <= 0.01 * target
    assert runs[1].config.model.depth_multiplier < 0.5 < runs[2].config.model.depth_multiplier


def test_fixed_cost_exempt_keeps_a_variant_at_its_width():
    config = receptive_field.get_config()
    runs = {r.variant: r for r in plan.expand(config)}
    target = plan.run_costs(runs["rf299"]).macs
    assert runs["rf79"].config.model.depth_multiplier == config.model.depth_multiplier
    assert plan.run_costs(runs["rf79"]).macs < 0.9 * target  # as built: cheaper
    assert abs(plan.run_costs(runs["rf79_equal_cost"]).macs - target) <= 0.01 * target
    assert runs["rf151"].config.model.depth_multiplier == config.model.depth_multiplier
    with pytest.raises(ValueError, match="fixed_cost_exempt names 'rf80'"):
        config.sweep.fixed_cost_exempt = ("rf80",)
        plan.expand(config)


def test_only_some_variants():
    config = factorization.get_config()
    config.sweep.only = "released, 35x35_*"
    runs = plan.expand(config)
    assert sorted({r.variant for r in runs}) == ["35x35_fig4", "35x35_fig5", "released"]
    assert len(runs) == 9 and [r.index for r in runs] == list(range(9))
    assert "selected by sweep.only='released, 35x35_*': released, 35x35_fig4, 35x35_fig5" in \
        plan.describe(config)
    listing, _ = plan.dry_run(plan.groups(runs, 1))
    assert "variants differ in: 35×35 modules (Mixed_5b-5d) on 7×7" in listing
    assert "7×7* / 3×3 / 1×1" in listing
    config.sweep.only = "35x35_fig6"
    with pytest.raises(ValueError, match="'35x35_fig6' matches no variant; variants: released"):
        plan.expand(config)


def test_seeds_per_program_groups_a_variants_seeds_into_units_of_work():
    config = sweep_config(seeds=(0, 1, 2), seeds_per_program=2)
    units = plan.groups(plan.expand(config), plan.seeds_per_program(config))
    assert [[r.name for r in unit] for unit in units] == [
        ["fig4/seed0", "fig4/seed1"], ["fig4/seed2"], ["fig5/seed0", "fig5/seed1"],
        ["fig5/seed2"]]
    # A unit is one unit of work for --shard, which takes consecutive units.
    assert [[r.name for r in u] for u in plan.shard_of(units, "1/2")] == [
        ["fig5/seed0", "fig5/seed1"], ["fig5/seed2"]]
    listing, _ = plan.dry_run(units)
    assert "trained together, one program each: fig4/seed 0, 1; fig4/seed 2; fig5/seed 0, 1" \
        in listing
    config.sweep.seeds_per_program = 0
    with pytest.raises(ValueError, match="seeds_per_program=0"):
        plan.seeds_per_program(config)


def test_duplicate_seeds_and_variants_are_refused():
    with pytest.raises(ValueError, match=r"sweep.seeds=\(0, 0, 1\) lists seed\(s\) 0 more "
                                         r"than once; give each seed once"):
        plan.expand(sweep_config(seeds=(0, 0, 1)))
    with pytest.raises(ValueError, match="whole numbers >= 0"):
        plan.expand(sweep_config(seeds=(0, -1)))
    with pytest.raises(ValueError, match=r"must be distinct.*got 'a\+b\+c'"):
        plan.expand(sweep_config(axes=[{"a+b": {}, "a": {}}, {"c": {}, "b+c": {}}],
                                  baseline="a+c"))
    with pytest.raises(ValueError, match="without '/'"):
        plan.expand(sweep_config(axes=[{"a/b": {}}], baseline="a/b"))


def test_a_slurm_array_task_is_its_shard(monkeypatch):
    # Two shards at once in two processes: tests/sweeps/test_workers.py (`--workers 2`).
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    config = sweep_config(seeds=(0, 1, 2))
    assert [r.index for r in plan.shard_of(plan.expand(config), None)] == [3, 4, 5]
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")  # an array numbered 1, 2
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    assert [r.index for r in plan.shard_of(plan.expand(config), None)] == [3, 4, 5]


def dry_run_of(experiment, only):
    config = experiment.get_config()
    config.sweep.only, config.sweep.seeds = only, (0,)
    return plan.dry_run(plan.groups(plan.expand(config), 1))[0].splitlines()


def test_the_dry_run_names_every_difference_that_changes_the_function():
    # A ReLU removed between factorized convolutions: every part with a factorization.
    lines = dry_run_of(factorization, "released,linear_factorization")
    assert lines[-2] == (
        "variants differ in: 35×35 modules (Mixed_5b-5d) on 7×7; 35→17 reduction (Mixed_6a) on "
        "7×7; 17×17 modules (Mixed_6b-6e) on 3×3; 17→8 reduction (Mixed_7a) on 3×3  (* in the "
        "grid columns)")
    assert lines[-1] == 'variants\' configs differ in: model.factorization_activation ("relu", ' \
        '"linear")'
    # Batch norm in the auxiliary head's fully connected layer (a bias without it).
    assert dry_run_of(paper_table3, "+factorized_7x7,+bn_auxiliary")[-2:] == [
        "variants differ in: auxiliary head (AuxLogits) on 5×5",
        'variants\' configs differ in: model.aux_head ("plain", "bn")']
    # Rungs that differ in training fields only: the network is the same.
    for only, line in (("v2_basic,+rmsprop", 'optimizer ("momentum", "rmsprop")'),
                       ("+rmsprop,+label_smoothing", "label_smoothing (0.0, 0.1)")):
        lines = dry_run_of(paper_table3, only)
        assert lines[-1] == f"variants' configs differ in: {line}"
        assert not any(l.startswith("variants differ in") for l in lines)


EXPERIMENTS = [quickstart, factorization, grid_reduction, receptive_field, paper_table3]


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda m: m.__name__.split(".")[-1])
def test_dry_run_costs_agree_with_the_cost_cli(experiment, capsys):
    runs = plan.expand(experiment.get_config())
    listing, _ = plan.dry_run(plan.groups(runs, 1))
    for run, line in zip(runs, listing.splitlines()[1:]):
        model = run.model
        sets = [f"--set={field}={getattr(model, field)}" for field in (
            "num_classes", "depth_multiplier", "stem", "receptive_field", "module_35",
            "module_17", "module_17_n", "module_8", "factorization_activation",
            "grid_reduction", "aux_head", "min_depth")] + [
            f"--set=modules_per_grid={','.join(map(str, model.modules_per_grid))}"]
        assert cost_cli.main(["--image-size", str(run.config.image_size), "--format", "json",
                          *sets]) == 0
        printed = json.loads(capsys.readouterr().out)
        total = printed["total"]
        name, width, params, macs, image, *grids = line.split()
        assert name == run.name and float(width) == pytest.approx(model.depth_multiplier, 1e-3)
        assert int(macs.replace(",", "")) == total["macs"]
        assert int(params.replace(",", "")) == total["params"]
        assert int(image) == run.config.image_size
        # The grid of each stage of modules, as the cost JSON gives it.
        assert [g.rstrip("*") for g in grids if g != "/"] == [
            f"{h}×{w}" for h, w in printed["module_grids"].values()]


def test_imagenet_flag_switches_the_data():
    config = factorization.get_config("imagenet")
    assert config.dataset == "imagenet2012" and config.image_size == 299
    with pytest.raises(ValueError, match="imagenet"):
        factorization.get_config("cifar")


