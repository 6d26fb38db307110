"""A sweep run until decided: stage after stage, decisions frozen, the design fixed at the first
look, and the same decisions and seeds after a kill, in one process or as shards."""

import json
import os
import sys

import numpy as np
import pytest

from inception_flax.sweeps import execute, plan, stages, tables
from tests.helpers import (ROOT, hold, kill, needs_fashion_mnist, staged_config,
                           stand_in, straight_and_killed, sweep_config)

def test_stages_stop_a_variant_once_decided_and_the_table_says_so(tmp_path, capsys):
    calls = []
    assert execute.run_sweep(staged_config(), str(tmp_path), train_fn=stand_in(calls)) == 0
    decisions = json.load(open(tmp_path / "decisions.json"))
    far, near = decisions["variants"]["far"], decisions["variants"]["near"]
    assert far["verdict"] == "worse" and near["verdict"] == "equivalent"
    assert far["seeds"] < near["seeds"] <= 9 and far["final"] and near["final"]
    # Only the undecided and the baseline got more seeds; every run trained once.
    assert sorted(calls) == sorted({c for c in calls})
    assert [c for c in calls if c.startswith("far/")] == [f"far/seed{s}"
                                                          for s in range(far["seeds"])]
    assert len([c for c in calls if c.startswith("base/")]) == near["seeds"]
    out = capsys.readouterr().out
    assert "until decided: look 1 of 4 at 3 seeds" in out
    rows = {r["variant"]: r for r in tables.write(str(tmp_path))}
    assert rows["far"]["comparison"]["verdict"] == "worse"
    assert rows["far"]["comparison"]["n"] == (far["seeds"],)
    assert rows["near"]["comparison"]["look"] == near["look"]
    markdown = (tmp_path / "results.md").read_text()
    assert f"worse, look {far['look'] + 1} ({far['seeds']} seeds)" in markdown
    assert "until decided, looks at 3, 5, 7, 9 seeds" in markdown
    # The plan holds what was scheduled: far stopped, the baseline went on with near.
    planned = json.load(open(tmp_path / "sweep.json"))["runs"]
    assert len([r for r in planned if r["variant"] == "far"]) == far["seeds"]
    # Starting again trains nothing and decides the same.
    again = []
    assert execute.run_sweep(staged_config(), str(tmp_path), train_fn=stand_in(again)) == 0
    assert again == [] and json.load(open(tmp_path / "decisions.json")) == decisions


def test_a_kill_between_or_within_stages_reaches_the_same_decisions_and_seeds(tmp_path):
    straight = []
    execute.run_sweep(staged_config(), str(tmp_path / "straight"), train_fn=stand_in(straight))
    expected = json.load(open(tmp_path / "straight" / "decisions.json"))
    for stop_at in (9, 11):  # between the first two stages, and within the second
        workdir, calls = str(tmp_path / f"killed{stop_at}"), []
        with pytest.raises(KeyboardInterrupt):
            execute.run_sweep(staged_config(), workdir, train_fn=stand_in(calls, stop_at))
        execute.run_sweep(staged_config(), workdir, train_fn=stand_in(calls))
        assert json.load(open(os.path.join(workdir, "decisions.json"))) == expected
        assert sorted(calls) == sorted(straight)


def test_a_run_another_command_trains_holds_the_stages_back(tmp_path, monkeypatch):
    """A run skipped because another live command holds it leaves its look unmade: the sweep
    stops after that stage (and says so) rather than planning the same stage again."""
    plans, next_units = [], stages.next_units

    def counted(*args):
        plans.append(1)
        if len(plans) > 3:
            raise AssertionError("the same stage planned again and again")
        return next_units(*args)
    monkeypatch.setattr(stages, "next_units", counted)
    holder, calls = hold(str(tmp_path / "near" / "seed1")), []
    try:
        assert execute.run_sweep(staged_config(), str(tmp_path), train_fn=stand_in(calls)) == 0
    finally:
        kill(holder)
    assert len(plans) == 1 and "near/seed1" not in calls and len(calls) == 8
    assert json.load(open(tmp_path / "decisions.json"))["last_look"] == -1
    again = []  # the holder gone, the same command goes on
    monkeypatch.setattr(stages, "next_units", next_units)
    execute.run_sweep(staged_config(), str(tmp_path), train_fn=stand_in(again))
    assert again[0] == "near/seed1"


def test_as_shards_each_invocation_runs_one_stage_and_decides_only_complete_looks(tmp_path):
    calls = []
    train_fn = stand_in(calls)
    execute.run_sweep(staged_config(), str(tmp_path), shard="0/2", train_fn=train_fn)
    first = len(calls)
    state = json.load(open(tmp_path / "decisions.json"))
    assert state["last_look"] == -1 and 0 < first < 9  # the other shard's part is not done
    execute.run_sweep(staged_config(), str(tmp_path), shard="0/2", train_fn=train_fn)
    assert len(calls) == first  # its part of the stage is done; the stage is not: no look
    execute.run_sweep(staged_config(), str(tmp_path), shard="1/2", train_fn=train_fn)
    assert len(calls) == 9 and json.load(open(tmp_path / "decisions.json"))["last_look"] == -1
    while True:  # the next invocation makes the look and starts the next stage
        before = len(calls)
        for part in ("0/2", "1/2"):
            execute.run_sweep(staged_config(), str(tmp_path), shard=part, train_fn=train_fn)
        if len(calls) == before:
            break
    straight = []
    execute.run_sweep(staged_config(), str(tmp_path / "one"), train_fn=stand_in(straight))
    assert json.load(open(tmp_path / "decisions.json"))["variants"] == json.load(
        open(tmp_path / "one" / "decisions.json"))["variants"]
    assert sorted(calls) == sorted(straight)


def test_the_design_is_fixed_at_the_first_look_and_a_change_is_named(tmp_path):
    calls = []
    for _ in range(2):  # the second makes look 1
        execute.run_sweep(staged_config(), str(tmp_path), shard="0/1", train_fn=stand_in(calls))
    for field, value, said in (("margin", 0.5, "margin 1.0 → 0.5"),
                               ("alpha", 0.1, "alpha 0.05 → 0.1"),
                               ("max_seeds", 7, "looks [3, 5, 7, 9] → [3, 5, 7]")):
        changed = staged_config()
        changed.sweep[field] = value
        with pytest.raises(ValueError, match=r"decisions.json fixed this sweep's design at "
                                             r"its first look, and this config changes its ") \
                as raised:
            execute.run_sweep(changed, str(tmp_path), train_fn=stand_in(calls))
        assert said in str(raised.value)


def test_bad_designs_are_one_sentence():
    for options, message in (({"max_seeds": 12}, "sweep.seeds lists 9; list at least 12"),
                             ({"min_seeds": 1}, "2 <= min_seeds"),
                             ({"seeds_per_program": 2}, "multiples of seeds_per_program=2"),
                             ({"only": "far,near"}, "which sweep.only leaves out")):
        with pytest.raises(ValueError, match=message):
            stages.design_of(staged_config(**options), plan.expand(staged_config(**options)))


@needs_fashion_mnist
@pytest.mark.slow
def test_a_real_sweep_killed_between_stages_decides_as_one_left_alone(tmp_path):
    """The tiny network through `run_experiment.py`: SIGKILL once the second stage has
    begun, then the same command."""
    def command(workdir):
        return [sys.executable, os.path.join(ROOT, "run_experiment.py"), "--config",
                os.path.join(ROOT, "tests", "scripts", "tiny_sweep.py:until_decided"),
                "--workdir", workdir]
    straight, killed, _, _ = straight_and_killed(command, tmp_path, "until decided: look 2 of")
    decisions = [json.load(open(os.path.join(d, "decisions.json"))) for d in (straight, killed)]
    assert decisions[0] == decisions[1] and decisions[0]["last_look"] >= 1
    runs = [sorted(r["dir"] for r in json.load(open(os.path.join(d, "sweep.json")))["runs"])
            for d in (straight, killed)]
    assert runs[0] == runs[1]
