"""Training and evaluation: data-parallel over every device of every process, exact resume.

One flat loop with banner sections (config, mesh, input, model, update, checkpoint, loop).
The train step is a pure function of (state, batch), written with `jax.shard_map` over the
mesh's "batch" axis: each replica computes gradients on its part of the global batch, the
gradients are averaged across replicas, and every replica applies the same update. It runs as
two compiled programs, gradients then update, which compile concurrently (`TrainStep`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import signal
import time

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from inception_flax import checkpoint as ckpt
from inception_flax import cost, flat, input_pipeline, malloc, models, optim
from inception_flax.config import InceptionConfig
from inception_flax.reporting import Reporter

AXIS = "batch"


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: dict
    batch_stats: dict
    opt_state: optax.OptState  # of the parameters packed by `flat.Layout`
    ema_params: dict  # TF's moving average of the weights and batch-norm statistics
    ema_batch_stats: dict
    rng: jax.Array


class Diverged(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# Config.

def model_config(config: ml_collections.ConfigDict) -> InceptionConfig:
    fields = dict(config.model)
    fields["batch_norm_axis_name"] = AXIS if config.sync_batch_norm else None
    return InceptionConfig(**fields)


def validate(config: ml_collections.ConfigDict) -> InceptionConfig:
    """Checks what can be checked before anything is written; returns the model config."""
    valid = {f.name for f in dataclasses.fields(InceptionConfig)} - {"batch_norm_axis_name"}
    unknown = sorted(set(config.model) - valid)
    if unknown:
        raise ValueError(f"unknown model field(s) {', '.join(unknown)}; valid fields: "
                         f"{', '.join(sorted(valid))}.")
    model = model_config(config)
    devices = jax.device_count()
    for name in ("global_batch_size", "eval_batch_size"):
        if config[name] % devices:
            raise ValueError(f"{name}={config[name]} does not split over {devices} devices; "
                             f"use a multiple of {devices}.")
    if not models.fits(model, config.image_size, train=True):
        minimum = models.min_input_size(model, train=True)
        raise ValueError(f"image_size={config.image_size} is too small for this variant in "
                         f"training; it needs at least {minimum} (or set model.aux_head='none', "
                         f"minimum {models.min_input_size(model.replace(aux_head='none'))}).")
    if config.preprocessing not in ("inception", "resize_flip", "none"):
        raise ValueError(f"preprocessing={config.preprocessing!r} is not valid; choose "
                         "'inception', 'resize_flip' or 'none'.")
    optim.optimizer(config, optim.learning_rate(config, 1))  # raises on a bad name
    return model


# ---------------------------------------------------------------------------------------------
# Update.

class TrainStep:
    """`step(state, batch) -> (state, metrics)`, run as two XLA programs: `gradients` (forward,
    backward, loss and metrics) and `update` (weight decay, clipping and the optimizer on the
    parameters packed by `flat.Layout`, then the moving averages).

    The first call compiles both for the state's and batch's shapes at once: the update
    compiles on a second thread while this one traces and compiles the gradients, so tracing,
    XLA's single-threaded passes and the two programs' kernels overlap (benchmarks/NOTES.md,
    try 19). The state is donated to `update`.
    """

    def __init__(self, gradients, update):
        self.gradients, self.update = gradients, update
        self._compiled = set()
        self._offsets = None

    def compile(self, state: TrainState, batch: dict) -> None:
        """Compiles both programs for these shapes (into `jax.jit`'s cache) without running."""
        grads = jax.tree_util.tree_map(
            lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype, sharding=p.sharding), state.params)
        sharding = jax.tree_util.tree_leaves(state.params)[0].sharding
        self._offsets = flat.Layout.of(state.params).offsets(sharding)
        update = self.update.lower(state, grads, state.batch_stats, self._offsets)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            compiled = pool.submit(update.compile)
            self.gradients.lower(state.params, state.batch_stats, state.rng, state.step,
                                 batch).compile()
            compiled.result()

    def __call__(self, state: TrainState, batch: dict):
        key = tuple((x.shape, x.dtype) for x in jax.tree_util.tree_leaves(batch))
        if key not in self._compiled:
            self.compile(state, batch)
            self._compiled.add(key)
        grads, batch_stats, metrics = self.gradients(state.params, state.batch_stats,
                                                     state.rng, state.step, batch)
        state, more = self.update(state, grads, batch_stats, self._offsets)
        return state, {**metrics, **more}


def make_steps(model: models.Inception, config, tx, schedule, num_classes: int, mesh):
    """The train step (a `TrainStep`) and the jitted eval step, shard_map'ed over the batch
    axis."""
    size = config.image_size

    def loss_fn(params, batch_stats, images, labels, rng):
        (logits, ends), updates = model.apply(
            {"params": params, "batch_stats": batch_stats}, images, train=True,
            return_endpoints=True, mutable=["batch_stats"], rngs={"dropout": rng})
        loss = optim.smoothed_cross_entropy(logits, labels, num_classes,
                                            config.label_smoothing).mean()
        if "AuxLogits" in ends:  # section 4: weighted 0.4 in TF-slim
            loss += config.aux_loss_weight * optim.smoothed_cross_entropy(
                ends["AuxLogits"], labels, num_classes, config.label_smoothing).mean()
        # The global batch's loss. Its gradient with respect to the replicated parameters is
        # the mean of the replicas' gradients (shard_map sums a replicated input's cotangents).
        return jax.lax.pmean(loss, AXIS), (logits, updates["batch_stats"])

    def gradients(params, batch_stats, rng, step, batch):
        images = input_pipeline.prepare_images(batch["image"], size)
        rng = jax.random.fold_in(jax.random.fold_in(rng, step), jax.lax.axis_index(AXIS))
        (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, batch_stats, images, batch["label"], rng)
        # Synchronized: the statistics are already the global batch's on every replica.
        # Per replica: each replica normalized with its own; their moving averages are averaged.
        batch_stats = jax.lax.pmean(batch_stats, AXIS)
        accuracy = jax.lax.pmean(jnp.mean(jnp.argmax(logits, -1) == batch["label"]), AXIS)
        return grads, batch_stats, {"loss": loss, "accuracy": accuracy}

    def update(state: TrainState, grads, batch_stats, offsets):
        layout = flat.Layout.of(state.params)
        grads = layout.pack(grads)
        updates, opt_state = tx.update(grads, state.opt_state, layout.pack(state.params))
        params = layout.add_to(state.params, updates, offsets)
        metrics = {"grad_norm": optax.tree.norm(grads),
                   "learning_rate": schedule(state.step)}
        state = state.replace(
            step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state,
            ema_params=optim.ema_update(state.ema_params, params, state.step, config.ema_decay),
            ema_batch_stats=optim.ema_update(state.ema_batch_stats, batch_stats, state.step,
                                             config.ema_decay))
        return state, metrics

    def eval_step(params, batch_stats, batch):
        images = input_pipeline.prepare_images(batch["image"], size)
        logits = model.apply({"params": params, "batch_stats": batch_stats}, images)
        labels, mask = batch["label"], batch["mask"]
        top5 = jnp.any(jax.lax.top_k(logits, min(5, num_classes))[1] == labels[:, None], -1)
        count = lambda hits: jax.lax.psum(jnp.sum(hits & mask), AXIS)  # noqa: E731
        return count(jnp.argmax(logits, -1) == labels), count(top5), count(mask)

    batch_spec = P(AXIS)
    train = TrainStep(
        jax.jit(jax.shard_map(gradients, mesh=mesh, in_specs=(P(), P(), P(), P(), batch_spec),
                              out_specs=P())),
        jax.jit(jax.shard_map(update, mesh=mesh, in_specs=P(), out_specs=P()),
                donate_argnums=0))
    evaluate = jax.jit(jax.shard_map(eval_step, mesh=mesh, in_specs=(P(), P(), batch_spec),
                                     out_specs=P()))
    return train, evaluate


def init_state(model, config, tx, sample_images, replicated) -> TrainState:
    def init(rng):
        params_rng, dropout_rng = jax.random.split(rng)
        variables = model.init(params_rng, sample_images, train=False)
        params, batch_stats = variables["params"], variables["batch_stats"]
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          batch_stats=batch_stats,
                          opt_state=tx.init(flat.Layout.of(params).pack(params)),
                          ema_params=params, ema_batch_stats=batch_stats, rng=dropout_rng)
    # On a CPU, LLVM's level 1 compiles the initializers (threefry per kernel) in 2/3 of the
    # default's time, to the same values; the program runs once (benchmarks/NOTES.md, try 8).
    options = {"xla_backend_optimization_level": 1} if jax.default_backend() == "cpu" else None
    return jax.jit(init, out_shardings=replicated, compiler_options=options)(
        jax.random.PRNGKey(config.seed))


def evaluate_all(evaluate, state: TrainState, dataset, batch_sharding, max_examples=0) -> dict:
    """Top-1/top-5 accuracy of the raw and the EMA weights on the whole evaluation split."""
    counts = {"raw": np.zeros(3), "ema": np.zeros(3)}
    seen = 0
    for batch in dataset.eval_batches():
        if max_examples and seen >= max_examples:
            break
        batch = to_global(batch, batch_sharding)
        counts["raw"] += np.array(evaluate(state.params, state.batch_stats, batch))
        counts["ema"] += np.array(evaluate(state.ema_params, state.ema_batch_stats, batch))
        seen += batch["label"].shape[0]
    result = {}
    for name, (top1, top5, n) in counts.items():
        result[f"{name}_top1"] = top1 / n
        result[f"{name}_top5"] = top5 / n
    result["eval_examples"] = int(counts["raw"][2])
    return result


def agree(flag: bool) -> bool:
    """Whether any process raised `flag` (all processes must stop at the same step)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils
    return bool(np.any(multihost_utils.process_allgather(np.array(flag))))


def to_global(batch: dict, sharding) -> dict:
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------
# The loop.

def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       compilation_cache_dir: str | None = None) -> dict:
    """Trains and evaluates `config` in `workdir`, resuming from its latest checkpoint.

    With `config.compilation_cache`, compiled programs are kept in JAX's persistent cache,
    `compilation_cache_dir` (default `workdir/jax_cache`; a sweep passes one directory for all
    its runs), so a rerun, a resumed run or another seed of the variant does not recompile.

    Returns the final record, also written to `workdir/final.json` ("status": "done",
    "preempted" after SIGTERM, or "diverged"); raises `Diverged` after writing it for a NaN
    or infinite loss.
    """
    called = time.time()
    # Config: everything checked before anything is written.
    model_cfg = validate(config)
    dataset = input_pipeline.create(config, config.global_batch_size, config.eval_batch_size)
    model = models.Inception(model_cfg)
    num_classes = model_cfg.num_classes
    if num_classes != dataset.num_classes:
        raise ValueError(f"model.num_classes={num_classes} but {dataset.name} has "
                         f"{dataset.num_classes} classes; set --config.model.num_classes="
                         f"{dataset.num_classes}.")
    total_steps = int(round(config.num_epochs * dataset.steps_per_epoch))
    fingerprint = ckpt.fingerprint(config)
    os.makedirs(workdir, exist_ok=True)
    if config.compilation_cache:
        jax.config.update("jax_compilation_cache_dir",
                          compilation_cache_dir or os.path.join(workdir, "jax_cache"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)

    # Mesh: every device of every process on one data-parallel axis.
    mesh = jax.make_mesh((jax.device_count(),), (AXIS,))
    replicated = NamedSharding(mesh, P())
    batch_sharding = NamedSharding(mesh, P(AXIS))

    # Model and update.
    schedule = optim.learning_rate(config, dataset.steps_per_epoch)
    tx = optim.optimizer(config, schedule)
    sample = jnp.zeros((1, config.image_size, config.image_size, 3), jnp.float32)
    state = init_state(model, config, tx, sample, replicated)
    train_step, evaluate = make_steps(model, config, tx, schedule, num_classes, mesh)

    # Checkpoint: resume where a previous run stopped.
    manager = ckpt.manager(workdir, config)
    state = ckpt.restore_latest(manager, state, fingerprint)
    start_step = int(state.step)
    reporter = Reporter(workdir, config, total_steps, start_step, config.global_batch_size)

    preempted = []  # SIGTERM (a scheduler's preemption) asks for a checkpoint and a clean exit
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: preempted.append(True))

    report = cost.cost(model_cfg, config.image_size)
    record = {"config": config.to_dict(), "allocator": malloc.active(),
              "params": report.total.params,
              "macs": report.total.macs, "training_params": report.training_total.params,
              "total_steps": total_steps, "steps_per_epoch": dataset.steps_per_epoch}
    status, diverged_step = "done", None
    start_time = time.time()
    try:
        batches = dataset.train_batches(start_step)
        pending = []
        for step in range(start_step, total_steps):
            state, metrics = train_step(state, to_global(next(batches), batch_sharding))
            pending.append(metrics)
            if step == start_step:  # set-up, both compilations and one step (one sync)
                jax.block_until_ready(metrics)
                record["startup_s"] = time.time() - called
            last = step + 1 == total_steps
            if (step + 1) % config.log_every_steps == 0 or last:
                logged = reporter.log_train(step + 1, jax.device_get(pending))
                pending = []
                if not np.isfinite(logged["loss"]):
                    status, diverged_step = "diverged", step + 1
                    break
            if config.eval_every_steps and (step + 1) % config.eval_every_steps == 0 and not last:
                reporter.log_eval(step + 1, evaluate_all(evaluate, state, dataset,
                                                         batch_sharding, config.max_eval_examples))
            stop = agree(bool(preempted)) if (step + 1) % config.log_every_steps == 0 or \
                jax.process_count() == 1 else False
            if ((step + 1) % config.checkpoint_every_steps == 0 and not last) or stop:
                ckpt.save(manager, state, fingerprint)
                reporter.say(f"checkpoint saved at step {step + 1}")
            if stop:
                status = "preempted"
                break
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    wall = time.time() - start_time
    record.update(status=status, step=int(state.step), wall_time_s=wall,
                  images_per_s=reporter.images_per_second())
    if status == "diverged":
        record["diverged_at_step"] = diverged_step
        reporter.write_final(record)
        manager.close()
        raise Diverged(f"the loss became {logged['loss']} at step {diverged_step}; "
                       f"see {os.path.join(workdir, 'final.json')}.")
    if status == "done":
        ckpt.save(manager, state, fingerprint)
        record.update(evaluate_all(evaluate, state, dataset, batch_sharding,
                                   config.max_eval_examples))
        reporter.log_eval(int(state.step), record)
    manager.wait_until_finished()
    manager.close()
    reporter.write_final(record)
    return record
