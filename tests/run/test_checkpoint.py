"""Checkpoints that cannot be read: the newest damaged one (truncated array files, or corrupted
metadata) is set aside with a one-line warning and the run resumes, bit for bit, from the
newest intact one; with none intact, one sentence. A checkpoint of another config is refused,
one of the code before the rule for "the same run" resumes, and a full disk loses nothing."""

import errno
import json
import os
import shutil

import pytest

from inception_flax.run import checkpoint, settings, train
from inception_flax.utils import cli
from tests.helpers import assert_trees_equal, final_params, needs_fashion_mnist
from tests.scripts.tiny import tiny_config


def truncate_arrays(step_dir):
    """Cuts every array file of the checkpoint's state to half its length."""
    for root, _, files in os.walk(os.path.join(step_dir, "state")):
        for name in files:
            path = os.path.join(root, name)
            size = os.path.getsize(path)
            if size > 1000:
                with open(path, "r+b") as f:
                    f.truncate(size // 2)


def corrupt_metadata(step_dir):
    """An unterminated string in the run's fingerprint."""
    for root, _, files in os.walk(os.path.join(step_dir, "meta")):
        for name in files:
            with open(os.path.join(root, name), "w") as f:
                f.write('{"model": "unterminated')


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of 8 steps with checkpoints at steps 4 and 8."""
    workdir = str(tmp_path_factory.mktemp("trained") / "run")
    train.train_and_evaluate(tiny_config(steps=8), workdir)
    return workdir


@pytest.mark.slow
@needs_fashion_mnist
@pytest.mark.parametrize("damage", [truncate_arrays, corrupt_metadata])
def test_a_damaged_newest_checkpoint_is_set_aside(trained, tmp_path, capfd, damage):
    workdir = str(tmp_path / "run")
    shutil.copytree(trained, workdir)
    os.remove(os.path.join(workdir, "final.json"))
    damage(os.path.join(workdir, "checkpoints", "8"))
    record = train.train_and_evaluate(tiny_config(steps=8), workdir)
    warning = [line for line in capfd.readouterr().err.splitlines() if "damaged" in line]
    assert warning == [f"warning: the checkpoint at step 8 in {workdir}/checkpoints is damaged "
                       f"({warning[0].split('(')[1].split(')')[0]}); set aside as 8.damaged, "
                       "resuming from an older one."]
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "8.damaged"))
    assert record["status"] == "done" and record["step"] == 8
    # Resumed from step 4, it reached what the undamaged run had at step 8, bit for bit.
    assert_trees_equal(final_params(workdir)[1], final_params(trained)[1], exact=True)


@pytest.mark.slow
@needs_fashion_mnist
def test_no_intact_checkpoint_is_one_sentence(trained, tmp_path):
    workdir = str(tmp_path / "run")
    shutil.copytree(trained, workdir)
    for step in ("4", "8"):
        truncate_arrays(os.path.join(workdir, "checkpoints", step))
    with pytest.raises(ValueError) as raised:
        train.train_and_evaluate(tiny_config(steps=8), workdir)
    assert str(raised.value) == (
        f"every checkpoint in {workdir}/checkpoints is damaged (set aside as 8.damaged, "
        "4.damaged); run the command again to start from step 0.")
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4.damaged",
                                                                        "8.damaged"]


@pytest.mark.slow
@needs_fashion_mnist
def test_a_resume_under_another_config_is_refused_and_an_old_checkpoint_resumes(trained,
                                                                               tmp_path):
    """The rule for "the same run" on a resume: a checkpoint of this code is refused for a
    changed learning rate before anything is built; one written before the rule (its
    fingerprint only the fields compared then, its metrics without segments) resumes."""
    workdir = str(tmp_path / "run")
    shutil.copytree(trained, workdir)
    os.remove(os.path.join(workdir, "final.json"))
    shutil.rmtree(os.path.join(workdir, "checkpoints", "8"))
    with pytest.raises(ValueError, match=rf"^{workdir} was made under another config \(it "
                                         r"differs in learning_rate\); use another --workdir"):
        train.train_and_evaluate(tiny_config(steps=8, learning_rate=0.3), workdir)
    config = settings.resolve(tiny_config(steps=8)).config  # as the old code recorded it
    legacy = {k: (config[k].to_dict() if k == "model" else config[k]) for k in (
        "model", "dataset", "image_size", "global_batch_size", "seed", "preprocessing",
        "optimizer", "sync_batch_norm")}
    with open(os.path.join(workdir, "checkpoints", "4", "meta", "metadata"), "w") as f:
        json.dump(legacy, f)
    old = [{k: v for k, v in r.items() if k not in ("interval_steps", "interval_s", "timed")}
           for r in map(json.loads, open(os.path.join(workdir, "metrics.jsonl")))
           if "segment" not in r]
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in old)
    record = train.train_and_evaluate(config, workdir)
    assert record["status"] == "done" and record["step"] == 8 and record["images_per_s"] > 0
    assert_trees_equal(final_params(workdir)[1], final_params(trained)[1], exact=True)


@pytest.mark.slow
@needs_fashion_mnist
def test_a_full_disk_loses_nothing_and_the_same_command_resumes(trained, tmp_path,
                                                                 monkeypatch, capsys):
    """The disk fills up at the second checkpoint (injected: CI cannot fill a disk): the
    error is the disk's, one sentence with exit code 3; the first checkpoint is intact and
    the run resumes from it to what the undisturbed run reached."""
    workdir = str(tmp_path / "run")
    save = checkpoint.save

    def full_at_step_8(manager, state, meta):
        if int(state.step) == 8:
            raise OSError(errno.ENOSPC, "No space left on device")
        save(manager, state, meta)
    monkeypatch.setattr(checkpoint, "save", full_at_step_8)
    with pytest.raises(OSError) as raised:
        train.train_and_evaluate(tiny_config(steps=8), workdir)
    assert cli.report(raised.value, workdir) == cli.EXIT_DISK
    err = capsys.readouterr().err
    assert err.startswith(f"error: the disk holding {workdir} is full (") and err.count("\n") == 1
    assert checkpoint.latest_step(workdir) == 4 and not os.path.exists(
        os.path.join(workdir, "final.json"))
    monkeypatch.setattr(checkpoint, "save", save)
    record = train.train_and_evaluate(tiny_config(steps=8), workdir)
    assert record["status"] == "done" and record["step"] == 8
    assert_trees_equal(final_params(workdir)[1], final_params(trained)[1], exact=True)
