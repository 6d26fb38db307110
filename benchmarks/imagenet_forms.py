"""ImageNet's three forms (TFDS prepared from ILSVRC2012's tars, an ImageFolder tree, TF-slim's
TFRecords) on a fake ImageNet of ImageNet's image size: the prepare command's time, and each
form's whole input pipeline (reading, decoding, the ImageNet config's preprocessing at 299 with
colour distortion, batching) in images/s on one core.

    uv run python benchmarks/imagenet_forms.py [--classes 16] [--per_class 128] [--json out.json]

The images are benchmarks/input_pipeline.py's synthetic 500 × 375 JPEGs (quality 90, ~45 KB),
written in each form by tests/scripts/fake_imagenet.py. Each pipeline runs pinned to one core
(`sched_setaffinity`) with `config.data_threads=1`: the pipeline keeps up with a train step of
B images taking t seconds on about B / (t × figure) cores. Figures are the best of `--rounds`
passes (training: an epoch each, after the first epoch; evaluation: the validation split),
each timed after its first batch (which traces the pipeline and fills the shuffle buffer):
the steady rate, as over ImageNet's epochs of thousands of steps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

from benchmarks.input_pipeline import jpegs  # noqa: E402
from configs import imagenet_inception_v3  # noqa: E402
from inception_flax.run import input_pipeline, preparation  # noqa: E402
from tests.scripts import fake_imagenet  # noqa: E402


def make_forms(root: str, classes: int, per_class: int) -> dict:
    """The three forms in `root`, from one pool of ImageNet-size JPEGs; {dataset: data_dir},
    and the prepare command's seconds."""
    pool = jpegs(64)
    make = lambda rng: pool[rng.integers(len(pool))]  # noqa: E731
    val = classes * per_class // 4
    tars = os.path.join(root, "tfds", "downloads", "manual")
    fake_imagenet.ilsvrc_tars(tars, classes, per_class, val, make=make)
    began = time.perf_counter()
    preparation.prepare("imagenet2012", os.path.join(root, "tfds"), say=lambda *_: None)
    prepared = time.perf_counter() - began
    fake_imagenet.image_folder(os.path.join(root, "folder"), classes, per_class,
                               val // classes, make=make)
    fake_imagenet.slim_tfrecords(os.path.join(root, "slim"), classes, per_class,
                                 val // classes, train_shards=4, make=make)
    return {"imagenet2012": os.path.join(root, "tfds"),
            "image_folder": os.path.join(root, "folder"),
            "slim_tfrecords": os.path.join(root, "slim")}, prepared


def pipeline_rate(dataset: str, data_dir: str, batch: int, size: int, rounds: int) -> dict:
    config = imagenet_inception_v3.get_config()
    config.update_from_flattened_dict({"dataset": dataset, "data_dir": data_dir,
                                       "image_size": size, "data_threads": 1,
                                       "shuffle_buffer": 512})
    began = time.perf_counter()
    data = input_pipeline.create(config, batch, batch)
    opened = time.perf_counter() - began
    steps = data.steps_per_epoch
    train = []
    for epoch in range(1, rounds + 1):
        batches = data.train_batches(epoch * steps)
        next(batches)  # traces the pipeline, fills the buffer
        began = time.perf_counter()
        for _ in range(steps - 1):
            next(batches)
        train.append((steps - 1) * batch / (time.perf_counter() - began))
    evaluation = []
    for _ in range(rounds):  # after each pass's first batch (which traces it)
        batches = data.eval_batches()
        next(batches)
        began = time.perf_counter()
        count = sum(int(b["mask"].sum()) for b in batches)
        evaluation.append(count / (time.perf_counter() - began))
    return {"open_s": opened, "train_images_per_s": max(train), "train_rounds": train,
            "eval_images_per_s": max(evaluation), "eval_rounds": evaluation}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--per_class", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        forms, prepared = make_forms(root, args.classes, args.per_class)
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core from here
        results = {name: pipeline_rate(name, path, args.batch, args.size, args.rounds)
                   for name, path in forms.items()}
    images = args.classes * args.per_class
    print(f"prepare (TFDS imagenet2012 from the tars, {images} + {images // 4} images): "
          f"{prepared:.1f} s")
    print(f"images/s on one core, 500×375 JPEGs → {args.size}×{args.size}, batch {args.batch}:")
    for name, r in results.items():
        print(f"  {name}: train {r['train_images_per_s']:.0f}, eval {r['eval_images_per_s']:.0f}"
              f" (opened in {r['open_s']:.2f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(),
                       "date": time.strftime("%Y-%m-%d"), "size": args.size,
                       "batch": args.batch, "train_images": images, "prepare_s": prepared,
                       "per_core": results, "cpu": _cpu()}, f, indent=1)


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
