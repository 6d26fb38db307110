"""Running a sweep's units: failures retried, divergences kept, runs made under another config
refused or set aside, damaged records, bad data and a full disk, an older code's workdir, and a
grouped sweep killed and resumed."""

import csv
import errno
import json
import os
import shutil
import sys

import numpy as np
import pytest

from experiments import quickstart
from inception_flax.run import input_pipeline
from inception_flax.sweeps import execute, tables
from tests.helpers import (ROOT, assert_trees_equal, fake_train, final_params,
                           needs_fashion_mnist, straight_and_killed, sweep_config)


def test_a_failure_leaves_the_others_is_marked_and_is_retried(tmp_path, capsys):
    config = sweep_config(seeds=(0, 1))
    calls = []
    failed = execute.run_sweep(config, str(tmp_path), train_fn=fake_train(calls, ["fig5/seed1"]))
    assert failed == 1 and len(calls) == 4
    final = json.load(open(tmp_path / "fig5" / "seed1" / "final.json"))
    assert final["status"] == "failed" and "injected failure" in final["error"]
    rows = {r["variant"]: r for r in tables.write(str(tmp_path))}
    assert rows["fig5"]["status"] == "1 done, 1 failed"
    assert "1 failed" in (tmp_path / "results.md").read_text()
    # Done runs are not run again and their records stay; the failed one is retried.
    records = {p: p.read_text() for p in tmp_path.glob("fig4/seed*/final.json")}
    capsys.readouterr()
    again = []
    assert execute.run_sweep(config, str(tmp_path), train_fn=fake_train(again)) == 0
    out = capsys.readouterr().out
    assert again == [str(tmp_path / "fig5" / "seed1")]
    assert "[1/4] fig4/seed0: done already, skipped" in out
    assert ("[4/4] fig5/seed1: failed before (RuntimeError: injected failure); retrying (that "
            "record is kept as final.failed.json)") in out
    assert {p: p.read_text() for p in tmp_path.glob("fig4/seed*/final.json")} == records
    assert json.load(open(tmp_path / "fig5" / "seed1" / "final.failed.json"))["status"] == "failed"
    assert tables.summarize(str(tmp_path))[1]["status"] == "2 done"


def test_a_diverged_run_stays_recorded_unless_asked(tmp_path, capsys):
    config = sweep_config(seeds=(0,))
    execute.run_sweep(config, str(tmp_path), train_fn=fake_train([]))
    path = tmp_path / "fig5" / "seed0" / "final.json"
    path.write_text(json.dumps(dict(json.load(open(path)), status="diverged",
                                    error="the loss became nan at step 3")))
    calls = []
    assert execute.run_sweep(config, str(tmp_path), train_fn=fake_train(calls)) == 1
    assert calls == [] and "fig5/seed0: diverged already, skipped" in capsys.readouterr().out
    assert execute.run_sweep(config, str(tmp_path), train_fn=fake_train(calls),
                           retry_diverged=True) == 0
    assert calls == [str(tmp_path / "fig5" / "seed0")]
    moved = [p for p in os.listdir(tmp_path / "fig5") if p.startswith("seed0.diverged-")]
    assert len(moved) == 1 and f"moved aside as {tmp_path}/fig5/{moved[0]}" in \
        capsys.readouterr().out


def test_a_finished_sweep_is_refused_under_another_config(tmp_path, capsys):
    config = sweep_config(seeds=(0, 1))
    execute.run_sweep(config, str(tmp_path), train_fn=fake_train([]))
    written = (tmp_path / "sweep.json").read_text()
    calls = []
    for field, value in (("global_batch_size", 32), ("learning_rate", 0.3)):
        changed = sweep_config(seeds=(0, 1))
        changed[field] = value
        with pytest.raises(ValueError) as refused:
            execute.run_sweep(changed, str(tmp_path), train_fn=fake_train(calls))
        assert str(refused.value) == (
            f"{tmp_path}/fig4/seed0 was made under another config (it differs in {field}) (and "
            "3 other run(s)); use another --workdir, the config they were made with, or "
            "--set_aside_stale to move them aside and train them afresh.")
    model = sweep_config(seeds=(0, 1))
    model.model.depth_multiplier = 0.25
    with pytest.raises(ValueError, match=r"differs in model.depth_multiplier\)"):
        execute.run_sweep(model, str(tmp_path), train_fn=fake_train(calls))
    assert calls == [] and (tmp_path / "sweep.json").read_text() == written  # nothing written
    # Bookkeeping fields leave the runs as they are.
    same = sweep_config(seeds=(0, 1))
    same.update(log_every_steps=5, eval_batch_size=50)
    assert execute.run_sweep(same, str(tmp_path), train_fn=fake_train(calls)) == 0
    assert calls == []
    # Asked to, the stale runs are moved aside and trained again; the table counts the new.
    changed = sweep_config(seeds=(0, 1))
    changed.learning_rate = 0.3
    capsys.readouterr()
    assert execute.run_sweep(changed, str(tmp_path), train_fn=fake_train(calls),
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
    assert execute.run_sweep(quickstart.get_config(), str(workdir),
                           train_fn=fake_train(calls)) == 0
    assert calls == [] and capsys.readouterr().out.count("done already, skipped") == 6
    tables.write(str(workdir))
    np.testing.assert_allclose(numbers(workdir / "results.csv"), committed, rtol=1e-12)
    changed = quickstart.get_config()
    changed.global_batch_size = 32
    with pytest.raises(ValueError, match=r"fig4/seed0 was made under another config \(it "
                                         r"differs in global_batch_size\) \(and 5 other"):
        execute.run_sweep(changed, str(workdir), train_fn=fake_train(calls))


def test_a_damaged_record_counts_as_unfinished(tmp_path, capsys):
    config = sweep_config(seeds=(0,))
    execute.run_sweep(config, str(tmp_path), train_fn=fake_train([]))
    (tmp_path / "fig4" / "seed0" / "final.json").write_text('{"status": "do')
    (tmp_path / "fig5" / "seed0" / "final.json").write_text("null")
    rows = tables.write(str(tmp_path))
    assert [r["status"] for r in rows] == ["1 not run", "1 not run"]
    assert capsys.readouterr().err.count("is damaged") == 2
    calls = []
    assert execute.run_sweep(config, str(tmp_path), train_fn=fake_train(calls)) == 0
    assert len(calls) == 2 and "set aside as final.json.damaged" in capsys.readouterr().err
    assert (tmp_path / "fig5" / "seed0" / "final.json.damaged").read_text() == "null"
    assert [r["status"] for r in tables.write(str(tmp_path))] == ["1 done", "1 done"]


def test_a_record_made_under_another_config_is_not_counted(tmp_path):
    config = sweep_config(seeds=(0, 1))
    execute.run_sweep(config, str(tmp_path), train_fn=fake_train([]))
    path = tmp_path / "fig5" / "seed1" / "final.json"
    record = json.load(open(path))
    record["config"]["num_epochs"] = 9.0  # e.g. copied in from another sweep
    path.write_text(json.dumps(record))
    assert [r["status"] for r in tables.write(str(tmp_path))] == ["2 done", "1 done, 1 stale"]


def test_bad_data_and_a_full_disk_stop_the_sweep_and_record_nothing(tmp_path):
    config = sweep_config(seeds=(0,))
    for error in (input_pipeline.DatasetDamaged("train-images-idx3-ubyte.gz is damaged"),
                  OSError(errno.ENOSPC, "No space left on device")):
        def broken(configs, workdirs, error=error):
            raise error
        with pytest.raises(type(error)):
            execute.run_sweep(config, str(tmp_path), train_fn=broken)
        assert not list(tmp_path.glob("*/seed0/final.json"))


def test_every_run_is_checked_before_the_first_starts(tmp_path):
    config = sweep_config(seeds=(0,))
    config.sweep.axes = [{"good": {}, "bad": {"learning_rate": -1.0}}]
    config.sweep.baseline = "good"
    calls = []
    with pytest.raises(ValueError, match=r"learning_rate=-1.0 is out of range"):
        execute.run_sweep(config, str(tmp_path / "sweep"), train_fn=fake_train(calls))
    assert calls == [] and not os.path.exists(tmp_path / "sweep")


@needs_fashion_mnist
@pytest.mark.slow
def test_killed_grouped_sweep_resumes_every_seed_bit_for_bit(tmp_path):
    def command(workdir):
        return [sys.executable, os.path.join(ROOT, "run_experiment.py"), "--config",
                os.path.join(ROOT, "tests", "scripts", "tiny_sweep.py:grouped"), "--workdir",
                workdir]
    straight, resumed, first, again = straight_and_killed(command, tmp_path,
                                                          "checkpoint saved at step 4")
    assert "relu/seed1: starting (one program with 1 other seed(s))" in first
    assert "relu/seed0: resuming at step 4" in again
    assert "seed 1: step 6/6" in again and "seed 1: step 2/6" not in again
    finals = {}
    for seed in (0, 1):
        run = f"relu/seed{seed}"
        assert_trees_equal(final_params(os.path.join(straight, run))[1],
                           final_params(os.path.join(resumed, run))[1], exact=True)
        finals[run] = [json.load(open(os.path.join(d, run, "final.json")))
                       for d in (straight, resumed)]
        for key in ("raw_top1", "ema_top1", "ema_top5", "step", "status"):
            assert finals[run][0][key] == finals[run][1][key], key
