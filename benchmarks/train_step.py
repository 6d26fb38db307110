"""Our train and inference steps against keras.applications.InceptionV3 on the same JAX backend.

    uv run python benchmarks/train_step.py [--sizes 8x299x1000,32x75x10] [--rounds 5]
        [--steps 3] [--json results.json]

Both are measured in this one process, interleaved round by round so that machine noise falls
on both; each figure is the median over rounds of images/s. Our train step is the real one
(`train.make_steps`: forward, backward, RMSProp with clipping and weight decay, EMA), on a
one-device mesh; Keras's is `model.train_on_batch` with RMSprop. First-step times include
compilation. "Matmul fraction" is the train step's model FLOPs (3 × 2 × multiply-adds per image)
per second over the float32 matmul throughput measured here. Prints a Markdown table of ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

from configs import fashion_mnist  # noqa: E402
from configs.imagenet_inception_v3 import model_fields  # noqa: E402
from inception_flax import cost, models, optim, train  # noqa: E402


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Ours:
    def __init__(self, batch, size, classes, dtype="float32"):
        config = fashion_mnist.get_config()
        config.image_size, config.global_batch_size = size, batch
        aux = "bn" if size >= 107 else "none"
        config.model = model_fields(
            "inception_v3", num_classes=classes, aux_head=aux, dtype=dtype)
        self.model_config = train.model_config(config)
        model = models.Inception(self.model_config)
        mesh = Mesh(np.array(jax.devices()[:1]), (train.AXIS,))
        schedule = optim.learning_rate(config, 100)
        tx = optim.optimizer(config, schedule)
        self.state = train.init_state(model, config, tx, jnp.zeros((1, size, size, 3)),
                                      NamedSharding(mesh, P()))
        self.step, _ = train.make_steps(model, config, tx, schedule, classes, mesh)
        rng = np.random.RandomState(0)
        self.batch = train.to_global(
            {"image": rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32),
             "label": rng.randint(0, classes, batch).astype(np.int32)},
            NamedSharding(mesh, P(train.AXIS)))
        self.infer = jax.jit(lambda s, x: model.apply(
            {"params": s.params, "batch_stats": s.batch_stats}, x))
        self.macs = cost.cost(self.model_config, size).total.macs

    def train(self):
        self.state, metrics = self.step(self.state, self.batch)
        metrics["loss"].block_until_ready()

    def inference(self):
        self.infer(self.state, self.batch["image"]).block_until_ready()


class Keras:
    def __init__(self, batch, size, classes):
        import keras
        self.model = keras.applications.InceptionV3(
            weights=None, input_shape=(size, size, 3), classes=classes,
            classifier_activation=None)
        self.model.compile(optimizer=keras.optimizers.RMSprop(0.045, rho=0.9, momentum=0.9,
                                                              epsilon=1.0, clipnorm=2.0),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.RandomState(0)
        self.x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
        self.y = rng.randint(0, classes, batch).astype(np.int32)

    def train(self):
        self.model.train_on_batch(self.x, self.y)

    def inference(self):
        self.model.predict_on_batch(self.x)


def measure(batch, size, classes, rounds, steps, peak_gflops):
    result = {"batch": batch, "size": size, "classes": classes}
    contenders = {}
    for name, make in (("ours", Ours), ("keras", Keras)):
        built = time.perf_counter()
        contender = make(batch, size, classes)
        result[f"{name}_first_train_step_s"] = _timed(contender.train)
        result[f"{name}_build_s"] = time.perf_counter() - built
        result[f"{name}_first_inference_s"] = _timed(contender.inference)
        contenders[name] = contender
    samples = {f"{n}_{kind}": [] for n in contenders for kind in ("train", "inference")}
    for _ in range(rounds):  # interleaved: noise falls on both
        for name, contender in contenders.items():
            for kind in ("train", "inference"):
                seconds = _timed(lambda: [getattr(contender, kind)() for _ in range(steps)])
                samples[f"{name}_{kind}"].append(batch * steps / seconds)
    for key, values in samples.items():
        result[f"{key}_images_per_s"] = statistics.median(values)
        result[f"{key}_spread"] = (max(values) - min(values)) / statistics.median(values)
    flops = 3 * 2 * contenders["ours"].macs * result["ours_train_images_per_s"]
    result["ours_train_matmul_fraction"] = flops / 1e9 / peak_gflops
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8x299x1000,32x75x10",
                        help="BATCHxSIZExCLASSES, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    peak = matmul_gflops()
    results = [measure(*(int(v) for v in spec.split("x")), args.rounds, args.steps, peak)
               for spec in args.sizes.split(",")]
    print(f"device: {jax.devices()[0].device_kind}; float32 matmul: {peak:.0f} GFLOP/s\n")
    print("| batch × size × classes | train img/s ours / Keras (ratio) | inference img/s "
          "ours / Keras (ratio) | first train step s ours / Keras | matmul fraction |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['batch']} × {r['size']} × {r['classes']} | "
              f"{r['ours_train_images_per_s']:.1f} / {r['keras_train_images_per_s']:.1f} "
              f"({r['ours_train_images_per_s'] / r['keras_train_images_per_s']:.2f}×) | "
              f"{r['ours_inference_images_per_s']:.1f} / {r['keras_inference_images_per_s']:.1f} "
              f"({r['ours_inference_images_per_s'] / r['keras_inference_images_per_s']:.2f}×) | "
              f"{r['ours_first_train_step_s']:.1f} / {r['keras_first_train_step_s']:.1f} | "
              f"{r['ours_train_matmul_fraction']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": jax.devices()[0].device_kind, "matmul_gflops": peak,
                       "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
