"""What several test files share: paths, the environment of subprocess runs, waiting for a
process's output, reading a run's checkpoint, comparing trees."""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments import quickstart
from inception_flax.run import input_pipeline
from tests.scripts.tiny import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "tests", "scripts")
needs_fashion_mnist = pytest.mark.skipif(
    not os.path.isdir(input_pipeline.FASHION_MNIST_DIR),
    reason="apt-get install dataset-fashion-mnist")

# Every run of the test session (the pytest-xdist workers and the processes they start)
# shares one persistent compilation cache, named by the controller (tests/conftest.py).
CACHE = os.environ.setdefault(
    "INCEPTION_FLAX_TEST_CACHE",
    os.path.join(os.environ.get("TMPDIR", "/tmp"), f"inception_flax_test_cache_{os.getpid()}"))


def env():
    return dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu",
                JAX_COMPILATION_CACHE_DIR=CACHE, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")


def run_experiment(workdir, *overrides, stdout=None, config="fashion_mnist.py", steps=12):
    """`run_experiment.py` on the tiny network in a subprocess (stdout and stderr piped)."""
    tiny = tiny_config(steps=steps)
    args = [sys.executable, os.path.join(ROOT, "run_experiment.py"),
            "--config", os.path.join(ROOT, "configs", config), "--workdir", workdir,
            "--config.model.depth_multiplier=0.1", "--config.model.modules_per_grid=(1,1,1)",
            "--config.global_batch_size=16",
            "--config.eval_batch_size=100", "--config.max_eval_examples=200",
            f"--config.num_epochs={tiny.num_epochs!r}", "--config.log_every_steps=2",
            "--config.checkpoint_every_steps=4", "--config.tensorboard=False", *overrides]
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


def max_difference(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in
               zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def sweep_config(**options):
    """The tiny training config with the quickstart's sweep (fig4, fig5; 3 seeds)."""
    config = tiny_config()
    config.sweep = quickstart.get_config().sweep
    config.sweep.update(options)
    return config


def fake_train(calls, fail=()):
    """A stand-in trainer for `execute.run_sweep`: records the run directories it is given,
    writes a done final.json (with the run's config) for each, fails where a directory
    contains a `fail` name."""
    def train_fn(settings, workdirs):
        calls.extend(workdirs)
        if any(name in workdir for name in fail for workdir in workdirs):
            raise RuntimeError("injected failure")
        records = []
        for config, workdir in zip((s.config for s in settings), workdirs):
            os.makedirs(workdir, exist_ok=True)
            record = {"status": "done", "ema_top1": 0.9, "ema_top5": 0.99, "params": 1,
                      "macs": 2, "images_per_s": 100.0, "config": config.to_dict()}
            with open(os.path.join(workdir, "final.json"), "w") as f:
                json.dump(record, f)
            records.append(record)
        return records
    return train_fn


HOLDER = ("import sys; from inception_flax.run import run_lock; run_lock.acquire(sys.argv[1]); "
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


def write_made_up(workdir, accuracies_by_variant):
    runs = []
    for variant, accuracies in accuracies_by_variant.items():
        for seed, accuracy in enumerate(accuracies):
            run_dir = os.path.join(workdir, variant, f"seed{seed}")
            runs.append({"variant": variant, "seed": seed, "dir": f"{variant}/seed{seed}",
                         "params": 10, "macs": 20})
            if accuracy is None:
                continue
            os.makedirs(run_dir)
            with open(os.path.join(run_dir, "final.json"), "w") as f:
                json.dump({"status": "done", "ema_top1": accuracy, "ema_top5": 0.99,
                           "params": 10, "macs": 20, "images_per_s": 50.0}, f)
    with open(os.path.join(workdir, "sweep.json"), "w") as f:
        json.dump({"sweep": {"baseline": "base", "paper": {"base": {"top1": 21.2}},
                             "notes": {"new": "a reconstruction"}}, "runs": runs}, f)


def straight_and_killed(command, tmp_path, kill_at: str, timeout: int = 900):
    """Runs `command(workdir)` to its end in `tmp_path/straight`; in `tmp_path/killed`, kills
    it (SIGKILL) once it prints `kill_at`, then runs it again to its end. Returns the two
    workdirs and the two complete runs' stdout (each asserted to have exited 0)."""
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    done = subprocess.run(command(straight), env=env(), capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    process = subprocess.Popen(command(killed), env=env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    wait_for(process, kill_at)
    kill(process)
    again = subprocess.run(command(killed), env=env(), capture_output=True, text=True,
                           cwd=ROOT, timeout=timeout)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    return straight, killed, done.stdout, again.stdout


# The ImageNet config at a test's size: batch 8 of 75×75 images, a narrow network with one
# module per grid and no auxiliary head, 3 steps on the fake data (4 classes, 24 training
# images: one epoch), logging every step, no shuffle buffer to speak of; the test session's
# compilation cache (helpers.env), not one per run.
IMAGENET_TINY = {"global_batch_size": 8, "eval_batch_size": 8, "image_size": 75,
                 "model.depth_multiplier": 0.1, "model.modules_per_grid": (1, 1, 1),
                 "model.aux_head": "none", "num_epochs": 1.0, "shuffle_buffer": 32,
                 "data_threads": 2, "log_every_steps": 1, "checkpoint_every_steps": 2,
                 "tensorboard": False, "compilation_cache": False}


def imagenet_config(dataset: str, data_dir: str, **overrides):
    """configs/imagenet_inception_v3.py on `dataset` in `data_dir` at IMAGENET_TINY."""
    from configs import imagenet_inception_v3
    config = imagenet_inception_v3.get_config()
    config.update_from_flattened_dict(dict(IMAGENET_TINY, dataset=dataset, data_dir=data_dir,
                                           **overrides))
    return config


def imagenet_flags(dataset: str, data_dir: str, **overrides) -> list[str]:
    """The same as `--config.X=V` flags of run_experiment.py."""
    fields = dict(IMAGENET_TINY, dataset=dataset, data_dir=data_dir, **overrides)
    return [f"--config.{k}={v!r}" if isinstance(v, tuple) else f"--config.{k}={v}"
            for k, v in fields.items()]


# Made-up top-1 errors: "far" is 3 points worse than the baseline (decided early), "near" the
# same (equivalent within the margin once it has seeds enough), per seed a shared data-order
# effect and a little noise of its own.
SHIFT = {"base": 0.0, "far": 3.0, "near": 0.1}


def made_up_error(variant, seed):
    rng = np.random.default_rng([seed, sorted(SHIFT).index(variant)])
    return 10 + SHIFT[variant] + np.random.default_rng(seed).normal(0, 0.6) + rng.normal(0, 0.3)


def stand_in(calls, stop_at=None):
    """A trainer that writes made-up records (with the run's config: the seeds share their
    data order), and raises KeyboardInterrupt (a kill) on the `stop_at`-th call."""
    def train_fn(settings, workdirs):
        records = []
        for config, workdir in zip((s.config for s in settings), workdirs):
            if stop_at is not None and len(calls) + 1 == stop_at:
                raise KeyboardInterrupt
            calls.append(os.path.relpath(workdir, os.path.dirname(os.path.dirname(workdir))))
            variant = os.path.basename(os.path.dirname(workdir))
            record = {"status": "done", "ema_top1": 1 - made_up_error(variant, config.seed) / 100,
                      "ema_top5": 0.99, "params": 1, "macs": 1, "images_per_s": 1.0,
                      "config": config.to_dict()}
            os.makedirs(workdir, exist_ok=True)
            with open(os.path.join(workdir, "final.json"), "w") as f:
                json.dump(record, f)
            records.append(record)
        return records
    return train_fn


def staged_config(**options):
    """A sweep run until decided of three made-up variants (base, far, near), 3 to 9 seeds."""
    return sweep_config(**{
        "axes": [{"base": {}, "far": {"learning_rate": 0.1}, "near": {"label_smoothing": 0.0}}],
        "baseline": "base", "seeds": tuple(range(9)), "until_decided": True, "min_seeds": 3,
        "max_seeds": 9, "seeds_per_stage": 2, "margin": 1.0, **options})
