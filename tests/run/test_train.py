"""Training end to end: devices and processes against one another, exact resume, preemption,
divergence, clear errors, and seeds trained together. Runs use a 1/10-width network on
Fashion-MNIST."""

import json
import os
import signal
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from inception_flax.run import run_dir, settings, steps, train
from tests.helpers import (SCRIPTS, hold, kill, assert_trees_equal, env, final_params, max_difference,
                           needs_fashion_mnist, run_experiment, wait_for)
from tests.scripts.tiny import STEPS_PER_EPOCH, tiny_config

@pytest.mark.slow
def test_eight_devices_match_one_with_synchronized_batch_norm():
    result = subprocess.run([sys.executable, os.path.join(SCRIPTS, "devices_check.py")],
                            env=env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK sync 8 == 1" in result.stdout and "OK per-replica differs" in result.stdout
    assert "OK seeds trained together == alone" in result.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@needs_fashion_mnist
def test_two_processes_train_like_one(tmp_path):
    script = os.path.join(SCRIPTS, "train_process.py")
    two, one = str(tmp_path / "two"), str(tmp_path / "one")
    port = str(free_port())
    procs = [subprocess.Popen([sys.executable, script, two, "1", str(i), "2", port], env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs[0][-3000:] + outputs[1][-3000:]
    single = subprocess.run([sys.executable, script, one, "2"], env=env(), capture_output=True,
                            text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    step_two, state_two = final_params(two)
    step_one, state_one = final_params(one)
    assert step_two == step_one == 6
    # Each process fed its own half of every global batch; one process with two devices fed
    # both halves: the same replicas see the same images.
    assert_trees_equal(state_two["params"], state_one["params"], exact=False)
    assert_trees_equal(state_two["ema_params"], state_one["ema_params"], exact=False)
    final = json.load(open(os.path.join(two, "final.json")))
    assert final["status"] == "done" and final["eval_examples"] == 200


@pytest.mark.slow
@needs_fashion_mnist
def test_sigkill_then_resume_is_bit_exact(tmp_path):
    straight = str(tmp_path / "straight")
    resumed = str(tmp_path / "resumed")
    process = run_experiment(straight)
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 0, output[-3000:]

    process = run_experiment(resumed)
    wait_for(process, "checkpoint saved at step 4")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    # While another command holds the directory, a second one refuses in one sentence and
    # writes nothing; SIGKILL leaves no stale lock (the resume below runs).
    before = sorted(os.listdir(resumed)), open(os.path.join(resumed, "metrics.jsonl")).read()
    holder = hold(resumed)
    try:
        output = run_experiment(resumed).communicate(timeout=300)[0]
    finally:
        kill(holder)
    assert output.strip().splitlines()[-1] == (
        f"error: {resumed} is in use by another command (process {holder.pid}); wait for it "
        "to finish, or give this one another --workdir.")
    assert (sorted(os.listdir(resumed)),
            open(os.path.join(resumed, "metrics.jsonl")).read()) == before
    process = run_experiment(resumed)
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 0, output[-3000:]
    assert "step 6/12" in output and "step 2/12" not in output  # it went on from step 4

    finals = [json.load(open(os.path.join(d, "final.json"))) for d in (straight, resumed)]
    for key in ("raw_top1", "raw_top5", "ema_top1", "ema_top5", "step", "status"):
        assert finals[0][key] == finals[1][key], key
    assert_trees_equal(final_params(straight)[1], final_params(resumed)[1], exact=True)
    # The metrics history is the same, each step once.
    histories = [[json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
                 for d in (straight, resumed)]
    losses = [[(r["step"], r["loss"]) for r in h if "loss" in r] for h in histories]
    assert losses[0] == losses[1] and len(losses[0]) == 6


@pytest.mark.slow
@needs_fashion_mnist
def test_sigterm_saves_and_exits_zero(tmp_path):
    workdir = str(tmp_path / "run")
    process = run_experiment(workdir, "--config.num_epochs=1.0")
    wait_for(process, "step 2/")
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output[-3000:]
    final = json.load(open(os.path.join(workdir, "final.json")))
    assert final["status"] == "preempted"
    step, _ = final_params(workdir)
    assert step == final["step"] and 2 <= step < STEPS_PER_EPOCH


@pytest.mark.slow
@needs_fashion_mnist
def test_divergence_is_recorded(tmp_path):
    workdir = str(tmp_path / "run")
    process = run_experiment(workdir, "--config.learning_rate=1e30",
                             "--config.gradient_clip_norm=0.0")
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 1, output[-3000:]
    final = json.load(open(os.path.join(workdir, "final.json")))
    assert final["status"] == "diverged" and 1 <= final["diverged_at_step"] <= final["step"]
    assert f"at step {final['diverged_at_step']}" in final["error"] and "diverged" in output


@pytest.mark.parametrize("flags,message", [
    (["--config.model.width=2"], "width"),
    (["--config.momentun=0.5"], "momentun"),
    (["--config.image_size=60"], "at least 75"),
    (["--config.data_dir=/nonexistent"], "apt-get install dataset-fashion-mnist"),
    (["--config.model.module_17=4x4"], "choose one of 'asymmetric'"),
    (["--config.preprocessing=crop"], "preprocessing='crop' is not valid"),
    (["--shard=3/2"], "this config is one run: leave out --shard"),
])
@pytest.mark.slow
def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path, flags, message):
    workdir = str(tmp_path / "run")
    process = run_experiment(workdir, *flags)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 2
    assert message in output and output.count("\n") == 1, output[-2000:]
    assert not os.path.exists(workdir)


@pytest.mark.slow
def test_batch_that_does_not_split_over_devices(tmp_path):
    script = os.path.join(SCRIPTS, "train_process.py")
    result = subprocess.run([sys.executable, script, str(tmp_path / "run"), "2",
                             "--config.global_batch_size=15"], env=env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "global_batch_size=15 does not split over 2 devices" in result.stderr
    assert not os.path.exists(tmp_path / "run")



# ---------------------------------------------------------------------------------------------
# Seeds trained together (a leading seed axis, jax.vmap).

def train_in_float64(configs, workdirs, poison_first_from=0):
    """`train.train_seeds` with the state cast to float64 after set-up (parameters are created
    float32), optionally with the first seed's loss poisoned (NaN) from a step on."""
    with jax.enable_x64(True):
        for config in configs:
            config.model.dtype = "float64"
        run = train.set_up([settings.validate(c) for c in configs], workdirs, None)
        run.state = jax.tree_util.tree_map(
            lambda x: x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x,
            run.state)
        step = run.train_step

        def poisoned(state, batch):
            state, metrics = step(state, batch)
            if poison_first_from and int(state.step[0]) >= poison_first_from:
                metrics = dict(metrics, loss=metrics["loss"].at[0].set(np.nan))
            return state, metrics
        run.train_step = poisoned
        return train.finish(run, train.loop(run))


@pytest.mark.slow
@needs_fashion_mnist
def test_a_seed_trained_in_a_group_is_the_seed_alone_and_one_diverges_alone(tmp_path):
    """Through the training loop (each seed's own input pipeline, dropout, checkpoints and
    evaluation), with the matmul lowering (its grouped kernels: a kernel per seed). XLA's
    convolutions under vmap (JAX's batching rule) train the grouped sweep of
    tests/sweeps/test_execute.py; in float64 at XLA's lowest optimization level (tests/conftest.py)
    they would make this test three times as long.

    In float64, so that a real difference is not hidden: in float32 the grouped and the
    alone program agree at equal inputs to round-off (~1e-5 in the gradients, every step),
    but a run's trajectory can part where the loss is not smooth, as any change of rounding
    can make it (measured on this config: parameters 1.2e-7 apart at step 4 give gradients
    0.017 apart, 2.4e-3 in the parameters after 8 steps). In float64 they stay ~1e-15 apart."""
    def config(seed):
        config = tiny_config(steps=8, seed=seed)
        config.model.lowering = "matmul"
        return config
    dirs = [str(tmp_path / f"seed{s}") for s in (1, 2)]
    records = train_in_float64([config(1), config(2)], dirs, poison_first_from=4)
    # Seed 1's loss is not finite from step 4: recorded as diverged there; seed 2 finishes.
    assert [r["status"] for r in records] == ["diverged", "done"]
    assert records[0]["diverged_at_step"] == 4 and "ema_top1" not in records[0]
    finals = [json.load(open(os.path.join(d, "final.json"))) for d in dirs]
    assert finals[0]["status"] == "diverged" and finals[1]["status"] == "done"
    alone = train_in_float64([config(2)], [str(tmp_path / "alone")])[0]
    with jax.enable_x64(True):
        together = final_params(dirs[1])[1]
        reference = final_params(str(tmp_path / "alone"))[1]
    assert together["params"]["Logits"]["Conv2d_1c_1x1"]["Conv"]["kernel"].dtype == np.float64
    assert max_difference(together, reference) <= 1e-10
    # The same record, key for key, as the seed trained alone, and the same accuracies.
    assert set(finals[1]) == set(alone) and finals[1]["step"] == alone["step"] == 8
    for key in ("raw_top1", "raw_top5", "ema_top1", "ema_top5", "eval_examples"):
        assert finals[1][key] == alone[key], key
    assert finals[1]["images_per_s"] > 0 and finals[1]["eval_examples"] == 200


def test_evaluation_counts_each_weight_set_and_can_leave_out_the_raw_one():
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    class Data:
        def eval_batches(self):
            for k in range(3):
                yield {"image": np.zeros((4, 2), np.float32), "label": np.zeros(4, np.int32),
                       "mask": np.ones(4, bool), "index": np.arange(4 * k, 4 * k + 4)}

    def evaluate(params, batch_stats, batch):  # hits: 3 top-1 and 4 top-5 (raw), 1 and 2 (EMA)
        if params == "raw":
            return np.array([3, 4, 4]), np.array([1, 1, 1, 0], bool)
        return np.array([1, 2, 4]), np.array([0, 1, 0, 0], bool)
    state = steps.TrainState(step=0, params="raw", batch_stats=None, opt_state=None,
                             ema_params="ema", ema_batch_stats=None, rng=None)
    sharding = NamedSharding(Mesh(np.array(jax.devices()[:1]), (steps.AXIS,)), P(steps.AXIS))
    (both,) = steps.evaluate_all(evaluate, state, Data(), sharding)
    right = both.pop("ema_correct")
    assert both == {"raw_top1": 0.75, "raw_top5": 1.0, "ema_top1": 0.25, "ema_top5": 0.5,
                    "eval_examples": 12}
    bits, seen = run_dir.decode_correct(right)
    assert list(np.flatnonzero(bits)) == [1, 5, 9] and seen.all() and right["evaluated"] == 12
    (ema,) = steps.evaluate_all(evaluate, state, Data(), sharding, max_examples=8, raw=False)
    right = ema.pop("ema_correct")
    assert ema == {"ema_top1": 0.25, "ema_top5": 0.5, "eval_examples": 8}
    assert right["n"] == 8 and right["evaluated"] == 8


def test_a_variants_next_seed_reuses_its_programs():
    mesh = jax.make_mesh((1,), (steps.AXIS,))

    def programs(**fields):
        return train.compiled_programs([settings.validate(tiny_config(**fields))],
                                       STEPS_PER_EPOCH, 10, mesh)
    first = programs(seed=0)
    assert programs(seed=1) is first
    assert programs(seed=1, learning_rate=0.1) is not first
    assert programs(seed=0) is not first


def test_a_divergence_is_dated_to_the_first_step_whose_loss_was_not_finite(tmp_path):
    """Steps 5-8 logged at once (log every 4): the loss was finite at 5 and 6, not at 7."""
    from types import SimpleNamespace
    from inception_flax.run.run_log import RunLog
    log = RunLog(str(tmp_path), tiny_config(), total_steps=8, start_step=4, global_batch=16)
    run = SimpleNamespace(seeds=lambda: range(1), live=[True], records=[{}], logs=[log],
                          member=lambda tree, i: tree)
    losses = [2.0, 1.5, float("nan"), float("inf")]
    train.log_train(run, 8, [{"loss": np.float32(l), "accuracy": 0.5, "learning_rate": 0.1,
                              "grad_norm": 1.0} for l in losses])
    assert run.live == [False] and run.records[0]["diverged_at_step"] == 7
    assert run.records[0]["error"] == "the loss became nan at step 7"
