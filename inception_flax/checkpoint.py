"""Orbax checkpoints of the whole training state, refused when they belong to another run.

Each checkpoint holds the `TrainState` (parameters, optimizer state, moving averages, batch
statistics, step and RNG; the data position is the step, since the input pipeline is a
function of (seed, step)) and a JSON fingerprint of everything that must match to resume.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import orbax.checkpoint as ocp

# What decides the trajectory: a checkpoint written under other values is not resumed.
RESUME_FIELDS = ("model", "dataset", "image_size", "global_batch_size", "seed",
                 "preprocessing", "optimizer", "sync_batch_norm")


def fingerprint(config: ml_collections.ConfigDict) -> dict:
    """The RESUME_FIELDS as the checkpoint's JSON holds them (tuples read back as lists)."""
    return json.loads(json.dumps({k: (config[k].to_dict() if isinstance(
        config[k], ml_collections.ConfigDict) else config[k]) for k in RESUME_FIELDS}))


def latest_step(workdir: str) -> int:
    """The step of the newest checkpoint in `workdir` (0 where there is none), from the
    directory names alone."""
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        return 0
    return max((int(name) for name in os.listdir(directory) if name.isdigit()), default=0)


def manager(workdir: str, config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"),
                                 options=options, item_names=("state", "meta"))


def save(manager: ocp.CheckpointManager, state, meta: dict) -> None:
    manager.save(int(state.step), force=True, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))


def restore_latest(manager: ocp.CheckpointManager, state, meta: dict):
    """`state` itself where there is no checkpoint; else the latest one, restored with the
    shapes and shardings of `state`. A ValueError if it was written for another run."""
    step = manager.latest_step()
    if step is None:
        return state
    saved = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    if saved != meta:
        differing = sorted(k for k in set(saved) | set(meta) if saved.get(k) != meta.get(k))
        raise ValueError(
            f"the checkpoint at step {step} in {manager.directory} was written for another run "
            f"(it differs in {', '.join(differing)}); use a new --workdir, or the config it "
            "was written with.")
    target = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state)
    return manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target)))["state"]
