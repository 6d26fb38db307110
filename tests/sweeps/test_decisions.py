"""Decisions that follow the records (`sweeps/decisions.py`): made again from the runs' records
by the sweep command and the results command alike, `decisions.json` checked against them; a
hand edit, a damaged or lost log, stale runs never change a verdict."""

import glob
import json
import os

import pytest

from inception_flax import results
from inception_flax.sweeps import command, execute, tables
from tests.helpers import hold, kill, needs_fashion_mnist, staged_config, stand_in

pytestmark = needs_fashion_mnist  # the sweep command checks the data of the runs left


@pytest.fixture
def finished(tmp_path):
    """A sweep run until decided to its end (made-up records: far worse at an early look,
    near equivalent later), its table and its log."""
    workdir = str(tmp_path / "sweep")
    execute.run_sweep(staged_config(), workdir, train_fn=stand_in([]))
    tables.write(workdir)
    return workdir, read(workdir, "results.md"), read(workdir, "decisions.json")


def read(workdir, name):
    return open(os.path.join(workdir, name)).read()


def edit(workdir, change):
    path = os.path.join(workdir, "decisions.json")
    log = json.load(open(path))
    change(log)
    json.dump(log, open(path, "w"))


def both_commands(workdir, capsys, **flags):
    """(exit code, stderr) of the results command and of the sweep command."""
    said = []
    argv = ["--workdir", workdir] + [f"--{k}" for k, v in flags.items() if v]
    said.append((results.main(argv), capsys.readouterr().err))
    said.append((command.main(staged_config(), command.Flags(workdir, **flags)),
                 capsys.readouterr().err))
    return said


def test_a_verdict_edited_by_hand_is_refused_by_both_commands_until_rebuilt(finished, capsys):
    workdir, table, log = finished
    look = json.loads(log)["variants"]["near"]["look"]
    edit(workdir, lambda d: d["variants"]["near"].update(verdict="better"))
    for code, err in both_commands(workdir, capsys):
        assert code == 2 and err.count("\n") == 1, err
        assert (f"disagrees with the records: at look {look + 1} near is 'better' in the log "
                "and 'equivalent' from the records") in err
        assert "--rebuild_decisions" in err
    assert read(workdir, "results.md") == table  # the tables were not written again
    assert results.main(["--workdir", workdir, "--rebuild_decisions"]) == 0
    err = capsys.readouterr().err
    assert f"decisions.json rebuilt: at look {look + 1} near is 'better' in the log" in err
    assert read(workdir, "results.md") == table and read(workdir, "decisions.json") == log


def test_a_lost_log_is_rebuilt_from_the_records_and_said(finished, capsys):
    workdir, table, log = finished
    os.remove(os.path.join(workdir, "decisions.json"))
    assert results.main(["--workdir", workdir]) == 0
    assert "decisions.json was missing: rebuilt from the records (" in capsys.readouterr().err
    assert read(workdir, "results.md") == table and read(workdir, "decisions.json") == log


@pytest.mark.parametrize("damage", ['{"design": {', "null", "[]", "{}", '{"last_look": 0}'])
def test_a_damaged_log_is_one_sentence_with_the_way_out_in_both_commands(finished, capsys,
                                                                         damage):
    workdir, table, log = finished
    open(os.path.join(workdir, "decisions.json"), "w").write(damage)
    for code, err in both_commands(workdir, capsys):
        assert code == 2 and err.count("\n") == 1, err
        assert "decisions.json is damaged (" in err and "--rebuild_decisions" in err
        assert "changes its" not in err
    assert command.main(staged_config(), command.Flags(workdir, rebuild_decisions=True)) == 0
    assert "decisions.json was damaged: written anew from the records" in \
        capsys.readouterr().err
    assert read(workdir, "results.md") == table and read(workdir, "decisions.json") == log


def test_stale_runs_take_the_decisions_made_from_them_along(finished, capsys):
    """The finished sweep again with another learning rate: refused naming the field; with
    --set_aside_stale the stale runs and the log go aside, the looks start again from the
    first with the runs trained anew, and no verdict of a stale run is shown."""
    workdir, _, _ = finished
    changed = staged_config()
    changed.learning_rate = 0.07  # "far" keeps its own 0.1: not stale
    with pytest.raises(ValueError, match="learning_rate"):
        execute.run_sweep(changed, workdir, train_fn=stand_in([]))
    calls = []
    execute.run_sweep(changed, workdir, train_fn=stand_in(calls), set_aside_stale=True)
    assert "base/seed0" in calls and "near/seed0" in calls and "far/seed0" not in calls
    assert len(glob.glob(os.path.join(workdir, "decisions.json.stale-*"))) == 1
    rows = {r["variant"]: r for r in tables.write(workdir)}
    assert all("stale" not in r["status"] for r in rows.values())
    log = json.load(open(os.path.join(workdir, "decisions.json")))
    assert log["variants"]["near"]["verdict"] == rows["near"]["comparison"]["verdict"]


def test_a_record_changed_under_the_log_is_not_counted(finished, capsys):
    """A record of a look rewritten under another config (as a stale run would be): the
    results command refuses the log; rebuilt, the look is not made and the table says so."""
    workdir, _, _ = finished
    path = os.path.join(workdir, "base", "seed0", "final.json")
    record = json.load(open(path))
    record["config"]["learning_rate"] = 0.07
    json.dump(record, open(path, "w"))
    assert results.main(["--workdir", workdir]) == 2
    assert "'not decided' from the records" in capsys.readouterr().err
    assert results.main(["--workdir", workdir, "--rebuild_decisions"]) == 0
    markdown = read(workdir, "results.md")
    assert "undecided, no look yet" in markdown and "1 stale" in markdown


def test_no_margin_runs_until_decided_without_equivalence(tmp_path):
    workdir = str(tmp_path)
    execute.run_sweep(staged_config(margin=None), workdir, train_fn=stand_in([]))
    verdicts = {v: d["verdict"] for v, d in json.load(
        open(os.path.join(workdir, "decisions.json")))["variants"].items()}
    assert verdicts["far"] == "worse" and verdicts["near"] in ("undecided", "better", "worse")
    assert json.load(open(os.path.join(workdir, "decisions.json")))["design"]["margin"] is None


def test_a_run_in_training_is_shown_as_training(tmp_path):
    workdir = str(tmp_path)
    execute.run_sweep(staged_config(), workdir, train_fn=stand_in([]), shard="0/2")
    holder = hold(os.path.join(workdir, "near", "seed2"))
    try:
        rows = {r["variant"]: r for r in tables.write(workdir)}
    finally:
        kill(holder)
    assert "1 training" in rows["near"]["status"]
    rows = {r["variant"]: r for r in tables.write(workdir)}
    assert "training" not in rows["near"]["status"]  # its holder gone

