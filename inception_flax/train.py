"""Training and evaluation: data-parallel over every device of every process, exact resume,
and several seeds of one variant trained as one program.

The file follows a run's life: config (what is checked before anything is written), update
(the train and eval steps), state (initialisation), set-up, the loop, and the finish. The
train step is a pure function of (state, batch), written with `jax.shard_map` over the mesh's
"batch" axis: each replica computes gradients on its part of the global batch, the gradients
are averaged across replicas, and every replica applies the same update. It runs as two
compiled programs, gradients then update, which compile concurrently (`TrainStep`).

Seeds trained together (`train_seeds` with several configs that differ only in `seed`): the
state gets a leading seed axis and both programs are `jax.vmap`ped over it, so k seeds run as
one program. Each seed keeps what it would have alone: its initial values, dropout draws and
data order (its own input pipeline), its checkpoints, metrics and `final.json` in its own
workdir. A seed whose loss stops being finite is recorded as diverged; the others go on.
The arithmetic is the seed's own, rounded differently (batched kernels): in float64 a seed in
a group ends a short run ~1e-15 from itself alone; in float32 the rounding can make a run's
trajectory part where the loss is not smooth, as any change of rounding can (README).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
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
from inception_flax import (cost, flat, input_pipeline, malloc, models, optim, run_config,
                            run_dir, run_lock)
from inception_flax.run_log import RunLog

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


# ---------------------------------------------------------------------------------------------
# Config.

def build_model(config: ml_collections.ConfigDict) -> models.Inception:
    """The network of a training config, with the runtime it trains under: this backend's
    lowering, and batch norm synchronized over the replicas where `sync_batch_norm`."""
    model_cfg = run_config.model_config(config)
    return models.Inception(model_cfg, models.runtime_for(
        model_cfg, AXIS if config.sync_batch_norm else None))


def without_seed(config: ml_collections.ConfigDict) -> dict:
    """The config's fields but `seed`: what the seeds of one variant share."""
    fields = config.to_dict()
    del fields["seed"]
    return fields


def check_group(configs: list[ml_collections.ConfigDict]) -> None:
    """Seeds trained together must be one variant: configs equal apart from `seed`."""
    seeds = [config.seed for config in configs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds trained together must differ; got {seeds}.")
    if any(without_seed(c) != without_seed(configs[0]) for c in configs[1:]):
        raise ValueError("seeds trained together must share every config field but `seed`.")


# ---------------------------------------------------------------------------------------------
# Update.

class TrainStep:
    """`step(state, batch) -> (state, metrics)`, run as two XLA programs: `gradients` (forward,
    backward, loss and metrics) and `update` (weight decay, clipping and the optimizer on the
    parameters packed by `flat.Layout`, then the moving averages).

    The first call compiles both for the state's and batch's shapes at once: the update
    compiles on a second thread while this one traces and compiles the gradients, so tracing,
    XLA's single-threaded passes and the two programs' kernels overlap. The state is donated
    to `update`. `grouped`: the state has a leading seed axis.
    """

    def __init__(self, gradients, update, grouped: bool = False):
        self.gradients, self.update, self.grouped = gradients, update, grouped
        self._compiled = set()
        self._offsets = None

    def compile(self, state: TrainState, batch: dict) -> None:
        """Compiles both programs for these shapes (into `jax.jit`'s cache) without running."""
        grads = jax.tree_util.tree_map(
            lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype, sharding=p.sharding), state.params)
        sharding = jax.tree_util.tree_leaves(state.params)[0].sharding
        one_seed = jax.tree_util.tree_map(  # the layout of one seed's parameters
            lambda p: jax.ShapeDtypeStruct(p.shape[1:] if self.grouped else p.shape, p.dtype),
            state.params)
        self._offsets = flat.Layout.of(one_seed).offsets(sharding)
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


def make_steps(model: models.Inception, config, tx, schedule, num_classes: int, mesh,
               grouped: bool = False):
    """The train step (a `TrainStep`) and the jitted eval step, shard_map'ed over the batch
    axis. `grouped`: both take a state with a leading seed axis (the train step's batch has
    one too, each seed's own; the eval step's batch is shared) and are vmapped over it."""
    size = config.image_size
    input_dtype = jnp.float64 if config.model.dtype == "float64" else jnp.float32

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
        images = input_pipeline.prepare_images(batch["image"], size, input_dtype)
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
        images = input_pipeline.prepare_images(batch["image"], size, input_dtype)
        logits = model.apply({"params": params, "batch_stats": batch_stats}, images)
        labels, mask = batch["label"], batch["mask"]
        top5 = jnp.any(jax.lax.top_k(logits, min(5, num_classes))[1] == labels[:, None], -1)
        count = lambda hits: jax.lax.psum(jnp.sum(hits & mask), AXIS)  # noqa: E731
        return jnp.stack([count(jnp.argmax(logits, -1) == labels), count(top5), count(mask)])

    batch_spec = P(AXIS)
    if grouped:
        gradients, eval_step = jax.vmap(gradients), jax.vmap(eval_step, in_axes=(0, 0, None))
        update = jax.vmap(update, in_axes=(0, 0, 0, None))
        train_batch_spec = P(None, AXIS)
    else:
        train_batch_spec = batch_spec
    train = TrainStep(
        jax.jit(jax.shard_map(gradients, mesh=mesh,
                              in_specs=(P(), P(), P(), P(), train_batch_spec), out_specs=P())),
        jax.jit(jax.shard_map(update, mesh=mesh, in_specs=P(), out_specs=P()),
                donate_argnums=0), grouped)
    evaluate = jax.jit(jax.shard_map(eval_step, mesh=mesh, in_specs=(P(), P(), batch_spec),
                                     out_specs=P()))
    return train, evaluate


# ---------------------------------------------------------------------------------------------
# State.

def initializer(model, tx, sample_images, replicated, grouped: bool = False):
    """The jitted function from a PRNG key to the initial state (from stacked keys, one per
    seed, to states stacked on a leading axis where `grouped`)."""
    def init(rng):
        params_rng, dropout_rng = jax.random.split(rng)
        variables = model.init(params_rng, sample_images, train=False)
        params, batch_stats = variables["params"], variables["batch_stats"]
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          batch_stats=batch_stats,
                          opt_state=tx.init(flat.Layout.of(params).pack(params)),
                          ema_params=params, ema_batch_stats=batch_stats, rng=dropout_rng)
    options = (model.runtime or models.runtime_for(model.config)).lowering.compiler_options
    return jax.jit(jax.vmap(init) if grouped else init, out_shardings=replicated,
                   compiler_options=options)


def seed_keys(seeds: list[int], grouped: bool) -> jax.Array:
    keys = [jax.random.PRNGKey(s) for s in seeds]
    return jnp.stack(keys) if grouped else keys[0]


def init_state(model, config, tx, sample_images, replicated, seeds=None) -> TrainState:
    """The initial state for `config.seed`, or, given `seeds`, one per seed stacked on a
    leading axis (each seed's values exactly those it gets alone)."""
    grouped = seeds is not None
    return initializer(model, tx, sample_images, replicated, grouped)(
        seed_keys(seeds if grouped else [config.seed], grouped))


def seed_slice(tree, index: int | None):
    """Seed `index`'s part of a grouped tree; the tree itself where `index` is None."""
    return tree if index is None else jax.tree_util.tree_map(lambda x: x[index], tree)


def evaluate_all(evaluate, state: TrainState, dataset, batch_sharding, max_examples=0,
                 seeds: int | None = None, raw: bool = True) -> list[dict]:
    """Top-1/top-5 accuracy of the EMA weights (and with `raw` of the raw weights) on the
    evaluation split, for each seed (one record; `seeds` records for a grouped state)."""
    weights = {"raw": (state.params, state.batch_stats),
               "ema": (state.ema_params, state.ema_batch_stats)}
    if not raw:
        del weights["raw"]
    counts = {name: np.zeros((3,) if seeds is None else (seeds, 3)) for name in weights}
    seen = 0
    for batch in dataset.eval_batches():
        if max_examples and seen >= max_examples:
            break
        batch = to_global(batch, batch_sharding)
        for name, (params, batch_stats) in weights.items():
            counts[name] += np.array(evaluate(params, batch_stats, batch))
        seen += batch["label"].shape[0]
    results = []
    for index in range(1 if seeds is None else seeds):
        result = {}
        for name, per_seed in counts.items():
            top1, top5, n = per_seed if seeds is None else per_seed[index]
            result[f"{name}_top1"] = top1 / n
            result[f"{name}_top5"] = top5 / n
        result["eval_examples"] = int((counts["ema"] if seeds is None
                                       else counts["ema"][index])[2])
        results.append(result)
    return results


def agree(flag: bool) -> bool:
    """Whether any process raised `flag` (all processes must stop at the same step)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils
    return bool(np.any(multihost_utils.process_allgather(np.array(flag))))


def to_global(batch: dict, sharding) -> dict:
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------
# Set-up: everything checked, built and restored before the first step.

@dataclasses.dataclass
class Training:
    """One program's runs (one seed, or several seeds of one variant) and what they share."""

    configs: list  # one config per seed; configs[0] stands for the settings they share
    workdirs: list
    grouped: bool  # the state has a leading seed axis
    datasets: list  # one input pipeline per seed (its own data order)
    state: TrainState
    train_step: TrainStep
    evaluate: object
    batch_sharding: NamedSharding
    eval_sharding: NamedSharding
    managers: list
    logs: list  # one `RunLog` per seed
    fingerprints: list
    total_steps: int
    start_step: int
    records: list  # each seed's final record, filled in as the run goes
    live: list  # per seed: False once its loss is no longer finite

    @property
    def config(self):
        return self.configs[0]

    def seeds(self) -> range:
        return range(len(self.configs))

    def member(self, tree, index: int):
        return seed_slice(tree, index if self.grouped else None)

    def batch(self, iterators) -> dict:
        parts = [next(it) for it in iterators]
        if self.grouped:
            parts = [{k: np.stack([p[k] for p in parts]) for k in parts[0]}]
        return to_global(parts[0], self.batch_sharding)

    def save(self) -> None:
        """A checkpoint of every live seed, and the segment's wall time so far in its log."""
        step = int(self.member(self.state.step, 0))
        for i in self.seeds():
            if self.live[i]:
                ckpt.save(self.managers[i], self.member(self.state, i), self.fingerprints[i])
                self.logs[i].log_segment(step)

    def evaluate_now(self) -> list[dict]:
        return evaluate_all(self.evaluate, self.state, self.datasets[0], self.eval_sharding,
                            self.config.max_eval_examples,
                            len(self.configs) if self.grouped else None,
                            self.config.eval_raw_weights)


# The programs of the last variant set up in this process, for its next seeds: a sweep trains
# a variant's seeds one after another, and building them again (tracing, and loading from the
# compilation cache) took ~9 s a run on the project's CPU.
_PROGRAMS: dict = {}


def programs(configs, steps_per_epoch: int, num_classes: int, mesh):
    """(initializer, train step, eval step) of the variant `configs` (one config per seed,
    equal but for `seed`), built once per process and variant."""
    config = configs[0]
    key = (json.dumps(without_seed(config), sort_keys=True, default=repr), len(configs),
           steps_per_epoch, num_classes, tuple(d.id for d in mesh.devices.flat),
           tuple(mesh.axis_names))
    if key not in _PROGRAMS:
        _PROGRAMS.clear()  # one variant's at a time: they hold compiled programs
        grouped = len(configs) > 1
        model = build_model(config)
        schedule = optim.learning_rate(config, steps_per_epoch)
        tx = optim.optimizer(config, schedule)
        sample = jnp.zeros((1, config.image_size, config.image_size, 3), jnp.float32)
        _PROGRAMS[key] = (initializer(model, tx, sample, NamedSharding(mesh, P()), grouped),
                          *make_steps(model, config, tx, schedule, num_classes, mesh, grouped))
    return _PROGRAMS[key]


def claim(workdir: str, config, set_aside_stale: bool = False) -> None:
    """Takes a run directory for `config` (process 0 holds its lock: one live command per run
    directory). A directory made under another config (`run_dir.stale_fields`) is refused in
    one sentence, or with `set_aside_stale` moved aside and begun afresh; a damaged record
    (`final.json`) is set aside, and the run resumes or is evaluated again."""
    first = jax.process_index() == 0
    if first:
        run_lock.acquire(workdir)
    stale = run_dir.stale_fields(workdir, config, ckpt.stored_fields)
    if stale and not set_aside_stale:
        raise ValueError(f"{run_dir.describe_stale(workdir, stale)}; use another --workdir, "
                         "the config it was made with, or --set_aside_stale to move it aside "
                         "and train afresh.")
    if first and stale:
        run_lock.release(workdir)
        print(f"{run_dir.describe_stale(workdir, stale)}: moved aside as "
              f"{run_dir.set_aside(workdir)}", flush=True)
        run_lock.acquire(workdir)
    if first:
        run_dir.set_aside_damaged_final(workdir)
    if jax.process_count() > 1:  # the others go on once process 0 has moved it
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(f"claimed {workdir}")


def set_up(configs, workdirs, compilation_cache_dir, set_aside_stale=False) -> Training:
    """The checked config, data, mesh, state (each seed's latest checkpoint), steps and logs;
    `claim` says what happens to a run directory made under another config."""
    called = time.time()
    check_group(configs)
    config = configs[0]
    model_cfg = run_config.validate(config)
    datasets = [input_pipeline.create(c, c.global_batch_size, c.eval_batch_size)
                for c in configs]
    num_classes, dataset = model_cfg.num_classes, datasets[0]
    if num_classes != dataset.num_classes:
        raise ValueError(f"model.num_classes={num_classes} but {dataset.name} has "
                         f"{dataset.num_classes} classes; set --config.model.num_classes="
                         f"{dataset.num_classes}.")
    for workdir, c in zip(workdirs, configs):
        claim(workdir, c, set_aside_stale)
        os.makedirs(workdir, exist_ok=True)
    if config.compilation_cache:
        jax.config.update("jax_compilation_cache_dir",
                          compilation_cache_dir or os.path.join(workdirs[0], "jax_cache"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)

    # Mesh: every device of every process on one data-parallel axis.
    mesh = jax.make_mesh((jax.device_count(),), (AXIS,))
    replicated = NamedSharding(mesh, P())
    grouped = len(configs) > 1

    # Model, update and state.
    initialize, train_step, evaluate = programs(configs, dataset.steps_per_epoch, num_classes,
                                                mesh)
    state = initialize(seed_keys([c.seed for c in configs], grouped))

    # Checkpoints: each seed resumes from its own, and all from the same step.
    managers = [ckpt.manager(workdir, c) for workdir, c in zip(workdirs, configs)]
    fingerprints = [ckpt.fingerprint(c) for c in configs]
    restored = [ckpt.restore_latest(m, seed_slice(state, i if grouped else None), c)
                for i, (m, c) in enumerate(zip(managers, configs))]
    steps = [int(s.step) for s in restored]
    if len(set(steps)) > 1:
        raise ValueError(f"seeds trained together must resume from the same step; their "
                         f"checkpoints are at steps {steps} ({', '.join(workdirs)}).")
    if steps[0]:
        state = (jax.jit(lambda *s: jax.tree_util.tree_map(lambda *x: jnp.stack(x), *s),
                         out_shardings=replicated)(*restored) if grouped else restored[0])
    total_steps = int(round(config.num_epochs * dataset.steps_per_epoch))
    logs = [RunLog(w, c, total_steps, steps[0], c.global_batch_size,
                   f"seed {c.seed}: " if grouped else "", began=called)
            for w, c in zip(workdirs, configs)]
    table = cost.cost(model_cfg, config.image_size)
    records = [{"config": c.to_dict(), "allocator": malloc.active(),
                # XLA:CPU splits its work by the cores it may use, so they set its rounding
                "backend": jax.default_backend(), "cpu_cores": len(os.sched_getaffinity(0)),
                "params": table.total.params, "macs": table.total.macs,
                "training_params": table.training_total.params, "total_steps": total_steps,
                "steps_per_epoch": dataset.steps_per_epoch} for c in configs]
    return Training(configs, workdirs, grouped, datasets, state, train_step, evaluate,
                    NamedSharding(mesh, P(None, AXIS) if grouped else P(AXIS)),
                    NamedSharding(mesh, P(AXIS)), managers, logs, fingerprints, total_steps,
                    steps[0], records, [True] * len(configs))


# ---------------------------------------------------------------------------------------------
# The loop.

def should_stop(preempted: list, logging_step: bool) -> bool:
    """Whether to stop for a SIGTERM now: at once in one process; processes of one run stop at
    the same step, so they agree (one all-gather) at logging steps only."""
    if jax.process_count() == 1:
        return bool(preempted)
    return logging_step and agree(bool(preempted))


def loop(run: Training) -> str:
    """Trains from `run.start_step` to the end; returns "done", "preempted" (after SIGTERM,
    with a checkpoint) or "diverged" (every seed's loss stopped being finite)."""
    config = run.config
    preempted = []  # SIGTERM (a scheduler's preemption) asks for a checkpoint and a clean exit
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: preempted.append(True))
    iterators = [d.train_batches(run.start_step) for d in run.datasets]
    pending = []
    try:
        for step in range(run.start_step, run.total_steps):
            run.state, metrics = run.train_step(run.state, run.batch(iterators))
            pending.append(metrics)
            done, last = step + 1, step + 1 == run.total_steps
            if step == run.start_step:  # set-up, both compilations and one step (one sync)
                jax.block_until_ready(metrics)
                for log in run.logs:
                    log.started()
            logging = done % config.log_every_steps == 0 or last
            if logging:
                log_train(run, done, jax.device_get(pending))
                pending = []
                if not any(run.live):
                    return "diverged"
            if config.eval_every_steps and done % config.eval_every_steps == 0 and not last:
                for i, results in enumerate(run.evaluate_now()):
                    if run.live[i]:
                        run.logs[i].log_eval(done, results)
            stop = should_stop(preempted, logging)
            if (done % config.checkpoint_every_steps == 0 and not last) or stop:
                run.save()
                run.logs[0].say(f"checkpoint saved at step {done}")
            if stop:
                return "preempted"
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    return "done"


def log_train(run: Training, step: int, pending: list[dict]) -> None:
    """Each live seed's progress line and metrics (`pending`: one entry per step since the
    last log, up to `step`); a seed whose loss is not finite is recorded as diverged at the
    first step whose loss was not."""
    for i in run.seeds():
        if not run.live[i]:
            continue
        metrics = [run.member(m, i) for m in pending]
        run.logs[i].log_train(step, metrics)
        losses = [float(m["loss"]) for m in metrics]
        bad = [k for k, loss in enumerate(losses) if not np.isfinite(loss)]
        if bad:
            at = step - len(losses) + bad[0] + 1
            run.live[i] = False
            run.records[i].update(status="diverged", diverged_at_step=at,
                                  error=f"the loss became {losses[bad[0]]} at step {at}")


# ---------------------------------------------------------------------------------------------
# The finish.

def finish(run: Training, status: str) -> list[dict]:
    """Saves and evaluates what finished, writes every seed's `final.json` (with the run's
    throughput, wall time and start-up over all its segments, `RunLog.summary`); returns the
    records."""
    if status == "done":
        if int(run.member(run.state.step, 0)) > run.start_step:
            run.save()
        for i, results in enumerate(run.evaluate_now()):
            if run.live[i]:
                run.records[i].update(results)
                run.logs[i].log_eval(int(run.member(run.state.step, i)), results)
    for i in run.seeds():
        run.managers[i].wait_until_finished()
        run.managers[i].close()
        record = run.records[i]
        record.setdefault("status", status)
        step = int(run.member(run.state.step, i))
        run.logs[i].log_segment(step)
        record.update(step=step, **run.logs[i].summary())
        run.logs[i].write_final(record)
    return run.records


def train_seeds(configs: list[ml_collections.ConfigDict], workdirs: list[str],
                compilation_cache_dir: str | None = None,
                set_aside_stale: bool = False) -> list[dict]:
    """Trains and evaluates the seeds `configs` (one variant: configs equal but for `seed`)
    as one program, each in its own workdir, resuming from their checkpoints (which must be
    at the same step). One config trains alone, without a seed axis.

    With `config.compilation_cache`, compiled programs are kept in JAX's persistent cache,
    `compilation_cache_dir` (default the first workdir's `jax_cache`; a sweep passes one
    directory for all its runs), so a rerun, a resumed run or another seed of the variant does
    not recompile.

    Returns each seed's final record, also written to its `workdir/final.json`: "status" is
    "done", "preempted" (after SIGTERM) or "diverged" (with "diverged_at_step").

    `num_epochs=0` (or a run already at its last step) trains nothing: it evaluates the
    newest checkpoint's weights, or the initial ones where there is none, and writes the
    record. Process 0 holds each workdir's lock (`run_lock`) while it runs; a workdir another
    live command holds is refused, and so is one made under another config (with
    `set_aside_stale`, it is moved aside and trained afresh: `claim`). A damaged newest
    checkpoint is set aside, and the run resumes from the newest intact one
    (`checkpoint.restore_latest`).
    """
    try:
        run = set_up(configs, workdirs, compilation_cache_dir, set_aside_stale)
        return finish(run, loop(run))
    finally:
        for workdir in workdirs:
            run_lock.release(workdir)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       compilation_cache_dir: str | None = None,
                       set_aside_stale: bool = False) -> dict:
    """Trains and evaluates `config` alone in `workdir` (see `train_seeds`); returns its
    final record."""
    return train_seeds([config], [workdir], compilation_cache_dir, set_aside_stale)[0]
