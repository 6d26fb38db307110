"""The update: the training state, the train and eval steps, and their compiled programs.

Each step is a module-level function, a pure function of its arguments, as flax's ImageNet
example writes `train_step(state, batch, learning_rate_fn)`: `gradients` (forward, backward,
loss and metrics on one replica's part of the batch, averaged across replicas over the mesh's
"batch" axis), `update` (weight decay, clipping and the optimizer on the parameters packed by
`flat.Layout`, then the moving averages) and `eval_step` (top-1, top-5 and example counts).
`build` applies the variant's model and optimizer to them (`functools.partial`), `jax.vmap`s
them over a leading seed axis where several seeds train as one program, `jax.shard_map`s them
over the mesh and jits them; `TrainStep` runs gradients then update as two programs that
compile at once. The collectives name `AXIS`, so a step called alone runs under a mapped axis
of that name (`jax.vmap(..., axis_name=AXIS)` over one replica, as the tests do).
"""

from __future__ import annotations

import concurrent.futures
import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

from inception_flax.model import network
from inception_flax.run import flat, input_pipeline, optim, run_dir

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


def input_dtype(config):
    return jnp.float64 if config.model.dtype == "float64" else jnp.float32


def loss_fn(params, batch_stats, images, labels, rng, *, model, config, num_classes):
    """The global batch's training loss (label smoothing, the auxiliary head at
    `aux_loss_weight`), with the logits and the new batch statistics."""
    (logits, ends), updates = model.apply(
        {"params": params, "batch_stats": batch_stats}, images, train=True,
        return_endpoints=True, mutable=["batch_stats"], rngs={"dropout": rng})
    loss = optim.smoothed_cross_entropy(logits, labels, num_classes,
                                        config.label_smoothing).mean()
    if "AuxLogits" in ends:  # section 4: weighted 0.4 in TF-slim
        loss += config.aux_loss_weight * optim.smoothed_cross_entropy(
            ends["AuxLogits"], labels, num_classes, config.label_smoothing).mean()
    # Its gradient with respect to the replicated parameters is the mean of the replicas'
    # gradients (shard_map sums a replicated input's cotangents).
    return jax.lax.pmean(loss, AXIS), (logits, updates["batch_stats"])


def gradients(params, batch_stats, rng, step, batch, *, model, config, num_classes):
    """One replica's gradients of the global batch's loss, the batch statistics and the loss
    and accuracy (averaged across replicas)."""
    images = input_pipeline.prepare_images(batch["image"], config.image_size,
                                           input_dtype(config))
    rng = jax.random.fold_in(jax.random.fold_in(rng, step), jax.lax.axis_index(AXIS))
    (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, batch_stats, images, batch["label"], rng, model=model, config=config,
        num_classes=num_classes)
    # Synchronized: the statistics are already the global batch's on every replica.
    # Per replica: each replica normalized with its own; their moving averages are averaged.
    batch_stats = jax.lax.pmean(batch_stats, AXIS)
    accuracy = jax.lax.pmean(jnp.mean(jnp.argmax(logits, -1) == batch["label"]), AXIS)
    return grads, batch_stats, {"loss": loss, "accuracy": accuracy}


def update(state: TrainState, grads, batch_stats, offsets, *, tx, schedule, ema_decay):
    """The optimizer's step on the packed parameters, then the moving averages."""
    layout = flat.Layout.of(state.params)
    grads = layout.pack(grads)
    updates, opt_state = tx.update(grads, state.opt_state, layout.pack(state.params))
    params = layout.add_to(state.params, updates, offsets)
    metrics = {"grad_norm": optax.tree.norm(grads), "learning_rate": schedule(state.step)}
    state = state.replace(
        step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state,
        ema_params=optim.ema_update(state.ema_params, params, state.step, ema_decay),
        ema_batch_stats=optim.ema_update(state.ema_batch_stats, batch_stats, state.step,
                                         ema_decay))
    return state, metrics


def eval_step(params, batch_stats, batch, *, model, config, num_classes):
    """[top-1 hits, top-5 hits, examples] of a batch (padding masked out), summed over the
    replicas, and which of the batch's examples the top-1 prediction gets right (each
    replica's own)."""
    images = input_pipeline.prepare_images(batch["image"], config.image_size,
                                           input_dtype(config))
    logits = model.apply({"params": params, "batch_stats": batch_stats}, images)
    labels, mask = batch["label"], batch["mask"]
    top1 = jnp.argmax(logits, -1) == labels
    top5 = jnp.any(jax.lax.top_k(logits, min(5, num_classes))[1] == labels[:, None], -1)
    count = lambda hits: jax.lax.psum(jnp.sum(hits & mask), AXIS)  # noqa: E731
    return jnp.stack([count(top1), count(top5), count(mask)]), top1 & mask


def build(model: network.Inception, config, tx, schedule, num_classes: int, mesh,
          grouped: bool = False):
    """The train step (a `TrainStep`) and the jitted eval step of a variant, shard_map'ed over
    the batch axis. `grouped`: both take a state with a leading seed axis (the train step's
    batch has one too, each seed's own; the eval step's batch is shared), vmapped over it."""
    of_model = dict(model=model, config=config, num_classes=num_classes)
    train_grads = functools.partial(gradients, **of_model)
    train_update = functools.partial(update, tx=tx, schedule=schedule,
                                     ema_decay=config.ema_decay)
    evaluate = functools.partial(eval_step, **of_model)
    train_batch = P(AXIS)
    if grouped:
        train_grads, evaluate = jax.vmap(train_grads), jax.vmap(evaluate, in_axes=(0, 0, None))
        train_update = jax.vmap(train_update, in_axes=(0, 0, 0, None))
        train_batch = P(None, AXIS)
    train = TrainStep(
        jax.jit(jax.shard_map(train_grads, mesh=mesh,
                              in_specs=(P(), P(), P(), P(), train_batch), out_specs=P())),
        jax.jit(jax.shard_map(train_update, mesh=mesh, in_specs=P(), out_specs=P()),
                donate_argnums=0), grouped)
    evaluate = jax.jit(jax.shard_map(evaluate, mesh=mesh, in_specs=(P(), P(), P(AXIS)),
                                     out_specs=(P(), P(None, AXIS) if grouped else P(AXIS))))
    return train, evaluate


class TrainStep:
    """`step(state, batch) -> (state, metrics)`, run as two XLA programs: `gradients` and
    `update`. The first call compiles both for the state's and batch's shapes at once: the
    update compiles on a second thread while this one traces and compiles the gradients, so
    tracing, XLA's single-threaded passes and the two programs' kernels overlap. The state is
    donated to `update`. `grouped`: the state has a leading seed axis."""

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
        update_program = self.update.lower(state, grads, state.batch_stats, self._offsets)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            compiled = pool.submit(update_program.compile)
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


# ---------------------------------------------------------------------------------------------
# The initial state.

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
    options = (model.runtime or network.runtime_for(model.config)).lowering.compiler_options
    return jax.jit(jax.vmap(init) if grouped else init, out_shardings=replicated,
                   compiler_options=options)


def seed_keys(seeds: list[int], grouped: bool) -> jax.Array:
    keys = [jax.random.PRNGKey(s) for s in seeds]
    return jnp.stack(keys) if grouped else keys[0]


def seed_slice(tree, index: int | None):
    """Seed `index`'s part of a grouped tree; the tree itself where `index` is None."""
    return tree if index is None else jax.tree_util.tree_map(lambda x: x[index], tree)


def to_global(batch: dict, sharding) -> dict:
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def evaluate_all(evaluate, state: TrainState, dataset, batch_sharding, max_examples=0,
                 seeds: int | None = None, raw: bool = True) -> list[dict]:
    """Top-1/top-5 accuracy of the EMA weights (and with `raw` of the raw weights) on the
    evaluation split, for each seed (one record; `seeds` records for a grouped state), and
    which examples the EMA weights' top-1 gets right (`ema_correct`, `run_dir.encode_correct`:
    by each example's index in the split)."""
    weights = {"raw": (state.params, state.batch_stats),
               "ema": (state.ema_params, state.ema_batch_stats)}
    if not raw:
        del weights["raw"]
    counts = {name: np.zeros((3,) if seeds is None else (seeds, 3)) for name in weights}
    rights, indices, seen = [], [], 0
    for batch in dataset.eval_batches():
        if max_examples and seen >= max_examples:
            break
        batch = to_global(batch, batch_sharding)
        index = batch.pop("index", None)
        for name, (params, batch_stats) in weights.items():
            hits, right = evaluate(params, batch_stats, batch)
            counts[name] += np.array(hits)
            if name == "ema" and index is not None:
                rights.append(_gathered(right))
        if index is not None:
            indices.append(np.where(_gathered(batch["mask"]), _gathered(index), -1))
        seen += batch["label"].shape[0]
    results = []
    for i in range(1 if seeds is None else seeds):
        result = {}
        for name, per_seed in counts.items():
            top1, top5, n = per_seed if seeds is None else per_seed[i]
            result[f"{name}_top1"] = top1 / n
            result[f"{name}_top5"] = top5 / n
        result["eval_examples"] = int((counts["ema"] if seeds is None
                                       else counts["ema"][i])[2])
        if indices:
            index = np.concatenate(indices)
            right = np.concatenate([r if seeds is None else r[i] for r in rights], -1)
            result["ema_correct"] = run_dir.encode_correct(index, right)
        results.append(result)
    return results


def _gathered(array) -> np.ndarray:
    """A global array (or a host one) whole on this host, in the global batch's order (every
    process's part, gathered where it has not got them all)."""
    if not isinstance(array, jax.Array) or array.is_fully_addressable:
        return np.asarray(jax.device_get(array))
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))
