"""Input pipelines: ImageNet's three forms end to end (tiny fakes, tests/conftest.py), a corrupt
image named and the run resumed, Fashion-MNIST's in-memory batches, and the preprocessing
choices, deterministic and resumable."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from inception_flax.run import image_sources, input_pipeline, train
from tests.helpers import ROOT, env, imagenet_config, imagenet_flags, needs_fashion_mnist
from tests.scripts.tiny import tiny_config


DATA = {"imagenet2012": "tfds_imagenet", "slim_tfrecords": "slim_tfrecords"}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["imagenet2012", "slim_tfrecords"])
def test_each_form_of_imagenet_trains_end_to_end(request, tmp_path, dataset):
    """configs/imagenet_inception_v3.py through run_experiment.py on a fake form: 3 steps,
    evaluated on all 12 validation images, with the data's classes (the ImageFolder tree:
    the sweep below)."""
    data_dir = request.getfixturevalue(DATA[dataset])
    workdir = str(tmp_path / "run")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "run_experiment.py"), "--config",
         os.path.join(ROOT, "configs", "imagenet_inception_v3.py"), "--workdir", workdir,
         *imagenet_flags(dataset, data_dir)], env=env(), capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    final = json.load(open(os.path.join(workdir, "final.json")))
    assert final["status"] == "done" and final["step"] == 3 and final["eval_examples"] == 12
    assert final["config"]["model"]["num_classes"] == (1000 if dataset == "imagenet2012" else 4)


@pytest.mark.slow
def test_a_sweep_of_two_variants_on_imagenet_writes_its_table(image_folder, tmp_path):
    """experiments/factorization.py:imagenet, two variants of one seed, on the ImageFolder
    tree: each run trains 3 steps with a 4-way head, evaluated on all 12 images."""
    workdir = str(tmp_path / "sweep")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "run_experiment.py"), "--config",
         os.path.join(ROOT, "experiments", "factorization.py") + ":imagenet",
         "--workdir", workdir, *imagenet_flags("image_folder", image_folder),
         "--config.sweep.only=released,35x35_fig5", "--config.sweep.seeds=(0,)"],
        env=env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = open(os.path.join(workdir, "results.md")).read()
    assert "| released |" in table and "| 35x35_fig5 (a) |" in table and "1 done" in table
    for variant in ("released", "35x35_fig5"):
        final = json.load(open(os.path.join(workdir, variant, "seed0", "final.json")))
        assert final["status"] == "done" and final["step"] == 3
        assert final["eval_examples"] == 12 and final["config"]["model"]["num_classes"] == 4


def corrupt(path: str) -> bytes:
    """Cuts the image at `path` to a third; returns what it held."""
    whole = open(path, "rb").read()
    open(path, "wb").write(whole[:len(whole) // 3])
    return whole


@pytest.mark.slow
def test_a_corrupt_image_is_named_and_the_run_goes_on_once_it_is_replaced(image_folder,
                                                                          tmp_path):
    """A training image that cannot be decoded: one sentence naming it, the run saved at the
    step it stopped at; replaced, the same call resumes there and finishes. A validation
    image found after training: the trained run is saved, and once it is replaced the same
    call evaluates it without training again."""
    import shutil
    data_dir = str(tmp_path / "data")
    shutil.copytree(image_folder, data_dir)
    config = imagenet_config("image_folder", data_dir, num_epochs=2.0,
                             checkpoint_every_steps=100)
    data = input_pipeline.create(config, 8, 8)
    source = image_sources.open_source(config)
    first_epoch = source.part("train", 1, 0, seed=0, global_batch=8).read(0)
    bad = [e["name"].numpy().decode() for e in first_epoch][16]  # first read at step 2
    whole = corrupt(bad)
    workdir = str(tmp_path / "run")
    with pytest.raises(input_pipeline.DatasetDamaged) as raised:
        train.train_and_evaluate(config, workdir)
    message = str(raised.value)
    assert message.startswith(f"{bad} in the train split of the ImageFolder tree in {data_dir} "
                              "cannot be read (")
    assert message.endswith("replace it with an intact copy (removing it would change the "
                            "run's data), then the same command resumes the run at step 2.")
    assert "\n" not in message
    assert os.listdir(os.path.join(workdir, "checkpoints")) == ["2"]
    open(bad, "wb").write(whole)
    record = train.train_and_evaluate(config, workdir)
    assert record["status"] == "done" and record["step"] == 6 and record["eval_examples"] == 12
    assert data.steps_per_epoch == 3

    val = sorted(os.path.join(d, n) for d, _, ns in os.walk(os.path.join(data_dir, "val"))
                 for n in ns)[5]
    whole = corrupt(val)
    other = str(tmp_path / "run2")
    with pytest.raises(input_pipeline.DatasetDamaged) as raised:
        train.train_and_evaluate(config, other)
    assert str(raised.value).startswith(f"{val} in the validation split of the ImageFolder")
    assert str(raised.value).endswith("then the same command evaluates the run (trained and "
                                      "saved at step 6).")
    open(val, "wb").write(whole)
    again = train.train_and_evaluate(config, other)
    assert again["status"] == "done" and again["eval_examples"] == 12
    assert again["ema_top1"] == record["ema_top1"]  # the same run, evaluated


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


@pytest.mark.slow
def test_preprocessing_none_turns_the_flip_off_when_streaming_too(image_folder):
    batches = {}
    for preprocessing in ("none", "resize_flip"):
        config = imagenet_config("image_folder", image_folder, preprocessing=preprocessing)
        batches[preprocessing] = next(input_pipeline.create(config, 8, 8)
                                      .train_batches(0))["image"]
    mirrored = [not np.array_equal(a, b) for a, b in zip(batches["none"],
                                                         batches["resize_flip"])]
    for a, b, flipped in zip(batches["none"], batches["resize_flip"], mirrored):
        np.testing.assert_array_equal(a, b[:, ::-1] if flipped else b)
    assert 0 < sum(mirrored) < len(mirrored)  # the same examples, some flipped only with a flip


def test_a_data_dir_without_fashion_mnist_is_one_sentence_without_tfds(tmp_path, monkeypatch):
    def no_tfds(*args):
        raise AssertionError("TFDS was consulted")
    monkeypatch.setattr(input_pipeline, "tfds_prepared", no_tfds)
    monkeypatch.setattr(input_pipeline, "tfds_arrays", no_tfds)
    config = tiny_config(data_dir=str(tmp_path))
    with pytest.raises(input_pipeline.DatasetNotFound) as raised:
        input_pipeline.create(config, 16, 100)
    assert str(raised.value).startswith(f"Fashion-MNIST is not at {tmp_path} (missing "
                                        "train-images-idx3-ubyte.gz); install it with")


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_a_truncated_idx_file_is_one_sentence(tmp_path, cut):
    """Cut in the compressed stream (EOFError) or in the array behind a whole-looking one."""
    import gzip
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    payload = bytes([0, 0, 8, 1]) + (1000).to_bytes(4, "big") + bytes(range(200)) * 5
    whole = gzip.compress(payload if cut < 0.9 else payload[:-10])
    path.write_bytes(whole[:int(len(whole) * cut)] if cut < 0.9 else whole)
    with pytest.raises(input_pipeline.DatasetDamaged) as raised:
        input_pipeline._read_idx(str(path))
    message = str(raised.value)
    assert message.startswith(f"{path} is damaged (") and message.count("; ") == 1
    assert message.endswith("or point config.data_dir at an intact copy.")
