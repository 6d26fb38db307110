"""A tiny fake ImageNet in each of the three forms labs hold it, for tests and for trying the
ImageNet path without ImageNet (docs/training.md, "Training on ImageNet"):

- `ilsvrc_tars`: ILSVRC2012's own files, `ILSVRC2012_img_train.tar` (one tar of JPEGs per
  synset, `n01440764.tar` holding `n01440764_1.JPEG`, ...) and `ILSVRC2012_img_val.tar` (flat
  `ILSVRC2012_val_00000001.JPEG`, ...), what `python -m inception_flax.prepare` takes. The
  validation images' labels are TFDS's (its `validation_labels.txt`, by file name), as for
  the real files.
- `image_folder`: `train/<synset>/*.JPEG` and `val/<synset>/*.JPEG`.
- `slim_tfrecords`: TF-slim's TFRecords as `build_imagenet_data.py` writes them
  (`train-00000-of-00002`, `validation-00000-of-00001`, its feature keys, 1-based labels).

    python -m tests.scripts.fake_imagenet --form ilsvrc_tars --out /tmp/fake/downloads/manual

Images are random colours at varied sizes (JPEG, RGB), a few per class.
"""

from __future__ import annotations

import argparse
import io
import os
import tarfile

import numpy as np

FORMS = ("ilsvrc_tars", "image_folder", "slim_tfrecords")


def synsets(count: int) -> list[str]:
    """The first `count` of ImageNet's 1,000 synsets in TFDS's (sorted) order."""
    import tensorflow_datasets as tfds
    path = tfds.core.tfds_path("datasets/imagenet2012/labels.txt")
    return path.read_text().split()[:count]


def validation_synsets(count: int) -> list[str]:
    """The synsets of ILSVRC2012_val_00000001.JPEG ... in TFDS's validation labels."""
    import tensorflow_datasets as tfds
    path = tfds.core.tfds_path("datasets/imagenet2012/validation_labels.txt")
    return path.read_text().split()[:count]


def jpeg(rng: np.random.Generator) -> bytes:
    """A small RGB JPEG of random size and colours."""
    from PIL import Image
    height, width = rng.integers(48, 120, size=2)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def ilsvrc_tars(out: str, classes: int = 4, per_class: int = 6, val: int = 12,
                seed: int = 0, make=jpeg) -> None:
    """ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in `out` (`make(rng)`: one image's
    bytes)."""
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    with tarfile.open(os.path.join(out, "ILSVRC2012_img_train.tar"), "w") as train:
        for synset in synsets(classes):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as members:
                for i in range(1, per_class + 1):
                    _add(members, f"{synset}_{i}.JPEG", make(rng))
            _add(train, f"{synset}.tar", inner.getvalue())
    with tarfile.open(os.path.join(out, "ILSVRC2012_img_val.tar"), "w") as tar:
        for i in range(1, val + 1):
            _add(tar, f"ILSVRC2012_val_{i:08d}.JPEG", make(rng))


def image_folder(out: str, classes: int = 4, per_class: int = 6, val_per_class: int = 3,
                 seed: int = 0, val_name: str = "val", make=jpeg) -> None:
    """train/<synset>/*.JPEG and <val_name>/<synset>/*.JPEG in `out`."""
    rng = np.random.default_rng(seed)
    number = 0
    for synset in synsets(classes):
        for split, count in (("train", per_class), (val_name, val_per_class)):
            os.makedirs(os.path.join(out, split, synset), exist_ok=True)
            for i in range(1, count + 1):
                number += 1
                name = (f"{synset}_{i}.JPEG" if split == "train"
                        else f"ILSVRC2012_val_{number:08d}.JPEG")
                with open(os.path.join(out, split, synset, name), "wb") as f:
                    f.write(make(rng))


def slim_example(encoded: bytes, filename: str, label: int, synset: str):
    """A tf.train.Example with `build_imagenet_data.py`'s `_convert_to_example` keys."""
    import tensorflow as tf

    def ints(*v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(v)))

    def floats(*v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=list(v)))

    def text(*v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(v)))

    try:
        height, width = tf.io.decode_jpeg(encoded).shape[:2]
    except tf.errors.InvalidArgumentError:  # a damaged image, on purpose: its size unknown
        height = width = 0
    return tf.train.Example(features=tf.train.Features(feature={
        "image/height": ints(int(height)), "image/width": ints(int(width)),
        "image/colorspace": text(b"RGB"), "image/channels": ints(3),
        "image/class/label": ints(label), "image/class/synset": text(synset.encode()),
        "image/class/text": text(synset.encode()),
        "image/object/bbox/xmin": floats(0.1), "image/object/bbox/xmax": floats(0.9),
        "image/object/bbox/ymin": floats(0.1), "image/object/bbox/ymax": floats(0.9),
        "image/object/bbox/label": ints(label), "image/format": text(b"JPEG"),
        "image/filename": text(filename.encode()), "image/encoded": text(encoded)}))


def slim_tfrecords(out: str, classes: int = 4, per_class: int = 6, val_per_class: int = 3,
                   train_shards: int = 2, val_shards: int = 1, seed: int = 0,
                   make=jpeg) -> None:
    """TF-slim's `train-0000i-of-0000N` and `validation-...` shards in `out`: label k + 1 for
    the k-th synset (1-based; 0 is TF-slim's background class)."""
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    names = synsets(classes)
    for split, count, shards in (("train", per_class, train_shards),
                                 ("validation", val_per_class, val_shards)):
        examples = [slim_example(make(rng), f"{s}_{i}.JPEG", k + 1, s)
                    for i in range(count) for k, s in enumerate(names)]
        for shard in range(shards):
            path = os.path.join(out, f"{split}-{shard:05d}-of-{shards:05d}")
            with tf.io.TFRecordWriter(path) as writer:
                for example in examples[shard::shards]:
                    writer.write(example.SerializeToString())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--form", choices=FORMS, required=True)
    parser.add_argument("--out", required=True, help="the folder to write into")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--per_class", type=int, default=6)
    args = parser.parse_args(argv)
    if args.form == "ilsvrc_tars":
        ilsvrc_tars(args.out, args.classes, args.per_class)
    else:
        globals()[args.form](args.out, args.classes, args.per_class)
    print(f"wrote a fake ImageNet ({args.form}, {args.classes} classes) in {args.out}")


if __name__ == "__main__":
    main()
