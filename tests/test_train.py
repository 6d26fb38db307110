"""Training end to end: devices and processes against one another, exact resume, preemption,
the TFDS path on mock data, and clear errors. Runs use a 1/10-width network on Fashion-MNIST."""

import json
import os
import signal
import socket
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from inception_flax import input_pipeline, train
from tests.scripts.tiny import STEPS_PER_EPOCH, tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "tests", "scripts")
needs_fashion_mnist = pytest.mark.skipif(
    not os.path.isdir(input_pipeline.FASHION_MNIST_DIR),
    reason="apt-get install dataset-fashion-mnist")


# Subprocess runs of the same tiny network share JAX's persistent compilation cache.
CACHE = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"inception_flax_test_cache_{os.getpid()}")


def env():
    return dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu",
                JAX_COMPILATION_CACHE_DIR=CACHE, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")


def final_params(workdir):
    """The latest checkpoint's state as host arrays, on this process's one device."""
    directory = os.path.join(workdir, "checkpoints")
    step = max(int(name) for name in os.listdir(directory) if name.isdigit())
    path = os.path.join(directory, str(step), "state")
    checkpointer = ocp.StandardCheckpointer()
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree_util.tree_map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
        checkpointer.metadata(path).item_metadata.tree)
    return step, jax.device_get(checkpointer.restore(path, target))


def assert_trees_equal(a, b, exact=True):
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        if exact:
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_eight_devices_match_one_with_synchronized_batch_norm():
    result = subprocess.run([sys.executable, os.path.join(SCRIPTS, "devices_check.py")],
                            env=env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK sync 8 == 1" in result.stdout and "OK per-replica differs" in result.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


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


def run_experiment(workdir, *overrides, stdout=None):
    config = tiny_config(steps=12)
    args = [sys.executable, os.path.join(ROOT, "run_experiment.py"),
            "--config", os.path.join(ROOT, "configs", "fashion_mnist.py"), "--workdir", workdir,
            "--config.model.depth_multiplier=0.1", "--config.global_batch_size=16",
            "--config.eval_batch_size=100", "--config.max_eval_examples=200",
            f"--config.num_epochs={config.num_epochs!r}", "--config.log_every_steps=2",
            "--config.checkpoint_every_steps=4", "--config.tensorboard=False",
            *overrides]
    return subprocess.Popen(args, env=env(), stdout=stdout or subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def wait_for(process, text):
    """Reads the process's output until a line contains `text` (no sleeping)."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError("never printed " + repr(text) + ":\n" + "".join(lines[-30:]))


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


@needs_fashion_mnist
def test_divergence_is_recorded(tmp_path):
    workdir = str(tmp_path / "run")
    process = run_experiment(workdir, "--config.learning_rate=1e30",
                             "--config.gradient_clip_norm=0.0")
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 1, output[-3000:]
    final = json.load(open(os.path.join(workdir, "final.json")))
    assert final["status"] == "diverged" and final["diverged_at_step"] % 2 == 0
    assert "diverged" in output


@pytest.mark.parametrize("flags,message", [
    (["--config.model.width=2"], "width"),
    (["--config.momentun=0.5"], "momentun"),
    (["--config.image_size=60"], "at least 75"),
    (["--config.data_dir=/nonexistent"], "apt-get install dataset-fashion-mnist"),
    (["--config.model.module_17=4x4"], "choose one of 'asymmetric'"),
    (["--config.preprocessing=crop"], "preprocessing='crop' is not valid"),
])
def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path, flags, message):
    workdir = str(tmp_path / "run")
    process = run_experiment(workdir, *flags)
    output = process.communicate(timeout=300)[0]
    assert process.returncode != 0
    assert message in output, output[-2000:]
    assert not os.path.exists(workdir)


def test_batch_that_does_not_split_over_devices(tmp_path):
    script = os.path.join(SCRIPTS, "train_process.py")
    result = subprocess.run([sys.executable, script, str(tmp_path / "run"), "2",
                             "--config.global_batch_size=15"], env=env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "global_batch_size=15 does not split over 2 devices" in result.stderr
    assert not os.path.exists(tmp_path / "run")


def test_tfds_imagenet_path_on_mock_data(tmp_path):
    import tensorflow_datasets as tfds
    config = tiny_config(steps=2)
    config.dataset, config.train_split, config.eval_split = "imagenet2012", "train", "validation"
    config.in_memory, config.preprocessing, config.color_distortion = False, "inception", True
    config.model.num_classes = 1000
    config.shuffle_buffer, config.eval_batch_size, config.max_eval_examples = 64, 16, 0
    with tfds.testing.mock_data(num_examples=40):
        dataset = input_pipeline.create(config, 16, 16)
        first = next(dataset.train_batches(0))
        assert first["image"].shape == (16, 75, 75, 3) and first["image"].dtype == np.float32
        assert -1.0 <= first["image"].min() and first["image"].max() <= 1.0
        # Deterministic and resumable: step 1 read on its own equals step 1 read in order.
        again = dataset.train_batches(0)
        next(again)
        np.testing.assert_array_equal(next(again)["image"], next(dataset.train_batches(1))["image"])
        record = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert record["status"] == "done" and record["eval_examples"] == 40
    assert 0.0 <= record["ema_top5"] <= 1.0


@needs_fashion_mnist
def test_fashion_mnist_batches_are_deterministic_and_process_independent():
    arrays = input_pipeline.load_fashion_mnist()
    assert arrays[0].shape == (60_000, 28, 28, 1) and arrays[2].shape == (10_000, 28, 28, 1)
    data = input_pipeline.array_dataset("f", arrays, 10, 32, 100, seed=3, flip=True)
    batches = data.train_batches(0)
    first = [next(batches) for _ in range(3)]
    resumed = next(data.train_batches(2))
    np.testing.assert_array_equal(first[2]["image"], resumed["image"])
    eval_batches = list(data.eval_batches())
    assert sum(int(b["mask"].sum()) for b in eval_batches) == 10_000
