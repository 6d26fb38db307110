"""What a run directory holds: the rule for "the same run" (every field but the bookkeeping
ones), records that are damaged, metrics cut short, and a stale directory moved aside."""

import json
import os

import pytest

from inception_flax.run import checkpoint, run_dir
from tests.scripts.tiny import tiny_config


def test_the_same_run_is_every_field_but_the_bookkeeping_ones():
    config = tiny_config()
    same = tiny_config(log_every_steps=7, eval_every_steps=50, checkpoint_every_steps=3,
                       keep_checkpoints=1, tensorboard=True, compilation_cache=True,
                       data_dir="/elsewhere", data_threads=4, eval_batch_size=50,
                       eval_raw_weights=False)
    assert run_dir.identity(same) == run_dir.identity(config)
    assert run_dir.digest(same) == run_dir.digest(config)
    stored = run_dir.identity(config)
    # Every field that changes what a run computes or reports makes it another run.
    for field, value in [("learning_rate", 0.1), ("num_epochs", 1.0), ("label_smoothing", 0.0),
                         ("ema_decay", 0.9), ("global_batch_size", 32), ("seed", 3),
                         ("max_eval_examples", 100), ("model.depth_multiplier", 0.25),
                         ("model.lowering", "matmul")]:
        changed = tiny_config()
        node, name = (changed.model, field[6:]) if field.startswith("model.") else (changed, field)
        node[name] = value
        assert run_dir.differing(stored, changed) == [field], field
        assert run_dir.digest(changed) != run_dir.digest(config)
    assert "model.modules_per_grid" in stored and "sweep" not in run_dir.identity(
        dict(config.to_dict(), sweep={"seeds": [0]}))


def test_a_checkpoint_from_before_the_rule_compares_the_fields_it_holds():
    config = tiny_config()
    legacy = {k: (config[k].to_dict() if k == "model" else config[k]) for k in (
        "model", "dataset", "image_size", "global_batch_size", "seed", "preprocessing",
        "optimizer", "sync_batch_norm")}
    stored = checkpoint.legacy_fields(json.loads(json.dumps(legacy)))
    assert checkpoint.differences(legacy, config) == []
    assert checkpoint.differences(legacy, tiny_config(learning_rate=0.1)) == []  # not held
    assert checkpoint.differences(legacy, tiny_config(seed=4)) == ["seed"]
    assert stored["model.modules_per_grid"] == [1, 1, 1] and stored["_legacy"]
    assert checkpoint.differences(checkpoint.fingerprint(config),
                                  tiny_config(learning_rate=0.1)) == ["learning_rate"]


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_a_run_directory_is_stale_by_its_record_else_its_newest_checkpoint(tmp_path, capsys):
    config = tiny_config()
    run = str(tmp_path / "run")
    assert run_dir.stale_fields(run, config, checkpoint.stored_fields) == []  # nothing yet
    # Only a checkpoint (a run stopped before its end): its stored fingerprint decides.
    write(os.path.join(run, "checkpoints", "4", "meta", "metadata"),
          json.dumps(checkpoint.fingerprint(config)))
    write(os.path.join(run, "checkpoints", "8", "meta", "metadata"),
          json.dumps(checkpoint.fingerprint(tiny_config(learning_rate=0.3))))
    assert run_dir.stale_fields(run, config, checkpoint.stored_fields) == ["learning_rate"]
    # A record: its config decides (here the same as asked).
    write(os.path.join(run, "final.json"), json.dumps({"status": "done",
                                                       "config": config.to_dict()}))
    assert run_dir.stale_fields(run, config, checkpoint.stored_fields) == []
    assert run_dir.stale_fields(run, tiny_config(num_epochs=1.0)) == ["num_epochs"]
    moved = run_dir.set_aside(run)
    assert moved.endswith(".stale-" + moved.rsplit(".stale-", 1)[1]) and not os.path.exists(run)
    assert os.path.exists(os.path.join(moved, "final.json"))
    os.makedirs(run)
    assert run_dir.set_aside(run) == moved + "-2"  # the same day again
    assert run_dir.describe_stale("fig4/seed0", [f"f{i}" for i in range(8)]) == (
        "fig4/seed0 was made under another config (it differs in f0, f1, f2, f3, f4, f5 and "
        "2 more)")


@pytest.mark.parametrize("text,why", [('{"status": "do', "not JSON"), ("null", "holds NoneType"),
                                      ("[1, 2]", "holds list")])
def test_a_damaged_record_is_named_and_counts_as_unfinished(tmp_path, capsys, text, why):
    path = tmp_path / "final.json"
    path.write_text(text)
    assert run_dir.read_final(str(tmp_path)) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"warning: {path} is damaged ({why}" in err
    assert "counts as unfinished" in err
    run_dir.set_aside_damaged_final(str(tmp_path))
    assert not path.exists() and (tmp_path / "final.json.damaged").read_text() == text
    assert "set aside as final.json.damaged" in capsys.readouterr().err
    with pytest.raises(run_dir.Damaged, match="sweep.json is damaged"):
        write(str(tmp_path / "sweep.json"), text)
        run_dir.read_json(str(tmp_path / "sweep.json"))


def test_metrics_cut_short_by_a_kill_keep_their_whole_lines(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 2, "loss": 1.0}\n{"step": 4, "lo')
    assert run_dir.read_metrics(str(tmp_path)) == [{"step": 2, "loss": 1.0}]
    assert run_dir.read_metrics(str(tmp_path / "none")) == []
