"""Training and evaluation: data-parallel over every device of every process, exact resume,
and several seeds of one variant trained as one program.

The file follows a run's life: set-up (the data, the run directory and its lock, the mesh, the
compiled programs of `steps`, the state restored from the latest checkpoint, the logs), the
loop, and the finish. The train step is a pure function of (state, batch), written with
`jax.shard_map` over the mesh's "batch" axis (`steps`): each replica computes gradients on its
part of the global batch, the gradients are averaged across replicas, and every replica
applies the same update.

Seeds trained together (`train_seeds` with several configs that differ only in `seed`): the
state gets a leading seed axis and both programs are `jax.vmap`ped over it, so k seeds run as
one program. Each seed keeps what it would have alone: its initial values, dropout draws and
data order (its own input pipeline), its checkpoints, metrics and `final.json` in its own
workdir. A seed whose loss stops being finite is recorded as diverged; the others go on.
The arithmetic is the seed's own, rounded differently (batched kernels): in float64 a seed in
a group ends a short run ~1e-15 from itself alone; in float32 the rounding can make a run's
trajectory part where the loss is not smooth, as any change of rounding can (docs/sweeps.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from inception_flax.model import cost, network
from inception_flax.run import checkpoint as ckpt
from inception_flax.run import input_pipeline, optim, run_dir, run_lock, steps
from inception_flax.run.run_log import RunLog
from inception_flax.run.settings import Settings, validate
from inception_flax.run.steps import AXIS, TrainState, seed_slice, to_global
from inception_flax.utils import malloc


def without_seed(config: ml_collections.ConfigDict) -> dict:
    """The config's fields but `seed`: what the seeds of one variant share."""
    fields = config.to_dict()
    del fields["seed"]
    return fields


def same_variant(group: list[Settings]) -> None:
    """Seeds trained together must be one variant: configs equal apart from `seed`."""
    seeds = [s.config.seed for s in group]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds trained together must differ; got {seeds}.")
    if any(without_seed(s.config) != without_seed(group[0].config) for s in group[1:]):
        raise ValueError("seeds trained together must share every config field but `seed`.")


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
    train_step: steps.TrainStep
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
        return steps.evaluate_all(self.evaluate, self.state, self.datasets[0],
                                  self.eval_sharding,
                            self.config.max_eval_examples,
                            len(self.configs) if self.grouped else None,
                            self.config.eval_raw_weights)


# The programs of the last variant set up in this process, for its next seeds: a sweep trains
# a variant's seeds one after another, and building them again (tracing, and loading from the
# compilation cache) took ~9 s a run on the project's CPU.
_COMPILED: dict = {}


def compiled_programs(group: list[Settings], steps_per_epoch: int, num_classes: int, mesh):
    """(initializer, train step, eval step) of the variant of `group` (one `Settings` per seed,
    equal but for `seed`), built once per process and variant."""
    config, model_config = group[0].config, group[0].model
    key = (json.dumps(without_seed(config), sort_keys=True, default=repr), len(group),
           steps_per_epoch, num_classes, tuple(d.id for d in mesh.devices.flat),
           tuple(mesh.axis_names))
    if key not in _COMPILED:
        _COMPILED.clear()  # one variant's at a time: they hold compiled programs
        grouped = len(group) > 1
        model = network.Inception(model_config, network.runtime_for(
            model_config, AXIS if config.sync_batch_norm else None))
        schedule = optim.learning_rate(config, steps_per_epoch)
        tx = optim.optimizer(config, schedule)
        sample = jnp.zeros((1, config.image_size, config.image_size, 3), jnp.float32)
        _COMPILED[key] = (
            steps.initializer(model, tx, sample, NamedSharding(mesh, P()), grouped),
            *steps.build(model, config, tx, schedule, num_classes, mesh, grouped))
    return _COMPILED[key]


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


def set_up(group: list[Settings], workdirs, compilation_cache_dir,
           set_aside_stale=False) -> Training:
    """The data, run directories, mesh, state (each seed's latest checkpoint), compiled steps
    and logs of one program's runs; `claim` says what happens to a run directory made under
    another config."""
    called = time.time()
    same_variant(group)
    config, configs = group[0].config, [s.config for s in group]
    datasets = [input_pipeline.create(c, c.global_batch_size, c.eval_batch_size)
                for c in configs]
    num_classes, dataset = group[0].model.num_classes, datasets[0]
    if num_classes != dataset.num_classes:
        raise ValueError(f"model.num_classes={num_classes} but {dataset.name} has "
                         f"{dataset.num_classes} classes; set --config.model.num_classes="
                         f"{dataset.num_classes}, or leave it unset in the config to take the data's.")
    for workdir, c in zip(workdirs, configs):
        claim(workdir, c, set_aside_stale)
        os.makedirs(workdir, exist_ok=True)
    if config.compilation_cache:
        jax.config.update("jax_compilation_cache_dir",
                          compilation_cache_dir or os.path.join(workdirs[0], "jax_cache"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    mesh = jax.make_mesh((jax.device_count(),), (AXIS,))  # every device, one data axis
    grouped = len(group) > 1
    initialize, train_step, evaluate = compiled_programs(group, dataset.steps_per_epoch,
                                                         num_classes, mesh)
    managers = [ckpt.manager(workdir, c) for workdir, c in zip(workdirs, configs)]
    state, start_step = restore(initialize(steps.seed_keys([c.seed for c in configs],
                                                           grouped)),
                                managers, configs, workdirs, NamedSharding(mesh, P()))
    total_steps = int(round(config.num_epochs * dataset.steps_per_epoch))
    logs = [RunLog(w, c, total_steps, start_step, c.global_batch_size,
                   f"seed {c.seed}: " if grouped else "", began=called)
            for w, c in zip(workdirs, configs)]
    records = first_records(group, total_steps, dataset.steps_per_epoch)
    return Training(configs, workdirs, grouped, datasets, state, train_step, evaluate,
                    NamedSharding(mesh, P(None, AXIS) if grouped else P(AXIS)),
                    NamedSharding(mesh, P(AXIS)), managers, logs,
                    [ckpt.fingerprint(c) for c in configs], total_steps, start_step, records,
                    [True] * len(configs))


def restore(state: TrainState, managers, configs, workdirs, replicated):
    """Each seed's latest checkpoint (all at one step), stacked where several train together;
    `state` itself where there is none. Returns (state, its step)."""
    grouped = len(configs) > 1
    restored = [ckpt.restore_latest(m, seed_slice(state, i if grouped else None), c)
                for i, (m, c) in enumerate(zip(managers, configs))]
    at = [int(s.step) for s in restored]
    if len(set(at)) > 1:
        raise ValueError(f"seeds trained together must resume from the same step; their "
                         f"checkpoints are at steps {at} ({', '.join(workdirs)}).")
    if at[0]:
        state = (jax.jit(lambda *s: jax.tree_util.tree_map(lambda *x: jnp.stack(x), *s),
                         out_shardings=replicated)(*restored) if grouped else restored[0])
    return state, at[0]


def first_records(group: list[Settings], total_steps: int, steps_per_epoch: int) -> list[dict]:
    """What each seed's `final.json` holds from the start: its config, costs and machine."""
    table = cost.cost(group[0].model, group[0].config.image_size)
    return [{"config": s.config.to_dict(), "allocator": malloc.active(),
             # XLA:CPU splits its work by the cores it may use, so they set its rounding
             "backend": jax.default_backend(), "cpu_cores": len(os.sched_getaffinity(0)),
             "params": table.total.params, "macs": table.total.macs,
             "training_params": table.training_total.params, "total_steps": total_steps,
             "steps_per_epoch": steps_per_epoch} for s in group]


# ---------------------------------------------------------------------------------------------
# The loop.

def agree(flag: bool) -> bool:
    """Whether any process raised `flag` (all processes must stop at the same step)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils
    return bool(np.any(multihost_utils.process_allgather(np.array(flag))))


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
            run.state, metrics = run.train_step(run.state, read_batch(run, iterators, step))
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
                for i, results in enumerate(evaluate_or_save(run, done)):
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


def read_batch(run: Training, iterators, step: int) -> dict:
    """The next global batch; where the data cannot be read (an image that cannot be decoded,
    a file gone), the run is saved at `step` and the `DataError` says so: once the file is
    replaced or removed, the same command resumes there."""
    try:
        return run.batch(iterators)
    except input_pipeline.DataError as error:
        if step > run.start_step:
            run.save()
        raise type(error)(f"{error}, then the same command resumes the run at step {step}.") \
            from None


def evaluate_or_save(run: Training, step: int) -> list[dict]:
    """An evaluation during training; where the data cannot be read, the run is saved at
    `step` first and the `DataError` says so (as `read_batch`)."""
    try:
        return run.evaluate_now()
    except input_pipeline.DataError as error:
        run.save()
        raise type(error)(f"{error}, then the same command resumes the run at step {step}.") \
            from None


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
        step = int(run.member(run.state.step, 0))
        if step > run.start_step:
            run.save()
        try:
            evaluated = run.evaluate_now()
        except input_pipeline.DataError as error:
            raise type(error)(f"{error}, then the same command evaluates the run (trained and "
                              f"saved at step {step}).") from None
        for i, results in enumerate(evaluated):
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


def train_seeds(configs: list[Settings | ml_collections.ConfigDict], workdirs: list[str],
                compilation_cache_dir: str | None = None,
                set_aside_stale: bool = False) -> list[dict]:
    """Trains and evaluates the seeds `configs` (one variant: configs equal but for `seed`)
    as one program, each in its own workdir, resuming from their checkpoints (which must be
    at the same step). One config trains alone, without a seed axis. Each is a run's
    `Settings` (a sweep validated it), or a training config, validated here
    (`settings.validate`: the one conversion of its model fields).

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
    group = [c if isinstance(c, Settings) else validate(c) for c in configs]
    try:
        run = set_up(group, workdirs, compilation_cache_dir, set_aside_stale)
        return finish(run, loop(run))
    finally:
        for workdir in workdirs:
            run_lock.release(workdir)


def train_and_evaluate(config: Settings | ml_collections.ConfigDict, workdir: str,
                       compilation_cache_dir: str | None = None,
                       set_aside_stale: bool = False) -> dict:
    """Trains and evaluates `config` alone in `workdir` (see `train_seeds`); returns its
    final record."""
    return train_seeds([config], [workdir], compilation_cache_dir, set_aside_stale)[0]
