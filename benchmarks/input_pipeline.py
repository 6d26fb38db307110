"""ImageNet preprocessing throughput on one core: JPEG decoding plus the train (Inception crop,
resize, flip, colour distortion) and eval (central crop, resize) preprocessing that the TFDS
pipeline applies, in images/s per core.

    uv run python benchmarks/input_pipeline.py [--images 256] [--size 299] [--json out.json]

The images are synthetic JPEGs of ImageNet's typical size (500 × 375, quality 90) encoded
here; `tf.data` runs with one thread (`private_threadpool_size=1`, sequential map), so the
figure is per core: the pipeline keeps up with a train step of B images taking t seconds on
about B / (t × figure) cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from inception_flax.run import input_pipeline  # noqa: E402


def jpegs(count: int, height: int = 375, width: int = 500) -> list[bytes]:
    tf = input_pipeline._tf()
    rng = np.random.RandomState(0)
    out = []
    for _ in range(count):  # smooth random images compress like photographs, not like noise
        small = rng.randint(0, 256, (height // 25 + 1, width // 25 + 1, 3)).astype(np.float32)
        image = tf.image.resize(small[None], (height, width), "bicubic")[0]
        image = tf.cast(tf.clip_by_value(image + rng.normal(0, 8, image.shape), 0, 255),
                        tf.uint8)
        out.append(tf.io.encode_jpeg(image, quality=90).numpy())
    return out


def throughput(encoded: list[bytes], preprocess, repeats: int = 3) -> float:
    tf = input_pipeline._tf()
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    ds = tf.data.Dataset.from_tensor_slices(encoded).enumerate()
    ds = ds.map(lambda i, data: preprocess(i, tf.io.decode_jpeg(data, channels=3)))
    ds = ds.with_options(options)
    for _ in ds.take(8):  # trace and warm up
        pass
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        count = sum(1 for _ in ds)
        best = max(best, count / (time.perf_counter() - start))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    tf = input_pipeline._tf()
    encoded = jpegs(args.images)
    key = lambda i: tf.stack([tf.constant(0, tf.int64), i])  # noqa: E731
    results = {
        "decode_only": throughput(encoded, lambda i, image: image),
        "train": throughput(encoded, lambda i, image: input_pipeline.inception_train_preprocess(
            image, key(i), args.size, color_distortion=False)),
        "train_color_distortion": throughput(
            encoded, lambda i, image: input_pipeline.inception_train_preprocess(
                image, key(i), args.size, color_distortion=True)),
        "eval": throughput(encoded, lambda i, image: input_pipeline.inception_eval_preprocess(
            image, args.size)),
    }
    print(f"images/s on one core, 500×375 JPEGs → {args.size}×{args.size}:")
    for name, value in results.items():
        print(f"  {name}: {value:.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "images_per_s_per_core": results}, f, indent=1)


if __name__ == "__main__":
    main()
