"""Our train and inference steps against keras.applications.InceptionV3 on the same JAX backend
(and torchvision's Inception-v3 in its own process, where PyTorch is installed).

    uv run python benchmarks/train_step.py [--sizes 8x299x1000,32x75x10] [--rounds 5]
        [--steps 3] [--cold_rounds 3] [--dtype float32] [--lowering auto] [--no_memory]
        [--torch_python PATH] [--json results.json]
    uv run python benchmarks/train_step.py --commits 264d196,HEAD [--sizes ...] [--rounds 5]
    uv run python benchmarks/train_step.py --commits HEAD --lowerings matmul,xla [--sizes ...]

Ours and Keras are measured in this one process, interleaved round by round so that machine
noise falls on both; each figure is the median over rounds of images/s, and "spread" is
(max - min) / median over the rounds; a first round of each warms up and is not counted
(since 2026-12-03: before, it was, and it made our spread). Our train step is the real one (`steps.build`:
forward, backward, L2 decay, clipping, RMSProp, EMA of weights and batch statistics), on a
one-device mesh; Keras's is `model.train_on_batch` with RMSprop and clipping (no EMA).
First-step times include tracing and compilation (a cold cache: no persistent compilation
cache is set). They are measured twice: in this process, where whichever contender and size
comes later finds JAX's tracing caches and the allocator's pages warmed by those before it,
and, as the reported figure, in fresh processes: `--cold_rounds` rounds of one child process
per contender, the order alternating round by round, the median taken; all sizes' children
run first, before this process builds anything. The same children give
the peak memory: the peak resident set on a CPU, the device's peak bytes in use on an
accelerator. "Matmul fraction" is the train step's model FLOPs (3 × 2 × multiply-adds per
image) per second over the matmul throughput measured here in the compute dtype; on a device
whose peak is listed in `PEAK_TFLOPS` the model FLOP utilisation against that peak is printed
too. `--torch_python` runs `benchmarks/torchvision_step.py` with that interpreter, after ours
and Keras, with the same rounds and steps. Prints Markdown tables of ratios. The script runs
itself again with TCMalloc preloaded where it is installed, as `run_experiment.py` does (all
contenders, torchvision's process included, then share it); `INCEPTION_FLAX_MALLOC=system`
measures with glibc's allocator.
"""

from __future__ import annotations

import argparse
from importlib.metadata import version
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from inception_flax.utils import malloc  # noqa: E402

if __name__ == "__main__":
    malloc.use_tcmalloc()  # as run_experiment.py: both contenders get the same allocator

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

from common import median_and_spread, parser as benchmark_parser  # noqa: E402
from configs import fashion_mnist, inception  # noqa: E402
from inception_flax.model import cost, network  # noqa: E402
from inception_flax.run import settings, steps, train  # noqa: E402

# Dense peak TFLOP/s by device kind and compute dtype (vendor data sheets, SXM parts). JAX's
# default precision lets XLA compute float32 convolutions and dots in TensorFloat-32 on these
# GPUs, so the float32 entry is the TF32 tensor-core rate, not the plain float32 one.
PEAK_TFLOPS = {
    "NVIDIA H100 80GB HBM3": {"bfloat16": 989.0, "float32": 494.7},
    "NVIDIA H200": {"bfloat16": 989.0, "float32": 494.7},
    "NVIDIA A100-SXM4-80GB": {"bfloat16": 312.0, "float32": 156.0},
    "NVIDIA A100-SXM4-40GB": {"bfloat16": 312.0, "float32": 156.0},
}


def matmul_gflops(dtype: str, n: int = 2048, repeats: int = 5) -> float:
    if jax.default_backend() != "cpu":
        n = 8192
    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Ours:
    def __init__(self, batch, size, classes, dtype="float32", lowering="auto"):
        config = fashion_mnist.get_config()
        config.image_size, config.global_batch_size = size, batch
        aux = "bn" if size >= 107 else "none"
        config.model = inception.model("inception_v3", num_classes=classes, aux_head=aux,
                                       dtype=dtype, lowering=lowering)
        checked = settings.validate(config)
        self.model_config = checked.model
        model = network.Inception(checked.model)
        mesh = Mesh(np.array(jax.devices()[:1]), (steps.AXIS,))
        initialize, self.step, _ = train.compiled_programs([checked], 100, classes, mesh)
        self.state = initialize(steps.seed_keys([config.seed], False))
        rng = np.random.RandomState(0)
        self.batch = steps.to_global(
            {"image": rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32),
             "label": rng.randint(0, classes, batch).astype(np.int32)},
            NamedSharding(mesh, P(steps.AXIS)))
        self.infer = jax.jit(lambda s, x: model.apply(
            {"params": s.params, "batch_stats": s.batch_stats}, x))
        self.macs = cost.cost(self.model_config, size).total.macs

    def train(self):
        self.state, metrics = self.step(self.state, self.batch)
        metrics["loss"].block_until_ready()

    def inference(self):
        self.infer(self.state, self.batch["image"]).block_until_ready()


class Keras:
    def __init__(self, batch, size, classes, dtype="float32", lowering=None):
        import keras
        if dtype == "bfloat16":
            keras.config.set_dtype_policy("mixed_bfloat16")
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


CONTENDERS = {"ours": Ours, "keras": Keras}


def cold_start(name: str, spec: str, dtype: str, lowering: str) -> dict:
    """Runs `--child` in a fresh process: the contender alone, built and stepped 3 times."""
    out = subprocess.run([sys.executable, __file__, "--child", name, "--sizes", spec,
                          "--dtype", dtype, "--lowering", lowering],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(name: str, spec: str, dtype: str, lowering: str) -> None:
    built = time.perf_counter()
    contender = CONTENDERS[name](*(int(v) for v in spec.split("x")), dtype, lowering)
    build = time.perf_counter() - built
    first = _timed(contender.train)
    for _ in range(2):
        contender.train()
    contender.inference()
    stats = jax.devices()[0].memory_stats() or {}
    print(json.dumps({"build_s": build, "first_train_step_s": first,
                      "peak_rss_bytes": peak_rss_bytes(),
                      "device_peak_bytes": stats.get("peak_bytes_in_use")}))


def peak_rss_bytes() -> int:
    """This process's peak resident set: VmHWM, which (unlike getrusage's ru_maxrss, which a
    child inherits from the process that forked it) starts afresh at exec."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin"
                                                                  else 1024)


def cold_starts(spec: str, args) -> dict:
    """{contender: [child results]}: `--cold_rounds` rounds of one fresh process per
    contender, the order alternating round by round so that no order wins."""
    cold = {name: [] for name in CONTENDERS}
    for round_ in range(args.cold_rounds if args.memory else 0):
        names = list(CONTENDERS)
        for name in names if round_ % 2 == 0 else names[::-1]:
            cold[name].append(cold_start(name, spec, args.dtype, args.lowering))
    return cold


def measure(batch, size, classes, args, peak_gflops, cold):
    result = {"batch": batch, "size": size, "classes": classes}
    contenders = {}
    for name, make in CONTENDERS.items():
        built = time.perf_counter()
        contender = make(batch, size, classes, args.dtype, args.lowering)
        result[f"{name}_build_in_process_s"] = time.perf_counter() - built
        result[f"{name}_first_train_step_in_process_s"] = _timed(contender.train)
        result[f"{name}_first_inference_s"] = _timed(contender.inference)
        contenders[name] = contender
    samples = {f"{n}_{kind}": [] for n in contenders for kind in ("train", "inference")}
    for round_ in range(args.rounds + 1):  # interleaved: noise falls on both
        for name, contender in contenders.items():
            for kind in ("train", "inference"):
                seconds = _timed(lambda: [getattr(contender, kind)() for _ in range(args.steps)])
                if round_:  # the first round warms up (the allocator's pages): not counted
                    samples[f"{name}_{kind}"].append(batch * args.steps / seconds)
    for key, values in samples.items():
        result[f"{key}_images_per_s"], result[f"{key}_spread"] = median_and_spread(values)
        result[f"{key}_rounds"] = values
    flops = 3 * 2 * contenders["ours"].macs * result["ours_train_images_per_s"]
    result["ours_train_tflops"] = flops / 1e12
    result["ours_train_matmul_fraction"] = flops / 1e9 / peak_gflops
    device_peak = PEAK_TFLOPS.get(jax.devices()[0].device_kind, {}).get(args.dtype)
    if device_peak:
        result["ours_train_mfu"] = flops / 1e12 / device_peak
    del contenders
    for name, runs in cold.items():
        if runs:
            for key in ("build_s", "first_train_step_s"):
                result[f"{name}_{key}_rounds"] = [run[key] for run in runs]
            result[f"{name}_build_s"] = median_and_spread(result[f"{name}_build_s_rounds"])[0]
            result[f"{name}_first_train_step_s"] = median_and_spread(
                result[f"{name}_first_train_step_s_rounds"])[0]
            result[f"{name}_peak_rss_bytes"] = max(run["peak_rss_bytes"] for run in runs)
            result[f"{name}_device_peak_bytes"] = runs[0]["device_peak_bytes"]
        else:  # --no_memory: the in-process figures only
            result[f"{name}_build_s"] = result[f"{name}_build_in_process_s"]
            result[f"{name}_first_train_step_s"] = result[f"{name}_first_train_step_in_process_s"]
    return result


def torchvision_results(python: str, args) -> dict:
    out = subprocess.run([python, os.path.join(HERE, "torchvision_step.py"), "--sizes",
                          args.sizes, "--rounds", str(args.rounds), "--steps", str(args.steps),
                          "--dtype", args.dtype],
                         check=True, capture_output=True, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return {(r["batch"], r["size"], r["classes"]): r for r in rows}


def export(rev: str, root: str) -> tuple[str, str]:
    """(short hash, folder) of commit `rev`'s files, written to `root` by `git archive`."""
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=HERE, check=True,
                         capture_output=True, text=True).stdout.strip()
    short = subprocess.run(["git", "rev-parse", "--short", rev], cwd=top, check=True,
                           capture_output=True, text=True).stdout.strip()
    folder = os.path.join(root, short)
    os.makedirs(folder)
    archive = subprocess.run(["git", "archive", short], cwd=top, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return short, folder


def compare_commits(args) -> list[dict]:
    """`--commits A,B`: each commit's own train and inference steps (its `Ours`, in its own
    files) in a warm process of its own, stepped round by round in turn (the order alternating),
    a first round left uncounted; per size, each contender's median images/s, the ratio B / A
    and the spreads (`benchmarks/commit_server.py`). `--commits A --lowerings X,Y` compares
    two lowerings of one commit the same way."""
    import tempfile
    revs = args.commits.split(",")
    lowerings = args.lowerings.split(",") if args.lowerings else [args.lowering] * len(revs)
    if set(lowerings) - {"auto", "xla", "matmul"}:
        raise SystemExit(f"--lowerings takes two of auto, xla, matmul, not {args.lowerings}")
    if len(revs) == 1 and len(lowerings) == 2:
        revs = revs * 2
    if len(revs) != 2 or len(lowerings) != 2 or (revs[0] == revs[1] and
                                                 lowerings[0] == lowerings[1]):
        raise SystemExit("--commits takes two commits (e.g. --commits 264d196,HEAD), or one "
                         "with --lowerings taking two (e.g. --commits HEAD --lowerings "
                         "matmul,xla)")
    results = []
    with tempfile.TemporaryDirectory() as root:
        trees = {rev: export(rev, root) for rev in dict.fromkeys(revs)}
        contenders = {(f"{trees[rev][0]}:{lowering}" if args.lowerings else trees[rev][0]):
                      (trees[rev][1], lowering) for rev, lowering in zip(revs, lowerings)}
        names = list(contenders)
        for spec in args.sizes.split(","):
            servers = {name: subprocess.Popen(
                [sys.executable, os.path.join(HERE, "commit_server.py"), tree, spec, args.dtype,
                 lowering], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for name, (tree, lowering) in contenders.items()}
            ready = {name: json.loads(server.stdout.readline()) for name, server in
                     servers.items()}
            samples = {name: {"train": [], "inference": []} for name in names}
            for round_ in range(args.rounds + 1):  # round 0 warms up and is not counted
                for name in names if round_ % 2 == 0 else names[::-1]:
                    for kind in ("train", "inference"):
                        servers[name].stdin.write(f"{kind} {args.steps}\n")
                        servers[name].stdin.flush()
                        value = json.loads(servers[name].stdout.readline())[kind]
                        if round_:
                            samples[name][kind].append(value)
            for server in servers.values():
                server.stdin.close()
                server.wait()
            result = {"size": spec, "commits": names}
            for name in names:
                result[name] = dict(ready[name])
                for kind, values in samples[name].items():
                    median, spread = median_and_spread(values)
                    result[name].update({f"{kind}_images_per_s": median,
                                         f"{kind}_spread": spread, f"{kind}_rounds": values})
            for kind in ("train", "inference"):
                result[f"{kind}_ratio"] = (result[names[1]][f"{kind}_images_per_s"]
                                           / result[names[0]][f"{kind}_images_per_s"])
            results.append(result)
    return results


def commits_table(results) -> str:
    a, b = results[0]["commits"]
    lines = [f"| batch × size × classes | train img/s {a} / {b} ({b} / {a}) | inference img/s "
             f"{a} / {b} ({b} / {a}) | train spread {a} / {b} |", "|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['size']} | {r[a]['train_images_per_s']:.1f} / {r[b]['train_images_per_s']:.1f}"
            f" ({r['train_ratio']:.3f}×) | {r[a]['inference_images_per_s']:.1f} / "
            f"{r[b]['inference_images_per_s']:.1f} ({r['inference_ratio']:.3f}×) | "
            f"{r[a]['train_spread']:.0%} / {r[b]['train_spread']:.0%} |")
    return "\n".join(lines)


def table(results) -> str:
    ratio = lambda r, a, b: r[a] / r[b]  # noqa: E731
    lines = ["| batch × size × classes | train img/s ours / Keras (ratio) | inference img/s "
             "ours / Keras (ratio) | first train step s ours / Keras (fresh processes; in "
             "this one) | spread ours / Keras (train) | matmul fraction |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['batch']} × {r['size']} × {r['classes']} | "
            f"{r['ours_train_images_per_s']:.1f} / {r['keras_train_images_per_s']:.1f} "
            f"({ratio(r, 'ours_train_images_per_s', 'keras_train_images_per_s'):.2f}×) | "
            f"{r['ours_inference_images_per_s']:.1f} / {r['keras_inference_images_per_s']:.1f} "
            f"({ratio(r, 'ours_inference_images_per_s', 'keras_inference_images_per_s'):.2f}×)"
            f" | {r['ours_first_train_step_s']:.1f} / {r['keras_first_train_step_s']:.1f} ("
            f"{ratio(r, 'ours_first_train_step_s', 'keras_first_train_step_s'):.2f}×; "
            f"{r['ours_first_train_step_in_process_s']:.1f} / "
            f"{r['keras_first_train_step_in_process_s']:.1f}) | "
            f"{r['ours_train_spread']:.0%} / {r['keras_train_spread']:.0%} | "
            f"{r['ours_train_matmul_fraction']:.2f}"
            + (f" (MFU {r['ours_train_mfu']:.2f})" if "ours_train_mfu" in r else "") + " |")
    if any("ours_peak_rss_bytes" in r for r in results):
        lines += ["", "| batch × size × classes | peak memory ours / Keras |", "|---|---|"]
        for r in results:
            on_device = r["ours_device_peak_bytes"] is not None
            key = "device_peak_bytes" if on_device else "peak_rss_bytes"
            lines.append(f"| {r['batch']} × {r['size']} × {r['classes']} | "
                         f"{r['ours_' + key] / 2**30:.2f} / {r['keras_' + key] / 2**30:.2f} GiB"
                         f" ({'device' if on_device else 'process RSS'}) |")
    if any("torchvision_train_images_per_s" in r for r in results):
        lines += ["", "| batch × size × classes | train img/s ours / torchvision (ratio) | "
                  "inference img/s ours / torchvision (ratio) | spread torchvision (train) |",
                  "|---|---|---|---|"]
        for r in results:
            lines.append(
                f"| {r['batch']} × {r['size']} × {r['classes']} | "
                f"{r['ours_train_images_per_s']:.1f} / {r['torchvision_train_images_per_s']:.1f}"
                f" ({ratio(r, 'ours_train_images_per_s', 'torchvision_train_images_per_s'):.2f}"
                f"×) | {r['ours_inference_images_per_s']:.1f} / "
                f"{r['torchvision_inference_images_per_s']:.1f} ("
                f"{ratio(r, 'ours_inference_images_per_s', 'torchvision_inference_images_per_s'):.2f}"
                f"×) | {r['torchvision_train_spread']:.0%} |")
    return "\n".join(lines)


def main():
    parser = benchmark_parser(__doc__)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                        help="compute dtype (parameters stay float32; Keras: mixed_bfloat16)")
    parser.add_argument("--lowering", default="auto", choices=("auto", "xla", "matmul"),
                        help="InceptionConfig.lowering of our model")
    parser.add_argument("--cold_rounds", "--cold-rounds", type=int, default=3,
                        help="rounds of fresh processes (one per contender) for the first "
                             "step and peak memory")
    parser.add_argument("--no_memory", "--no-memory", dest="memory", action="store_false",
                        help="skip the fresh processes (first step in this process only; no "
                             "peak memory)")
    parser.add_argument("--torch_python", "--torch-python", default=None,
                        help="a Python with torch and torchvision: also run torchvision")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--commits", default=None,
                        help="A,B: compare two commits' own steps, interleaved in this one run "
                             "(benchmarks/NOTES.md, 'Two commits'); nothing else is measured")
    parser.add_argument("--lowerings", default=None,
                        help="X,Y with one commit in --commits: compare two lowerings of it "
                             "the same way (e.g. --commits HEAD --lowerings matmul,xla)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.sizes, args.dtype, args.lowering)
    if args.lowerings and not args.commits:
        raise SystemExit("--lowerings needs the commit to measure, e.g. --commits HEAD "
                         "--lowerings matmul,xla")
    if args.commits:
        results = compare_commits(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"device": jax.devices()[0].device_kind, "dtype": args.dtype,
                           "allocator": malloc.active(), "date": time.strftime("%Y-%m-%d"),
                           "command": " ".join(sys.argv), "results": results}, f, indent=1)
        print(commits_table(results))
        return None
    peak = matmul_gflops(args.dtype)
    device = jax.devices()[0].device_kind
    results = []

    def save():  # after each size too, so that a run cut short keeps what it measured
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"device": device, "dtype": args.dtype, "lowering": args.lowering,
                           "allocator": malloc.active(),
                           "matmul_gflops": peak, "date": time.strftime("%Y-%m-%d"),
                           "versions": {p: version(p) for p in ("jax", "jaxlib", "flax", "keras")},
                           "command": " ".join(sys.argv), "results": results}, f, indent=1)

    # Every size's fresh processes first, while this one holds no model: a child started
    # beside a parent holding a trained model's gigabytes took ~25% longer over its first
    # step (benchmarks/NOTES.md, try 31).
    cold = {spec: cold_starts(spec, args) for spec in args.sizes.split(",")}
    for spec in args.sizes.split(","):
        results.append(measure(*(int(v) for v in spec.split("x")), args, peak, cold[spec]))
        save()
    if args.torch_python:
        torch = torchvision_results(args.torch_python, args)
        for r in results:
            r.update(torch[(r["batch"], r["size"], r["classes"])])
        save()
    print(f"device: {device}; {args.dtype} matmul: {peak:.0f} GFLOP/s; "
          f"lowering: {args.lowering}; allocator: {malloc.active()}\n")
    print(table(results))


if __name__ == "__main__":
    main()
