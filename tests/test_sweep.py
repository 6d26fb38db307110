"""Sweeps: expansion, selection, fixed cost, seeds per program, failures, shards, locks,
resume after a kill, and the built-in experiments' dry runs."""

import csv
import errno
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from experiments import factorization, grid_reduction, paper_table3, quickstart, receptive_field
from inception_flax import cli, cost, input_pipeline, results, sweep
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


def test_a_failure_leaves_the_others_is_marked_and_is_retried(tmp_path, capsys):
    config = sweep_config(seeds=(0, 1))
    calls = []
    failed = sweep.run_sweep(config, str(tmp_path), train_fn=fake_train(calls, ["fig5/seed1"]))
    assert failed == 1 and len(calls) == 4
    final = json.load(open(tmp_path / "fig5" / "seed1" / "final.json"))
    assert final["status"] == "failed" and "injected failure" in final["error"]
    rows = {r["variant"]: r for r in results.write(str(tmp_path))}
    assert rows["fig5"]["status"] == "1 done, 1 failed"
    assert "1 failed" in (tmp_path / "results.md").read_text()
    # Done runs are not run again and their records stay; the failed one is retried.
    records = {p: p.read_text() for p in tmp_path.glob("fig4/seed*/final.json")}
    capsys.readouterr()
    again = []
    assert sweep.run_sweep(config, str(tmp_path), train_fn=fake_train(again)) == 0
    out = capsys.readouterr().out
    assert again == [str(tmp_path / "fig5" / "seed1")]
    assert "[1/4] fig4/seed0: done already, skipped" in out
    assert ("[4/4] fig5/seed1: failed before (RuntimeError: injected failure); retrying (that "
            "record is kept as final.failed.json)") in out
    assert {p: p.read_text() for p in tmp_path.glob("fig4/seed*/final.json")} == records
    assert json.load(open(tmp_path / "fig5" / "seed1" / "final.failed.json"))["status"] == "failed"
    assert results.summarize(str(tmp_path))[1]["status"] == "2 done"


def test_a_diverged_run_stays_recorded_unless_asked(tmp_path, capsys):
    config = sweep_config(seeds=(0,))
    sweep.run_sweep(config, str(tmp_path), train_fn=fake_train([]))
    path = tmp_path / "fig5" / "seed0" / "final.json"
    path.write_text(json.dumps(dict(json.load(open(path)), status="diverged",
                                    error="the loss became nan at step 3")))
    calls = []
    assert sweep.run_sweep(config, str(tmp_path), train_fn=fake_train(calls)) == 1
    assert calls == [] and "fig5/seed0: diverged already, skipped" in capsys.readouterr().out
    assert sweep.run_sweep(config, str(tmp_path), train_fn=fake_train(calls),
                           retry_diverged=True) == 0
    assert calls == [str(tmp_path / "fig5" / "seed0")]
    moved = [p for p in os.listdir(tmp_path / "fig5") if p.startswith("seed0.diverged-")]
    assert len(moved) == 1 and f"moved aside as {tmp_path}/fig5/{moved[0]}" in \
        capsys.readouterr().out


def test_a_finished_sweep_is_refused_under_another_config(tmp_path, capsys):
    config = sweep_config(seeds=(0, 1))
    sweep.run_sweep(config, str(tmp_path), train_fn=fake_train([]))
    plan = (tmp_path / "sweep.json").read_text()
    calls = []
    for field, value in (("global_batch_size", 32), ("learning_rate", 0.3)):
        changed = sweep_config(seeds=(0, 1))
        changed[field] = value
        with pytest.raises(ValueError) as refused:
            sweep.run_sweep(changed, str(tmp_path), train_fn=fake_train(calls))
        assert str(refused.value) == (
            f"{tmp_path}/fig4/seed0 was made under another config (it differs in {field}) (and "
            "3 other run(s)); use another --workdir, the config they were made with, or "
            "--set_aside_stale to move them aside and train them afresh.")
    model = sweep_config(seeds=(0, 1))
    model.model.depth_multiplier = 0.25
    with pytest.raises(ValueError, match=r"differs in model.depth_multiplier\)"):
        sweep.run_sweep(model, str(tmp_path), train_fn=fake_train(calls))
    assert calls == [] and (tmp_path / "sweep.json").read_text() == plan  # nothing written
    # Bookkeeping fields leave the runs as they are.
    same = sweep_config(seeds=(0, 1))
    same.update(log_every_steps=5, eval_batch_size=50)
    assert sweep.run_sweep(same, str(tmp_path), train_fn=fake_train(calls)) == 0
    assert calls == []
    # Asked to, the stale runs are moved aside and trained again; the table counts the new.
    changed = sweep_config(seeds=(0, 1))
    changed.learning_rate = 0.3
    capsys.readouterr()
    assert sweep.run_sweep(changed, str(tmp_path), train_fn=fake_train(calls),
                           set_aside_stale=True) == 0
    assert len(calls) == 4 and "moved aside as" in capsys.readouterr().out
    assert len(list(tmp_path.glob("fig4/seed0.stale-*"))) == 1
    for final in tmp_path.glob("*/seed?/final.json"):
        assert json.load(open(final))["config"]["learning_rate"] == 0.3


def test_a_workdir_of_the_code_before_is_accepted_where_its_config_is_the_same(tmp_path,
                                                                                capsys):
    """The committed quickstart (made before the rule, 2026-11-28): every run is its config's
    run, and the tables are the committed ones."""
    workdir = tmp_path / "quickstart"
    shutil.copytree(os.path.join(ROOT, "experiments", "results", "quickstart",
                                 "2026-11-28_zen3"), workdir,
                    ignore=shutil.ignore_patterns("one_process"))
    columns = ("top1_err_mean", "top1_err_std", "n")

    def numbers(path):
        return [[float(r[c]) for c in columns] for r in csv.DictReader(open(path))]
    committed = numbers(workdir / "results.csv")
    calls = []
    assert sweep.run_sweep(quickstart.get_config(), str(workdir),
                           train_fn=fake_train(calls)) == 0
    assert calls == [] and capsys.readouterr().out.count("done already, skipped") == 6
    results.write(str(workdir))
    np.testing.assert_allclose(numbers(workdir / "results.csv"), committed, rtol=1e-12)
    changed = quickstart.get_config()
    changed.global_batch_size = 32
    with pytest.raises(ValueError, match=r"fig4/seed0 was made under another config \(it "
                                         r"differs in global_batch_size\) \(and 5 other"):
        sweep.run_sweep(changed, str(workdir), train_fn=fake_train(calls))


def test_a_damaged_record_counts_as_unfinished(tmp_path, capsys):
    config = sweep_config(seeds=(0,))
    sweep.run_sweep(config, str(tmp_path), train_fn=fake_train([]))
    (tmp_path / "fig4" / "seed0" / "final.json").write_text('{"status": "do')
    (tmp_path / "fig5" / "seed0" / "final.json").write_text("null")
    rows = results.write(str(tmp_path))
    assert [r["status"] for r in rows] == ["1 not run", "1 not run"]
    assert capsys.readouterr().err.count("is damaged") == 2
    calls = []
    assert sweep.run_sweep(config, str(tmp_path), train_fn=fake_train(calls)) == 0
    assert len(calls) == 2 and "set aside as final.json.damaged" in capsys.readouterr().err
    assert (tmp_path / "fig5" / "seed0" / "final.json.damaged").read_text() == "null"
    assert [r["status"] for r in results.write(str(tmp_path))] == ["1 done", "1 done"]


def test_a_record_made_under_another_config_is_not_counted(tmp_path):
    config = sweep_config(seeds=(0, 1))
    sweep.run_sweep(config, str(tmp_path), train_fn=fake_train([]))
    path = tmp_path / "fig5" / "seed1" / "final.json"
    record = json.load(open(path))
    record["config"]["num_epochs"] = 9.0  # e.g. copied in from another sweep
    path.write_text(json.dumps(record))
    assert [r["status"] for r in results.write(str(tmp_path))] == ["2 done", "1 done, 1 stale"]


def test_bad_data_and_a_full_disk_stop_the_sweep_and_record_nothing(tmp_path):
    config = sweep_config(seeds=(0,))
    for error in (input_pipeline.DatasetDamaged("train-images-idx3-ubyte.gz is damaged"),
                  OSError(errno.ENOSPC, "No space left on device")):
        def broken(configs, workdirs, error=error):
            raise error
        with pytest.raises(type(error)):
            sweep.run_sweep(config, str(tmp_path), train_fn=broken)
        assert not list(tmp_path.glob("*/seed0/final.json"))


def test_duplicate_seeds_and_variants_are_refused():
    with pytest.raises(ValueError, match=r"sweep.seeds=\(0, 0, 1\) lists seed\(s\) 0 more "
                                         r"than once; give each seed once"):
        sweep.expand(sweep_config(seeds=(0, 0, 1)))
    with pytest.raises(ValueError, match="whole numbers >= 0"):
        sweep.expand(sweep_config(seeds=(0, -1)))
    with pytest.raises(ValueError, match=r"must be distinct.*got 'a\+b\+c'"):
        sweep.expand(sweep_config(axes=[{"a+b": {}, "a": {}}, {"c": {}, "b+c": {}}],
                                  baseline="a+c"))
    with pytest.raises(ValueError, match="without '/'"):
        sweep.expand(sweep_config(axes=[{"a/b": {}}], baseline="a/b"))


def test_a_repeated_config_flag_is_replaced_not_appended():
    argv = ["run_experiment.py", "--config", "q.py", "--config.sweep.seeds=(0,1)", "--workdir",
            "w", "--config.sweep.seeds", "(0,)", "--config.seed=3", "--config.seed", "-1"]
    assert cli.last_wins(argv, "--config.") == [
        "run_experiment.py", "--config", "q.py", "--workdir", "w", "--config.sweep.seeds",
        "(0,)", "--config.seed", "-1"]


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


def dry_run_of(experiment, only):
    config = experiment.get_config()
    config.sweep.only, config.sweep.seeds = only, (0,)
    return sweep.dry_run(sweep.programs(sweep.expand(config), 1))[0].splitlines()


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
