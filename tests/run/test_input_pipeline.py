"""Input pipelines: the TFDS path on mock data, Fashion-MNIST's in-memory batches, and the
preprocessing choices, deterministic and resumable."""

import numpy as np
import pytest

from inception_flax.run import input_pipeline, train
from tests.helpers import needs_fashion_mnist
from tests.scripts.tiny import tiny_config


@pytest.mark.slow
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


@pytest.mark.slow
def test_preprocessing_none_turns_the_flip_off_when_streaming_too():
    import tensorflow_datasets as tfds
    batches = {}
    for preprocessing in ("none", "resize_flip"):
        config = tiny_config(steps=2)
        config.dataset, config.train_split, config.eval_split = "mnist", "train", "test"
        config.in_memory, config.preprocessing, config.shuffle_buffer = False, preprocessing, 64
        with tfds.testing.mock_data(num_examples=32):
            batches[preprocessing] = next(input_pipeline.create(config, 16, 16)
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
