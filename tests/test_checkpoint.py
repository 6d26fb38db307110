"""Checkpoints that cannot be read: the newest damaged one (truncated array files, or corrupted
metadata) is set aside with a one-line warning and the run resumes, bit for bit, from the
newest intact one; with none intact, one sentence."""

import os
import shutil

import pytest

from inception_flax import train
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
