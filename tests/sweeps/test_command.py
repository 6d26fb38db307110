"""The sweep command (`sweeps/command.py`): its data checked before anything is written, and
`--workers` deciding between stages as one process does."""

import json
import os

from inception_flax.sweeps import command, execute, plan
from inception_flax.utils import cli
from tests.helpers import fake_train, made_up_error, staged_config, sweep_config


def test_a_sweep_whose_data_is_missing_writes_nothing(tmp_path, capsys):
    config = sweep_config(seeds=(0, 1))
    config.data_dir = str(tmp_path / "empty")
    os.makedirs(config.data_dir)
    for workers in (1, 2):
        workdir = str(tmp_path / f"sweep{workers}")
        code = command.main(config, command.Flags(workdir=workdir, workers=workers))
        err = capsys.readouterr().err
        assert code == cli.EXIT_BAD_INPUT and err.count("\n") == 1
        assert err.startswith(f"error: Fashion-MNIST is not at {config.data_dir} (missing ")
        assert not os.path.exists(workdir)
    # A finished sweep needs no data to write its tables again.
    workdir, calls = str(tmp_path / "finished"), []
    config.data_dir = ""
    assert execute.run_sweep(config, workdir, train_fn=fake_train(calls)) == 0
    config.data_dir = str(tmp_path / "empty")  # bookkeeping: the same runs
    assert command.main(config, command.Flags(workdir=workdir)) == 0
    assert "| fig5 (b) |" in capsys.readouterr().out


def test_with_workers_a_diverged_run_leaves_the_stages_going(tmp_path, monkeypatch):
    """As in one process (`stages.run`), a diverged run is recorded and the next stages run;
    the command exits 1 at the end."""
    config, workdir, stages_run = staged_config(), str(tmp_path), []

    def stand_in_workers(count, argv, work_file):
        units, _, _ = execute.take_part(work_file, "0/1")
        stages_run.append([run.name for unit in units for run in unit])
        code = 0
        for run in (run for unit in units for run in unit):
            diverged = run.name == "near/seed0"
            code = max(code, cli.EXIT_FAILED * diverged)
            record = {"status": "diverged" if diverged else "done",
                      "ema_top1": 1 - made_up_error(run.variant, run.seed) / 100,
                      "ema_top5": 0.99, "params": 1, "macs": 1, "images_per_s": 1.0,
                      "config": run.config.to_dict()}
            os.makedirs(os.path.join(workdir, run.name), exist_ok=True)
            with open(os.path.join(workdir, run.name, "final.json"), "w") as f:
                json.dump(record, f)
        return code

    monkeypatch.setattr(command.workers, "run", stand_in_workers)
    code = command.with_workers(config, command.Flags(workdir=workdir, workers=2),
                                plan.expand(config), 2)
    assert code == cli.EXIT_FAILED  # a run diverged
    assert "near/seed0" in stages_run[0] and len(stages_run) > 1
    decisions = json.load(open(os.path.join(workdir, "decisions.json")))
    assert decisions["last_look"] >= 1
    assert all(v["final"] for v in decisions["variants"].values())


def test_a_workdir_or_variant_name_that_cannot_be_a_path_writes_nothing(tmp_path, capsys):
    for workdir, config, said in (
            (str(tmp_path / ("w" * 300)), sweep_config(), "give a shorter one"),
            (str(tmp_path / "sweep"), sweep_config(axes=[{"fig4": {}, "sweep.json": {}}]),
             "'sweep.json'")):
        code = command.main(config, command.Flags(workdir=workdir))
        err = capsys.readouterr().err
        assert code == cli.EXIT_BAD_INPUT and err.count("\n") == 1 and said in err, err
        assert os.listdir(tmp_path) == []
