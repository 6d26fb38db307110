"""Sweeps: expansion, selection, fixed cost, seeds per program, failures, shards, locks,
resume after a kill, and the built-in experiments' dry runs."""

import json
import os
import signal
import subprocess
import sys

import pytest

from experiments import factorization, grid_reduction, paper_table3, quickstart, receptive_field
from inception_flax import cost, results, sweep
from tests.helpers import (ROOT, assert_trees_equal, env, fake_train, final_params,
                           needs_fashion_mnist, sweep_config, wait_for)


def test_product_zip_and_seeds():
    config = sweep_config(seeds=(0, 1), axes=[
        {"a": {}, "b": {"model.module_35": "fig5"}},
        {"x": {}, "y": {"label_smoothing": 0.0}, "z": {"model.module_17_n": 5}}],
        baseline="a+x")
    runs = sweep.expand(config)
    assert [r.name for r in runs[:3]] == ["a+x/seed0", "a+x/seed1", "a+y/seed0"]
    assert len(runs) == 2 * 3 * 2 and [r.index for r in runs] == list(range(12))
    b_z = [r for r in runs if r.variant == "b+z"][0].config
    assert b_z.model.module_35 == "fig5" and b_z.model.module_17_n == 5
    assert [r.config.seed for r in runs[:2]] == [0, 1]

    config.sweep.combine = "zip"
    with pytest.raises(ValueError, match="axes of one length"):
        sweep.expand(config)
    config.sweep.axes = [{"a": {}, "b": {"model.module_35": "fig5"}},
                         {"x": {}, "y": {"label_smoothing": 0.0}}]
    config.sweep.baseline = "a+x"
    assert sorted({r.variant for r in sweep.expand(config)}) == ["a+x", "b+y"]


def test_bad_sweeps_say_what_is_wrong():
    with pytest.raises(ValueError, match="names no config field"):
        sweep.expand(sweep_config(axes=[{"a": {"model.width": 2}}], baseline="a"))
    with pytest.raises(ValueError, match="is not a variant"):
        sweep.expand(sweep_config(baseline="nope"))
    with pytest.raises(ValueError, match="i/n"):
        sweep.shard_of([], "3/2")


def test_fixed_cost_matches_the_baseline():
    config = sweep_config(fixed_cost=True, baseline="base", axes=[{
        "base": {}, "full_7x7": {"model.module_17": "full"},
        "cheap_stem": {"model.stem": "7x7"}}])
    config.model.depth_multiplier = 0.5  # wide enough that min_depth floors no layer
    config.sweep.seeds = (0,)
    runs = sweep.expand(config)
    target = cost.cost(runs[0].model_config(), 75).total.macs
    for run in runs:
        assert abs(sweep.run_costs(run).macs - target) <= 0.01 * target
    assert runs[1].config.model.depth_multiplier < 0.5 < runs[2].config.model.depth_multiplier


def test_fixed_cost_exempt_keeps_a_variant_at_its_width():
    config = receptive_field.get_config()
    runs = {r.variant: r for r in sweep.expand(config)}
    target = sweep.run_costs(runs["rf299"]).macs
    assert runs["rf79"].config.model.depth_multiplier == config.model.depth_multiplier
    assert sweep.run_costs(runs["rf79"]).macs < 0.9 * target  # as built: cheaper
    assert abs(sweep.run_costs(runs["rf79_equal_cost"]).macs - target) <= 0.01 * target
    assert runs["rf151"].config.model.depth_multiplier == config.model.depth_multiplier
    with pytest.raises(ValueError, match="fixed_cost_exempt names 'rf80'"):
        config.sweep.fixed_cost_exempt = ("rf80",)
        sweep.expand(config)


def test_only_some_variants():
    config = factorization.get_config()
    config.sweep.only = "released, 35x35_*"
    runs = sweep.expand(config)
    assert sorted({r.variant for r in runs}) == ["35x35_fig4", "35x35_fig5", "released"]
    assert len(runs) == 9 and [r.index for r in runs] == list(range(9))
    assert "selected by sweep.only='released, 35x35_*': released, 35x35_fig4, 35x35_fig5" in \
        sweep.describe(config)
    listing, _ = sweep.dry_run(sweep.programs(runs, 1))
    assert "variants differ in: 35×35 modules (Mixed_5b-5d) on 7×7" in listing
    assert "7×7* / 3×3 / 1×1" in listing
    config.sweep.only = "35x35_fig6"
    with pytest.raises(ValueError, match="'35x35_fig6' matches no variant; variants: released"):
        sweep.expand(config)


def test_seeds_per_program_groups_a_variants_seeds_into_units_of_work():
    config = sweep_config(seeds=(0, 1, 2), seeds_per_program=2)
    units = sweep.programs(sweep.expand(config), sweep.seeds_per_program(config))
    assert [[r.name for r in unit] for unit in units] == [
        ["fig4/seed0", "fig4/seed1"], ["fig4/seed2"], ["fig5/seed0", "fig5/seed1"],
        ["fig5/seed2"]]
    # A unit is one unit of work for --shard, which takes consecutive units.
    assert [[r.name for r in u] for u in sweep.shard_of(units, "1/2")] == [
        ["fig5/seed0", "fig5/seed1"], ["fig5/seed2"]]
    listing, _ = sweep.dry_run(units)
    assert "trained together, one program each: fig4/seed 0, 1; fig4/seed 2; fig5/seed 0, 1" \
        in listing
    config.sweep.seeds_per_program = 0
    with pytest.raises(ValueError, match="seeds_per_program=0"):
        sweep.seeds_per_program(config)


def test_a_failure_leaves_the_others_and_is_marked(tmp_path, capsys):
    config = sweep_config(seeds=(0, 1))
    calls = []
    failed = sweep.run_sweep(config, str(tmp_path), train_fn=fake_train(calls, ["fig5/seed1"]))
    assert failed == 1 and len(calls) == 4
    final = json.load(open(tmp_path / "fig5" / "seed1" / "final.json"))
    assert final["status"] == "failed" and "injected failure" in final["error"]
    rows = {r["variant"]: r for r in results.write(str(tmp_path))}
    assert rows["fig5"]["status"] == "1 done, 1 failed"
    assert "1 failed" in (tmp_path / "results.md").read_text()
    # Finished runs (done or failed) are not run again; their records stay as they are.
    records = {p: p.read_text() for p in tmp_path.glob("*/seed*/final.json")}
    capsys.readouterr()
    again = []
    assert sweep.run_sweep(config, str(tmp_path), train_fn=fake_train(again)) == 1
    assert again == [] and "[1/4] fig4/seed0: done already, skipped" in capsys.readouterr().out
    assert {p: p.read_text() for p in tmp_path.glob("*/seed*/final.json")} == records


def test_a_slurm_array_task_is_its_shard(monkeypatch):
    # Two shards at once in two processes: tests/test_workers.py (`--workers 2`).
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    config = sweep_config(seeds=(0, 1, 2))
    assert [r.index for r in sweep.shard_of(sweep.expand(config), None)] == [3, 4, 5]
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")  # an array numbered 1, 2
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    assert [r.index for r in sweep.shard_of(sweep.expand(config), None)] == [3, 4, 5]


def test_every_run_is_checked_before_the_first_starts(tmp_path):
    config = sweep_config(seeds=(0,))
    config.sweep.axes = [{"good": {}, "bad": {"learning_rate": -1.0}}]
    config.sweep.baseline = "good"
    calls = []
    with pytest.raises(ValueError, match=r"learning_rate=-1.0 is out of range"):
        sweep.run_sweep(config, str(tmp_path / "sweep"), train_fn=fake_train(calls))
    assert calls == [] and not os.path.exists(tmp_path / "sweep")


EXPERIMENTS = [quickstart, factorization, grid_reduction, receptive_field, paper_table3]


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda m: m.__name__.split(".")[-1])
def test_dry_run_costs_agree_with_the_cost_cli(experiment, capsys):
    runs = sweep.expand(experiment.get_config())
    listing, _ = sweep.dry_run(sweep.programs(runs, 1))
    for run, line in zip(runs, listing.splitlines()[1:]):
        model = run.model_config()
        sets = [f"--set={field}={getattr(model, field)}" for field in (
            "num_classes", "depth_multiplier", "stem", "receptive_field", "module_35",
            "module_17", "module_17_n", "module_8", "factorization_activation",
            "grid_reduction", "aux_head", "min_depth")] + [
            f"--set=modules_per_grid={','.join(map(str, model.modules_per_grid))}"]
        assert cost.main(["--image-size", str(run.config.image_size), "--format", "json",
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


@needs_fashion_mnist
@pytest.mark.slow
def test_killed_grouped_sweep_resumes_every_seed_bit_for_bit(tmp_path):
    def command(workdir):
        return [sys.executable, os.path.join(ROOT, "run_experiment.py"), "--config",
                os.path.join(ROOT, "tests", "scripts", "tiny_sweep.py:grouped"), "--workdir",
                workdir]
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    result = subprocess.run(command(straight), env=env(), capture_output=True, text=True,
                            cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "relu/seed1: starting (one program with 1 other seed(s))" in result.stdout
    process = subprocess.Popen(command(resumed), env=env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    wait_for(process, "checkpoint saved at step 4")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    result = subprocess.run(command(resumed), env=env(), capture_output=True, text=True,
                            cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "relu/seed0: resuming at step 4" in result.stdout
    assert "seed 1: step 6/6" in result.stdout and "seed 1: step 2/6" not in result.stdout
    finals = {}
    for seed in (0, 1):
        run = f"relu/seed{seed}"
        assert_trees_equal(final_params(os.path.join(straight, run))[1],
                           final_params(os.path.join(resumed, run))[1], exact=True)
        finals[run] = [json.load(open(os.path.join(d, run, "final.json")))
                       for d in (straight, resumed)]
        for key in ("raw_top1", "ema_top1", "ema_top5", "step", "status"):
            assert finals[run][0][key] == finals[run][1][key], key
