"""A training config at the boundary: the one conversion to the architecture's
`InceptionConfig`, and every check that can be made before anything is written.

`RANGES` lists every numeric field of a training config (`configs/`) with the values it takes;
`validate` checks them, the names and values of the model's fields, the input size, the batch
against the devices and the named choices, and returns the model's config. A sweep validates
every run before its first one starts.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import ml_collections

from inception_flax import models, optim
from inception_flax.config import InceptionConfig

# field: (lowest, highest, whether each bound is included, what the value means at a bound).
# None: no bound on that side.
RANGES = {
    "seed": (0, None, (True, False), ""),
    "image_size": (1, None, (True, False), "the variant's minimum is checked too"),
    "shuffle_buffer": (1, None, (True, False), ""),
    "data_threads": (1, None, (True, False), ""),
    "global_batch_size": (1, None, (True, False), "and a multiple of the device count"),
    "base_batch_size": (1, None, (True, False), ""),
    "eval_batch_size": (1, None, (True, False), "and a multiple of the device count"),
    "learning_rate": (0.0, None, (False, False), ""),
    "lr_decay_rate": (0.0, 1.0, (False, True), "1: no decay"),
    "lr_decay_epochs": (0.0, None, (False, False), ""),
    "warmup_epochs": (0.0, None, (True, False), ""),
    "rmsprop_decay": (0.0, 1.0, (True, False), ""),
    "rmsprop_epsilon": (0.0, None, (False, False), ""),
    "momentum": (0.0, 1.0, (True, False), ""),
    "gradient_clip_norm": (0.0, None, (True, False), "0: no clipping"),
    "weight_decay": (0.0, None, (True, False), "0: none"),
    "label_smoothing": (0.0, 1.0, (True, False), ""),
    "aux_loss_weight": (0.0, None, (True, False), ""),
    "ema_decay": (0.0, 1.0, (True, False), ""),
    "num_epochs": (0.0, None, (True, False), "0: evaluate only (see train_seeds)"),
    "max_eval_examples": (0, None, (True, False), "0: the whole evaluation split"),
    "log_every_steps": (1, None, (True, False), ""),
    "eval_every_steps": (0, None, (True, False), "0: at the end only"),
    "checkpoint_every_steps": (1, None, (True, False), ""),
    "keep_checkpoints": (1, None, (True, False), ""),
    # The model's numeric fields, checked by InceptionConfig itself.
    "model.depth_multiplier": (0.0, None, (False, False), ""),
    "model.min_depth": (1, None, (True, False), ""),
    "model.num_classes": (1, None, (True, False), ""),
    "model.dropout_rate": (0.0, 1.0, (True, False), ""),
    "model.batch_norm_decay": (0.0, 1.0, (True, False), ""),
    "model.batch_norm_epsilon": (0.0, None, (False, False), ""),
    "model.module_17_n": (3, None, (True, False), "and odd"),
}


def describe_range(field: str) -> str:
    low, high, (low_in, high_in), _ = RANGES[field]
    if high is None:
        return f"{'>=' if low_in else '>'} {low}"
    return f"in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"


def check_ranges(config: ml_collections.ConfigDict) -> None:
    """A ValueError naming the first field outside its range (see `RANGES`)."""
    for field, (low, high, (low_in, high_in), meaning) in RANGES.items():
        node, name = config, field
        if "." in field:
            parent, name = field.split(".", 1)
            node = config[parent]
        if name not in node:
            continue
        value = node[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            bad = True
        else:
            bad = (value < low or (value == low and not low_in)
                   or (high is not None and (value > high or (value == high and not high_in))))
        if bad:
            note = f" ({meaning})" if meaning else ""
            raise ValueError(f"{field}={value!r} is out of range: it must be a finite number "
                             f"{describe_range(field)}{note}; set --config.{field}.")


def model_config(config: ml_collections.ConfigDict) -> InceptionConfig:
    """The one conversion from a training config's `model` fields to `InceptionConfig`."""
    return InceptionConfig.from_fields(config.model.to_dict())


def model_fields(config: InceptionConfig) -> ml_collections.ConfigDict:
    """Every field of `config` as a ConfigDict, so that `--config.model.FIELD=...` is
    type-checked (the inverse of `model_config`)."""
    return ml_collections.ConfigDict(dataclasses.asdict(config))


def validate(config: ml_collections.ConfigDict) -> InceptionConfig:
    """Everything that can be checked before anything is written: every field's name, range
    and named choice, the input size for the variant, the batches against the devices.
    Returns the model's config; raises a one-sentence ValueError."""
    model = model_config(config)
    check_ranges(config)
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
