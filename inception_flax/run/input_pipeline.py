"""Input pipelines: deterministic for a seed and resumable at any step.

Two sources, one contract (`Dataset.train_batches(start_step)`, `Dataset.eval_batches()`,
each yielding this process's part of every global batch as numpy arrays):

- In-memory arrays (Fashion-MNIST from Debian's IDX files, or any small TFDS dataset): each
  epoch is a permutation drawn from (seed, epoch); global batch k of the epoch is rows
  [k·B, (k+1)·B) of it, and process p takes its contiguous slice. Flips are drawn per global
  batch too, so the examples a step sees do not depend on the number of processes. Images stay
  uint8 at their stored size; `prepare_images` resizes and scales them on the accelerator.
- Streaming via tf.data (ImageNet and other large datasets), as Flax's ImageNet example does,
  from a TFDS dataset, an ImageFolder tree or TF-slim's TFRecords (`image_sources`): each
  process reads its own part of the split, in an order drawn per epoch (a shuffle buffer with
  a seed per epoch over records stored shuffled; a permutation of the whole split for an
  ImageFolder), and skips to the resumed position; every random crop, flip and colour change
  uses a stateless seed made of (seed, epoch, position), so a resumed run sees the same
  examples transformed the same way. Images are decoded (TensorFlow's `decode_image`) and
  preprocessed here, on the host. An image that cannot be read stops the read with a
  `DatasetDamaged` naming it (the batch that failed is read again one example at a time).

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

from inception_flax.run import image_sources
from inception_flax.run.image_sources import (DataError, DatasetDamaged, DatasetNotFound,
                                              DatasetTooSmall, one_line)

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


@dataclasses.dataclass
class Dataset:
    name: str
    num_classes: int
    steps_per_epoch: int
    train_batches: Callable[[int], Iterator[dict]]  # start step → {"image", "label"}
    eval_batches: Callable[[], Iterator[dict]]  # → {"image", "label", "mask", "index"}


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
            yield {"image": test_x[rows], "label": test_y[rows], "mask": mask,
                   "index": rows.astype(np.int32)}

    return Dataset(name, num_classes, steps_per_epoch, train_batches, eval_batches)


# ---------------------------------------------------------------------------------------------
# TFDS through tf.data.

def _tf():
    return image_sources.tf()


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
        with image_sources.quiet_tfds():
            return tfds.builder(name, data_dir=data_dir).is_prepared()
    except Exception:  # noqa: BLE001 (an unknown name or an unreadable folder)
        return False


def decode(encoded):
    """An image from its stored bytes (JPEG, PNG, BMP or GIF: TensorFlow's `decode_image`)
    as uint8 RGB; an image already decoded passes through."""
    tf = _tf()
    if encoded.dtype != tf.string:
        return encoded
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def _labelled(label, num_classes: int):
    """`label`, checked to be a class of the data (a record outside them stops the read)."""
    tf = _tf()
    inside = tf.logical_and(label >= 0, label < num_classes)
    with tf.control_dependencies([tf.debugging.assert_equal(
            inside, True, message=f"a label outside the data's {num_classes} classes")]):
        return tf.identity(label)


def _read(dataset, first: int, diagnose) -> Iterator[dict]:
    """The batches of a tf.data `dataset` as numpy arrays; an error reading batch k (counted
    from `first`) is raised as `diagnose(k, error)`, a `DataError` naming the example."""
    tf = _tf()
    iterator, k = dataset.as_numpy_iterator(), first
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as error:
            raise diagnose(k, error) from None
        yield batch
        k += 1


def _diagnose(elements, transform, split: str, source) -> DataError:
    """Which of `elements` (one batch's, undecoded, with their positions) cannot be read or
    decoded, or has a label outside the data's classes: the error naming it. Eager, one
    example at a time (only after a batch failed), libjpeg's own warnings kept off stderr."""
    tf = _tf()
    where = f"the {split} split of {source.where}"
    with image_sources.quiet_stderr():
        try:
            for i, element in elements:
                name = element["name"].numpy().decode(errors="replace") or f"example {int(i)}"
                label = int(element["label"])
                if not 0 <= label < source.num_classes:
                    return DatasetDamaged(
                        f"{name} in {where} has label {label + source.label_base}, outside the "
                        f"data's {source.num_classes} classes ({source.label_rule}); rebuild the "
                        "data with one set of labels")
                try:
                    transform(i, element)
                except tf.errors.OpError as error:
                    return DatasetDamaged(f"{name} in {where} cannot be read "
                                          f"({one_line(error)}); {source.repair}")
        except tf.errors.OpError as error:  # the stored records themselves
            return DatasetDamaged(f"{where} cannot be read ({one_line(error)}); restore its "
                                  "files")
    return DatasetDamaged(f"{where} cannot be read; restore its files")


def streaming_dataset(config, global_batch: int, eval_batch: int,
                      source: image_sources.Source | None = None) -> Dataset:
    """The tf.data pipeline of a source in one of the three forms (`image_sources`): this
    process's part of each global batch, decoded and preprocessed on the host."""
    tf = _tf()
    source = source or image_sources.open_source(config)
    processes, index = jax.process_count(), jax.process_index()
    local, local_eval = global_batch // processes, eval_batch // processes
    steps_per_epoch = source.check(config.train_split, config.eval_split, global_batch,
                                   processes)
    train = source.part(config.train_split, processes, index, config.seed, global_batch)
    evaluation = source.part(config.eval_split, processes, index)
    num_eval, num_classes = source.examples(config.eval_split), source.num_classes
    size, seed = config.image_size, config.seed
    inception, flip = config.preprocessing == "inception", config.preprocessing != "none"
    options = tf.data.Options()
    options.deterministic = True
    options.threading.private_threadpool_size = max(1, config.data_threads)

    def ordered(epoch: int):
        """This process's undecoded examples of `epoch`, in its order, with their positions."""
        ds = train.read(epoch)
        if not train.shuffled:  # stored shuffled (TFDS, TF-slim): a buffer, a seed per epoch
            ds = ds.shuffle(config.shuffle_buffer, seed=seed * 1_000_003 + epoch,
                            reshuffle_each_iteration=False)
        return ds.enumerate()

    def augment(epoch: int):
        def transform(i, example):
            key = tf.stack([tf.cast(seed * 1_000_003 + epoch, tf.int64), i])
            image = decode(example["encoded"])
            if inception:
                image = inception_train_preprocess(image, key, size, config.color_distortion)
            else:  # "none" turns the flip off, as for in-memory data
                image = simple_preprocess(image, size, key if flip else None)
            return {"image": image, "label": _labelled(example["label"], num_classes)}
        return transform

    def train_batches(start_step: int):
        epoch, position = divmod(start_step, steps_per_epoch)
        while True:
            ds = ordered(epoch).skip(position * local).take((steps_per_epoch - position) * local)
            ds = ds.map(augment(epoch), num_parallel_calls=tf.data.AUTOTUNE)
            ds = ds.batch(local, drop_remainder=True).prefetch(2).with_options(options)
            yield from _read(ds, position, lambda k, error, epoch=epoch: _diagnose(
                ordered(epoch).skip(k * local).take(local), augment(epoch),
                config.train_split, source))
            epoch, position = epoch + 1, 0

    def prepare_eval(i, example):
        image = decode(example["encoded"])
        image = (inception_eval_preprocess(image, size) if inception
                 else simple_preprocess(image, size))
        return {"image": image, "label": _labelled(example["label"], num_classes),
                "mask": tf.constant(True),
                "index": tf.cast(evaluation.offset + i, tf.int32)}

    def eval_batches():
        ds = evaluation.read(None).enumerate().map(prepare_eval,
                                                   num_parallel_calls=tf.data.AUTOTUNE)
        # Pad to whole batches of the same count on every process; padding has mask False.
        padding = -(-num_eval // eval_batch) * local_eval - evaluation.count
        pad = ds.take(1).repeat(padding).map(lambda e: dict(e, mask=tf.constant(False)))
        ds = ds.concatenate(pad).batch(local_eval).prefetch(2).with_options(options)
        yield from _read(ds, 0, lambda k, error: _diagnose(
            evaluation.read(None).enumerate().skip(k * local_eval).take(local_eval),
            prepare_eval, config.eval_split, source))

    return Dataset(config.dataset, num_classes, steps_per_epoch, train_batches, eval_batches)


def tfds_arrays(name: str, data_dir: str | None, train_split: str, eval_split: str):
    """A small TFDS dataset loaded whole into memory (uint8 images, int32 labels)."""
    import tensorflow_datasets as tfds
    source = image_sources.TFDSSource(name, data_dir)
    arrays = []
    for split in (train_split, eval_split):
        source.examples(split)  # the split there, with its shards
        data = tfds.as_numpy(source.builder.as_dataset(split=split, batch_size=-1))
        arrays += [data["image"], data["label"].astype(np.int32)]
    return arrays, source.num_classes


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


def _arrays(config):
    """(arrays, classes) of in-memory data (the default data, or a TFDS dataset held whole)."""
    if config.dataset == "fashion_mnist_debian":
        return default_arrays(config)
    if config.dataset in image_sources.STREAMED:
        raise ValueError(f"config.dataset={config.dataset!r} is streamed from its files, not "
                         "held in memory; set --config.in_memory=False.")
    if config.preprocessing == "inception":
        raise ValueError("preprocessing='inception' needs the streaming pipeline; set "
                         "config.in_memory=False or preprocessing='resize_flip'.")
    return tfds_arrays(config.dataset, config.data_dir, config.train_split, config.eval_split)


def in_memory(config) -> bool:
    return config.dataset == "fashion_mnist_debian" or bool(config.in_memory)


def num_classes(config) -> int:
    """The classes of `config`'s data, from its own metadata (`DataError` where it cannot be
    read)."""
    if in_memory(config):
        return _arrays(config)[1]
    return image_sources.open_source(config).num_classes


def check_available(config) -> None:
    """Raises what `create` would (a `DataError`, or a ValueError for a config that cannot
    hold its data) before anything is written: Debian's files missing or damaged; a TFDS
    dataset unknown or not prepared (nothing is downloaded or prepared: `python -m
    inception_flax.prepare` does that); a folder form not there or not recognised; a split,
    shard or file missing, a shard cut short; fewer examples than one global batch. Images
    are decoded only in training (a corrupt one is named then)."""
    if in_memory(config):
        arrays, _ = _arrays(config)
        _check_size(len(arrays[0]), len(arrays[2]), config.global_batch_size, config)
    else:
        image_sources.open_source(config).check(config.train_split, config.eval_split,
                                                config.global_batch_size, jax.process_count())


def _check_size(train: int, evaluation: int, global_batch: int, config) -> None:
    if train < global_batch:
        raise image_sources.DatasetTooSmall(
            f"the {config.train_split} split of {config.dataset} has {train} examples, fewer "
            f"than one global batch of {global_batch}; set "
            f"--config.global_batch_size={train} or less, or give it more data.")
    if evaluation < 1:
        raise image_sources.DatasetTooSmall(f"the {config.eval_split} split of {config.dataset} "
                                            "is empty; give it examples.")


def create(config, global_batch: int, eval_batch: int) -> Dataset:
    """The dataset named by `config.dataset`: "fashion_mnist_debian" (the default data,
    `default_arrays`: Debian's files, else TFDS's `fashion_mnist` where it is prepared), a
    TFDS image-classification dataset prepared in `config.data_dir` (held in memory with
    `config.in_memory`, else streamed), or ImageNet's folder forms "image_folder" and
    "slim_tfrecords" (streamed): `image_sources`. Nothing is downloaded or prepared."""
    if in_memory(config):
        arrays, classes = _arrays(config)
        _check_size(len(arrays[0]), len(arrays[2]), global_batch, config)
        return array_dataset(config.dataset, arrays, classes, global_batch, eval_batch,
                             config.seed, config.preprocessing != "none")
    return streaming_dataset(config, global_batch, eval_batch)
