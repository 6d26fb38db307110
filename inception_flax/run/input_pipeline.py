"""Input pipelines: deterministic for a seed and resumable at any step.

Two sources, one contract (`Dataset.train_batches(start_step)`, `Dataset.eval_batches()`,
each yielding this process's part of every global batch as numpy arrays):

- In-memory arrays (Fashion-MNIST from Debian's IDX files, or any small TFDS dataset): each
  epoch is a permutation drawn from (seed, epoch); global batch k of the epoch is rows
  [k·B, (k+1)·B) of it, and process p takes its contiguous slice. Flips are drawn per global
  batch too, so the examples a step sees do not depend on the number of processes. Images stay
  uint8 at their stored size; `prepare_images` resizes and scales them on the accelerator.
- TFDS streaming via tf.data (ImageNet and other large datasets), as Flax's ImageNet example
  does: each process reads its own part of the split (`tfds.split_for_jax_process`), shuffles
  it with a seed per epoch and skips to the resumed position; every random crop, flip and colour
  change uses a stateless seed made of (seed, epoch, position), so a resumed run sees the same
  examples transformed the same way. The Inception preprocessing runs here, on the host.

tf.data was chosen over Grain because TFDS prepares ImageNet as TFRecords by default (Grain's
`tfds.data_source` needs ArrayRecord files) and because the Inception preprocessing is TF's own.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import zlib
from typing import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


@dataclasses.dataclass
class Dataset:
    name: str
    num_classes: int
    steps_per_epoch: int
    train_batches: Callable[[int], Iterator[dict]]  # start step → {"image", "label"}
    eval_batches: Callable[[], Iterator[dict]]  # → {"image", "label", "mask"}


class DataError(ValueError):
    """The data a config names cannot be read: bad input, said in one sentence."""


class DatasetNotFound(DataError):
    pass


class DatasetDamaged(DataError):
    pass


# ---------------------------------------------------------------------------------------------
# Images on the accelerator.

def prepare_images(images, image_size: int, dtype=jnp.float32):
    """Model input from a batch: uint8 images (any size, 1 or 3 channels) are scaled to
    [-1, 1] in `dtype`, given 3 channels and resized (bilinear) to image_size × image_size;
    float images come from the TFDS pipeline already prepared and pass through. (A float64
    model gets float64 inputs: XLA:CPU's float32 resize rounds differently for different
    batch shapes, which would show as a difference between 1 device and 8.)"""
    if images.dtype != jnp.uint8:
        return images
    images = images.astype(dtype) / 127.5 - 1.0
    if images.shape[-1] == 1:
        images = jnp.repeat(images, 3, axis=-1)
    if images.shape[1:3] != (image_size, image_size):
        images = jax.image.resize(images, (images.shape[0], image_size, image_size, 3),
                                  method="bilinear")
    return images


# ---------------------------------------------------------------------------------------------
# In-memory arrays.

def _read_idx(path: str) -> np.ndarray:
    """A gzipped IDX file's array; `DatasetDamaged` where it is cut short or not IDX."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
        ndim = data[3]
        shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
        return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (OSError, EOFError, IndexError, ValueError, zlib.error) as error:
        raise DatasetDamaged(
            f"{path} is damaged ({type(error).__name__}: {error}); reinstall it (`apt-get "
            "install --reinstall dataset-fashion-mnist`) or point config.data_dir at an intact "
            "copy.") from None


@functools.lru_cache(maxsize=2)
def load_fashion_mnist(directory: str = FASHION_MNIST_DIR):
    """(train_images, train_labels, test_images, test_labels) from the IDX files of Debian's
    `dataset-fashion-mnist`; images as uint8 N×28×28×1 (read once per process; the seeds
    trained together share them)."""
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    paths = [os.path.join(directory, n) for n in names]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise DatasetNotFound(
            f"Fashion-MNIST is not at {directory} (missing {os.path.basename(missing[0])}); "
            "install it with `apt-get install dataset-fashion-mnist`, or set "
            "config.dataset='fashion_mnist' to use TFDS's copy from config.data_dir.")
    train_x, train_y, test_x, test_y = (_read_idx(p) for p in paths)
    return train_x[..., None], train_y.astype(np.int32), test_x[..., None], test_y.astype(np.int32)


def array_dataset(name: str, arrays, num_classes: int, global_batch: int, eval_batch: int,
                  seed: int, flip: bool) -> Dataset:
    train_x, train_y, test_x, test_y = arrays
    processes, index = jax.process_count(), jax.process_index()
    local, local_eval = global_batch // processes, eval_batch // processes
    steps_per_epoch = len(train_x) // global_batch

    def train_batches(start_step: int):
        step = start_step
        while True:
            epoch, k = divmod(step, steps_per_epoch)
            order = np.random.default_rng([seed, epoch]).permutation(len(train_x))
            rows = order[k * global_batch:(k + 1) * global_batch][index * local:(index + 1) * local]
            images = train_x[rows]
            if flip:
                flips = np.random.default_rng([seed, epoch, k, 1]).random(global_batch) < 0.5
                flips = flips[index * local:(index + 1) * local]
                images = np.where(flips[:, None, None, None], images[:, :, ::-1], images)
            yield {"image": images, "label": train_y[rows]}
            step += 1

    def eval_batches():
        for start in range(0, len(test_x), eval_batch):
            rows = np.arange(start, start + eval_batch)[index * local_eval:(index + 1) * local_eval]
            mask = rows < len(test_x)
            rows = np.where(mask, rows, 0)
            yield {"image": test_x[rows], "label": test_y[rows], "mask": mask}

    return Dataset(name, num_classes, steps_per_epoch, train_batches, eval_batches)


# ---------------------------------------------------------------------------------------------
# TFDS through tf.data.

def _tf():
    import tensorflow as tf
    tf.config.set_visible_devices([], "GPU")  # the accelerator is JAX's
    return tf


def _unit_rgb(image):
    """uint8 (1 or 3 channels) → float32 RGB in [0, 1]."""
    tf = _tf()
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    return tf.cast(image, tf.float32) / 255.0


def inception_train_preprocess(image, seed, image_size: int, color_distortion: bool):
    """TF-slim's `preprocess_for_train`: a random crop covering 5-100% of the image with aspect
    ratio 3/4-4/3 and at least 10% of the object (the whole image), resized to image_size,
    randomly flipped, optionally colour-distorted, scaled to [-1, 1]. Stateless: `seed` is a
    [2] int tensor."""
    tf = _tf()
    seeds = tf.random.experimental.stateless_split(seed, 6)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seeds[0],
        min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.05, 1.0),
        max_attempts=100, use_image_if_no_bounding_boxes=True)
    image = tf.image.resize(_unit_rgb(tf.slice(image, begin, size)), (image_size, image_size))
    image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    if color_distortion:  # slim's distort_color, ordering 0
        image = tf.image.stateless_random_brightness(image, 32.0 / 255.0, seeds[2])
        image = tf.image.stateless_random_saturation(image, 0.5, 1.5, seeds[3])
        image = tf.image.stateless_random_hue(image, 0.2, seeds[4])
        image = tf.image.stateless_random_contrast(image, 0.5, 1.5, seeds[5])
        image = tf.clip_by_value(image, 0.0, 1.0)
    return image * 2.0 - 1.0


def inception_eval_preprocess(image, image_size: int, central_fraction: float = 0.875):
    """TF-slim's `preprocess_for_eval`: central crop of 87.5%, resize, scale to [-1, 1]."""
    tf = _tf()
    image = tf.image.central_crop(_unit_rgb(image), central_fraction)
    return tf.image.resize(image, (image_size, image_size)) * 2.0 - 1.0


def simple_preprocess(image, image_size: int, flip_seed=None):
    """Resize, and a random flip where `flip_seed` is given, for small datasets
    (Fashion-MNIST) and for evaluation; scaled to [-1, 1]."""
    tf = _tf()
    image = tf.image.resize(_unit_rgb(image), (image_size, image_size))
    if flip_seed is not None:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return image * 2.0 - 1.0


def tfds_prepared(name: str, data_dir: str | None) -> bool:
    """Whether TFDS has `name` prepared in `data_dir` (nothing is downloaded)."""
    _tf()  # TensorFlow, imported by TFDS, kept off the accelerator
    import tensorflow_datasets as tfds
    try:
        return tfds.builder(name, data_dir=data_dir).is_prepared()
    except Exception:  # noqa: BLE001 (an unknown name or an unreadable folder)
        return False


def tfds_builder(name: str, data_dir: str | None):
    _tf()  # TensorFlow, imported by TFDS, kept off the accelerator
    import tensorflow_datasets as tfds
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # unknown name
        raise DatasetNotFound(f"TFDS has no dataset {name!r} ({error}).") from None
    if not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except Exception as error:
            raise DatasetNotFound(
                f"TFDS dataset {name!r} is not prepared in {builder.data_dir} and could not be "
                f"downloaded ({type(error).__name__}). Prepare it there first (ImageNet: put "
                "the ILSVRC2012 tar files in <data_dir>/downloads/manual and run "
                f"`tfds build {name} --data_dir=...`), then set config.data_dir.") from None
    return builder


def _num_examples(builder, split) -> int:
    """The split's size from the dataset's metadata, else (as under `tfds.testing.mock_data`,
    whose metadata is empty) by counting."""
    try:
        return builder.info.splits[split].num_examples
    except KeyError:
        return int(builder.as_dataset(split=split).reduce(0, lambda count, _: count + 1))


def tfds_dataset(config, global_batch: int, eval_batch: int) -> Dataset:
    import tensorflow_datasets as tfds
    tf = _tf()
    builder = tfds_builder(config.dataset, config.data_dir)
    info = builder.info
    num_classes = info.features["label"].num_classes
    processes = jax.process_count()
    local, local_eval = global_batch // processes, eval_batch // processes
    train_split = tfds.split_for_jax_process(config.train_split, drop_remainder=True)
    num_train_local = _num_examples(builder, train_split)
    steps_per_epoch = num_train_local // local
    num_eval = _num_examples(builder, config.eval_split)
    size, seed = config.image_size, config.seed
    inception, flip = config.preprocessing == "inception", config.preprocessing != "none"
    options = tf.data.Options()
    options.deterministic = True
    options.threading.private_threadpool_size = max(1, config.data_threads)

    def train_batches(start_step: int):
        epoch, position = divmod(start_step, steps_per_epoch)
        while True:
            ds = builder.as_dataset(split=train_split, shuffle_files=False)
            ds = ds.shuffle(config.shuffle_buffer, seed=seed * 1_000_003 + epoch,
                            reshuffle_each_iteration=False)
            ds = ds.enumerate().skip(position * local).take(steps_per_epoch * local)

            def preprocess(i, example, epoch=epoch):
                key = tf.stack([tf.cast(seed * 1_000_003 + epoch, tf.int64), i])
                if inception:
                    image = inception_train_preprocess(example["image"], key, size,
                                                       config.color_distortion)
                else:  # "none" turns the flip off, as for in-memory data
                    image = simple_preprocess(example["image"], size, key if flip else None)
                return {"image": image, "label": tf.cast(example["label"], tf.int32)}

            ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
            ds = ds.batch(local, drop_remainder=True).prefetch(2).with_options(options)
            yield from tfds.as_numpy(ds)
            epoch, position = epoch + 1, 0

    def eval_batches():
        split = tfds.split_for_jax_process(config.eval_split, drop_remainder=False)
        ds = builder.as_dataset(split=split, shuffle_files=False)

        def preprocess(example):
            image = (inception_eval_preprocess(example["image"], size) if inception
                     else simple_preprocess(example["image"], size))
            return {"image": image, "label": tf.cast(example["label"], tf.int32),
                    "mask": tf.constant(True)}

        ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).with_options(options)
        # Pad to whole batches of the same count on every process; padding has mask False.
        count = _num_examples(builder, split)
        batches = -(-num_eval // eval_batch)
        padding = batches * local_eval - count
        pad = ds.take(1).repeat(padding).map(lambda e: dict(e, mask=tf.constant(False)))
        ds = ds.concatenate(pad).batch(local_eval).prefetch(2)
        yield from tfds.as_numpy(ds)

    return Dataset(config.dataset, num_classes, steps_per_epoch, train_batches, eval_batches)


def tfds_arrays(name: str, data_dir: str | None, train_split: str, eval_split: str):
    """A small TFDS dataset loaded whole into memory (uint8 images, int32 labels)."""
    import tensorflow_datasets as tfds
    builder = tfds_builder(name, data_dir)
    arrays = []
    for split in (train_split, eval_split):
        data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
        arrays += [data["image"], data["label"].astype(np.int32)]
    return arrays, builder.info.features["label"].num_classes


def default_arrays(config):
    """The default data's arrays and class count: Debian's Fashion-MNIST (in
    `config.data_dir`, else `FASHION_MNIST_DIR`), or, only where no folder was named and
    TFDS has its `fashion_mnist` prepared, that copy (no download is attempted)."""
    try:
        return load_fashion_mnist(config.data_dir or FASHION_MNIST_DIR), 10
    except DatasetNotFound as debian_error:
        if config.data_dir or not tfds_prepared("fashion_mnist", None):
            raise debian_error from None
        return tfds_arrays("fashion_mnist", None, "train", "test")


def check_available(config) -> None:
    """Raises what `create` would (`DatasetNotFound`, `DatasetDamaged`) where `config`'s data
    cannot be had, without building a pipeline: Debian's files missing or damaged, a TFDS
    dataset unknown, or not prepared and not downloadable (it is downloaded here where it can
    be, as `create` would). A TFDS dataset's records are read only in training."""
    if config.dataset == "fashion_mnist_debian":
        default_arrays(config)
    else:
        tfds_builder(config.dataset, config.data_dir)


def create(config, global_batch: int, eval_batch: int) -> Dataset:
    """The dataset named by `config.dataset`: "fashion_mnist_debian" (the default data,
    `default_arrays`: Debian's files, else TFDS's `fashion_mnist` where it is prepared), or
    any TFDS image-classification dataset (downloaded where it is not prepared and can be),
    streamed (`config.in_memory=False`) or held in memory."""
    flip = config.preprocessing != "none"
    if config.dataset == "fashion_mnist_debian":
        arrays, num_classes = default_arrays(config)
        return array_dataset(config.dataset, arrays, num_classes, global_batch, eval_batch,
                             config.seed, flip)
    if config.in_memory:
        if config.preprocessing == "inception":
            raise ValueError("preprocessing='inception' needs the streaming TFDS pipeline; set "
                             "config.in_memory=False or preprocessing='resize_flip'.")
        arrays, num_classes = tfds_arrays(config.dataset, config.data_dir, config.train_split,
                                          config.eval_split)
        return array_dataset(config.dataset, arrays, num_classes, global_batch, eval_batch,
                             config.seed, flip)
    return tfds_dataset(config, global_batch, eval_batch)
