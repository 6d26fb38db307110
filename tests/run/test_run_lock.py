"""One live command per run directory: a held directory is refused, a sweep skips a run
another command holds, and the lock of a killed holder is gone (a second `run_experiment.py`
on a held run directory: `test_train.test_sigkill_then_resume_is_bit_exact`)."""

import pytest

from inception_flax.run import run_lock
from inception_flax.sweeps import execute
from tests.helpers import fake_train, hold, kill, sweep_config


def test_a_held_directory_is_refused_and_a_killed_holders_lock_is_gone(tmp_path):
    workdir = str(tmp_path / "run")
    holder = hold(workdir)
    try:
        with pytest.raises(run_lock.Locked, match=rf"in use by another command \(process "
                                                  rf"{holder.pid}\); wait for it"):
            run_lock.acquire(workdir)
    finally:
        kill(holder)
    run_lock.acquire(workdir)  # SIGKILL left nothing stale
    run_lock.acquire(workdir)  # taking a lock this process holds does nothing
    run_lock.release(workdir)
    assert not run_lock.held(workdir)


def test_a_sweep_skips_a_run_another_command_holds(tmp_path, capsys):
    config = sweep_config(seeds=(0,))
    holder = hold(str(tmp_path / "fig5" / "seed0"))
    try:
        calls = []
        assert execute.run_sweep(config, str(tmp_path), train_fn=fake_train(calls)) == 0
    finally:
        kill(holder)
    assert calls == [str(tmp_path / "fig4" / "seed0")]
    said = capsys.readouterr()
    assert f"fig5/seed0: skipped: {tmp_path / 'fig5' / 'seed0'} is in use by another command " \
        f"(process {holder.pid})" in said.out
    assert said.err == ("1 run(s) skipped: another live command is training them (it records "
                        "them; tables written before it finishes leave them out)\n")
