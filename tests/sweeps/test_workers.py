"""`--workers N`: a sweep in N processes, each on its own CPU cores."""

import json
import os
import signal
import subprocess
import sys

import pytest

from inception_flax.sweeps import plan, workers
from tests.helpers import ROOT, env, needs_fashion_mnist, sweep_config

STANDIN = os.path.join(ROOT, "tests", "scripts", "worker_standin.py")
TWO_CORES = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPU cores")


def run_standin(*flags):
    """`workers.run(2, [worker_standin.py, *flags], "work.json")` in a process of its own."""
    code = ("import sys; from inception_flax.sweeps import workers; "
            f"sys.exit(workers.run(2, [{STANDIN!r}, *{list(flags)!r}], 'work.json'))")
    return subprocess.Popen([sys.executable, "-c", code], env=env(), cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_flags_that_cannot_work_are_refused(monkeypatch):
    for args, message in (((0, True, None, False), "--workers=0 is not valid"),
                          ((2, False, None, False), "this config is one run"),
                          ((2, True, "0/2", False), "leave out --shard and --distributed"),
                          ((2, True, None, True), "leave out --shard and --distributed")):
        with pytest.raises(ValueError, match=message):
            workers.refuse_flags(*args)
    workers.refuse_flags(1, False, "0/2", True)  # one process: nothing to refuse
    workers.refuse_flags(2, True, None, False)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    with pytest.raises(ValueError, match="outside a Slurm array"):
        workers.refuse_flags(2, True, None, False)


def test_consecutive_parts_and_core_sets():
    assert [workers.part(list(range(7)), i, 3) for i in range(3)] == [[0, 1, 2], [3, 4], [5, 6]]
    assert [workers.part([0, 1], i, 3) for i in range(3)] == [[0], [1], []]
    assert workers.core_sets(2, [0, 1, 2, 3, 6]) == [[0, 1, 2], [3, 6]]
    with pytest.raises(ValueError, match=r"--workers=3 needs between 1 and 2 workers: this "
                                         r"process may use 2 CPU core\(s\) \(4-5\)"):
        workers.core_sets(3, [4, 5])


@TWO_CORES
def test_each_worker_runs_its_shard_on_its_own_cores_and_the_worst_exit_code_is_returned():
    process = run_standin()
    out, err = process.communicate(timeout=120)
    first, second = workers.core_sets(2, sorted(os.sched_getaffinity(0)))
    for i, cores in enumerate((first, second)):
        spans = workers._spans(cores)
        assert f"[worker {i}] shard {i}/2 on CPU core(s) {spans}" in out, out + err
        assert (f"[worker {i}] args --workers=1 --shard={i}/2 cores "
                f"{' '.join(map(str, cores))} worker {i}/2:{','.join(map(str, cores))} work "
                "work.json") in out, out + err
    assert process.returncode == 3  # the last shard's stand-in exits 3, the first 0
    units = plan.groups(plan.expand(sweep_config(seeds=(0, 1))), 1)
    assert workers.describe(2, units).splitlines() == [
        f"worker 0 (CPU core(s) {workers._spans(first)}): fig4/seed0, fig4/seed1",
        f"worker 1 (CPU core(s) {workers._spans(second)}): fig5/seed0, fig5/seed1"]


def both_waiting(process) -> None:
    """Reads the stand-in command's output until both workers say they are waiting."""
    waiting = 0
    for line in process.stdout:
        waiting += "waiting" in line
        if waiting == 2:
            return


@TWO_CORES
def test_sigterm_stops_every_worker_as_a_preemption_does():
    process = run_standin("--wait")
    both_waiting(process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert "[worker 0] stopped on SIGTERM" in out and "[worker 1] stopped on SIGTERM" in out
    assert "stopping the workers: each saves its run" in err and process.returncode == 0


@TWO_CORES
def test_ctrl_c_while_a_worker_sets_up_a_run_is_a_stop_not_a_failure():
    """Ctrl-C at any moment: a worker without its preemption handler yet (setting up a run,
    or between runs) dies of the SIGTERM the command sends it; nothing was lost, and the
    command exits 0 as for a preemption."""
    process = run_standin("--setting_up")
    both_waiting(process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert "stopping the workers" in err and process.returncode == 0, err


@needs_fashion_mnist
@TWO_CORES
@pytest.mark.slow
def test_a_sweep_in_two_workers_trains_each_shard_on_one_core_and_writes_the_tables_once(
        tmp_path):
    """Two shards of one sweep at once in two processes, each run once, one table."""
    workdir = str(tmp_path / "sweep")
    command = [sys.executable, os.path.join(ROOT, "run_experiment.py"), "--config",
               os.path.join(ROOT, "tests", "scripts", "tiny_sweep.py"), "--workdir", workdir]
    result = subprocess.run([*command, "--workers", "2"], env=env(), capture_output=True,
                            text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "[worker 0] [1/1] relu/seed0: starting" in out  # consecutive shards: a variant each
    assert "[worker 1] [1/1] linear/seed0: starting" in out
    sets = workers.core_sets(2, sorted(os.sched_getaffinity(0)))
    for run, cores in zip(("relu/seed0", "linear/seed0"), sets):
        final = json.load(open(os.path.join(workdir, run, "final.json")))
        assert final["status"] == "done" and final["cpu_cores"] == len(cores)
    assert len(json.load(open(os.path.join(workdir, "sweep.json")))["runs"]) == 2
    assert out.count("| variant |") == 1  # the tables, once, by the command that started them
    assert open(os.path.join(workdir, "results.md")).read().count("| 1 done |") == 2
