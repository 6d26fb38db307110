"""Orbax checkpoints of the whole training state, refused when they belong to another run, set
aside when they are damaged.

Each checkpoint holds the `TrainState` (parameters, optimizer state, moving averages, batch
statistics, step and RNG; the data position is the step, since the input pipeline is a
function of (seed, step)) and a JSON fingerprint of the run: its config's identity
(`run_dir.identity`), which must match to resume.
A newest checkpoint that cannot be read (truncated or corrupted files) is renamed
`<step>.damaged` by process 0 and the run resumes from the newest intact one.
"""

from __future__ import annotations

import json
import os
import sys

import jax
import ml_collections
import orbax.checkpoint as ocp

from inception_flax.run import run_dir
from inception_flax.utils import compat

def fingerprint(config: ml_collections.ConfigDict) -> dict:
    """What a checkpoint stores to say which run it belongs to: the config's identity (every
    field but the bookkeeping ones, `run_dir.identity`)."""
    return {"identity": run_dir.identity(config)}


def legacy_fields(meta: dict) -> dict:
    """The identity a checkpoint's stored fingerprint holds, in `run_dir.identity`'s form (one
    written before 2026-12-02 through `compat.legacy_fingerprint`)."""
    return meta["identity"] if "identity" in meta else compat.legacy_fingerprint(meta)


def differences(saved: dict, config: ml_collections.ConfigDict) -> list[str]:
    """The fields in which a checkpoint's stored fingerprint differs from `config`'s."""
    return run_dir.differing(legacy_fields(saved), config)


def stored_fields(workdir: str) -> dict | None:
    """The identity stored with the newest checkpoint in `workdir` (None where there is none
    or it cannot be read: `restore_latest` deals with damaged ones), read from its metadata
    alone."""
    step = latest_step(workdir)
    if not step:
        return None
    path = os.path.join(workdir, "checkpoints", str(step), "meta", "metadata")
    try:
        with open(path) as f:
            return legacy_fields(json.load(f))
    except (OSError, ValueError, AttributeError):
        return None


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


def restore_latest(manager: ocp.CheckpointManager, state, config: ml_collections.ConfigDict):
    """`state` itself where there is no checkpoint; else the newest intact one, restored with
    the shapes and shardings of `state`. A damaged one is set aside with a warning; a
    ValueError if the newest intact one was written for another run (another identity,
    `run_dir.identity`), or if every one is damaged."""
    target = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state)
    set_aside = []
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            saved = manager.restore(step, args=ocp.args.Composite(
                meta=ocp.args.JsonRestore()))["meta"]
            differing = differences(saved, config)
            if not differing:
                restored = manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target)))["state"]
        except Exception as error:  # noqa: BLE001 (orbax and TensorStore raise many kinds)
            set_aside.append(_set_aside(manager, step, error))
            continue
        if differing:
            raise ValueError(
                f"the checkpoint at step {step} in {manager.directory} was written for another "
                f"run (it differs in {', '.join(differing)}); use a new --workdir, the config "
                "it was written with, or --set_aside_stale to train this one afresh.")
        return restored
    if set_aside:
        raise ValueError(
            f"every checkpoint in {manager.directory} is damaged (set aside as "
            f"{', '.join(set_aside)}); run the command again to start from step 0.")
    return state


def _set_aside(manager: ocp.CheckpointManager, step: int, error: Exception) -> str:
    """Renames a damaged checkpoint `<step>.damaged` (process 0) and tells orbax; returns its
    new name."""
    directory = os.fspath(manager.directory)
    name = f"{step}.damaged"
    if jax.process_index() == 0:
        target = os.path.join(directory, name)
        suffix = 1
        while os.path.exists(target):
            suffix += 1
            target = os.path.join(directory, f"{step}.damaged{suffix}")
        os.rename(os.path.join(directory, str(step)), target)
        name = os.path.basename(target)
        print(f"warning: the checkpoint at step {step} in {directory} is damaged "
              f"({type(error).__name__}); set aside as {name}, resuming from an older one.",
              file=sys.stderr, flush=True)
    if jax.process_count() > 1:  # the others look again once process 0 has renamed it
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(f"checkpoint {step} set aside")
    manager.reload()
    return name
