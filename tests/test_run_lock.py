"""One live command per run directory: a second refuses in one sentence, a sweep skips a run
another command holds, and the lock of a killed holder is gone."""

import json
import os
import signal
import subprocess
import sys

import pytest

from inception_flax import run_lock, sweep
from tests.helpers import ROOT, env, fake_train, needs_fashion_mnist, run_experiment, sweep_config

HOLDER = ("import sys; from inception_flax import run_lock; run_lock.acquire(sys.argv[1]); "
          "print('held', flush=True); sys.stdin.read()")


def hold(workdir):
    """A process that takes `workdir`'s lock and keeps it until it is killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, workdir], env=env(), cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


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


@pytest.mark.slow
@needs_fashion_mnist
def test_a_second_command_on_a_live_run_refuses_in_one_sentence(tmp_path):
    workdir = str(tmp_path / "run")
    holder = hold(workdir)
    try:
        output = run_experiment(workdir).communicate(timeout=300)[0]
    finally:
        kill(holder)
    lines = output.strip().splitlines()
    assert lines[-1] == (f"error: {workdir} is in use by another command (process "
                         f"{holder.pid}); wait for it to finish, or give this one another "
                         "--workdir.")
    assert os.listdir(workdir) == [run_lock.NAME]  # nothing written
    # Started again once the holder is gone: it runs.
    process = run_experiment(workdir, "--config.num_epochs=0.0")
    assert process.communicate(timeout=300)[0] and process.returncode == 0
    assert json.load(open(os.path.join(workdir, "final.json")))["status"] == "done"


def test_a_sweep_skips_a_run_another_command_holds(tmp_path, capsys):
    config = sweep_config(seeds=(0,))
    holder = hold(str(tmp_path / "fig5" / "seed0"))
    try:
        calls = []
        assert sweep.run_sweep(config, str(tmp_path), train_fn=fake_train(calls)) == 0
    finally:
        kill(holder)
    assert calls == [str(tmp_path / "fig4" / "seed0")]
    assert f"fig5/seed0: skipped: {tmp_path / 'fig5' / 'seed0'} is in use by another command " \
        f"(process {holder.pid})" in capsys.readouterr().out
