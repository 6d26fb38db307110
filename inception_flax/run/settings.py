"""A training config at the boundary: the one conversion to the architecture's
`InceptionConfig` (`resolve`), and every check that can be made before anything is written.

`RANGES` lists every numeric field of a training config (`configs/`), and a sweep's own, with
the values it takes, `CHOICES` every named choice; `validate` checks them, the names and
values of the model's fields, the input size and the batch against the devices, and returns
the run's `Settings` (the config with every model field set, and the `InceptionConfig`),
which travel with the run.
A sweep validates each variant once, before its first run starts.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import jax
import ml_collections

from inception_flax.model import network
from inception_flax.model.architecture import InceptionConfig, get_preset
from inception_flax.run import optim

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
    # A sweep's own numbers (`sweeps/plan.py`), checked once per sweep.
    "sweep.alpha": (0.0, 1.0, (False, False), "the family-wise error of the verdicts"),
    "sweep.margin": (0.0, None, (True, False), "points of top-1 error; 0: no equivalence "
                     "verdicts"),
    "sweep.fixed_cost_tolerance": (0.0, 1.0, (False, False), "relative"),
}


# field: the named choices it takes.
CHOICES = {"preprocessing": ("inception", "resize_flip", "none"),
           "optimizer": optim.OPTIMIZERS, "lr_schedule": optim.SCHEDULES}


def describe_range(field: str) -> str:
    low, high, (low_in, high_in), _ = RANGES[field]
    if high is None:
        return f"{'>=' if low_in else '>'} {low}"
    return f"in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"


def check_ranges(config: ml_collections.ConfigDict, fields=RANGES) -> None:
    """A ValueError naming the first of `fields` (default: all of `RANGES`) outside its range;
    a field whose parent the config lacks (`sweep` in a run's config) is skipped."""
    for field in fields:
        low, high, (low_in, high_in), meaning = RANGES[field]
        node, name = config, field
        if "." in field:
            parent, name = field.split(".", 1)
            if parent not in config:
                continue
            node = config[parent]
        if name not in node or node[name] is None:  # None: the preset's value, checked after
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


@dataclasses.dataclass(frozen=True)
class Settings:
    """A training config checked at the boundary (`validate`): `config` with every field of
    `model` set (the form a run records), and `model`, the architecture it builds (the one
    conversion to `InceptionConfig`). It travels with the run."""

    config: ml_collections.ConfigDict
    model: InceptionConfig

    @classmethod
    def of_record(cls, fields: dict) -> "Settings":
        """The settings a run recorded (every model field set): no check is repeated."""
        config = ml_collections.ConfigDict(fields)
        return cls(config, InceptionConfig.from_fields(config.model.to_dict()))


def resolve(config: ml_collections.ConfigDict) -> Settings:
    """The one conversion: the config's `model` (a preset named by a string and fields, those
    left None taking the preset's values: `configs/inception.py`) to `InceptionConfig`, and
    the config with every model field set and no preset, as runs record it. A config whose
    model lists every field without a preset (the form before 2026-12-02) is taken as it is."""
    fields = dict(config.model.to_dict())
    preset = fields.pop("preset", None) or "inception_v3"
    model = get_preset(preset, **{k: v for k, v in fields.items() if v is not None})
    resolved = ml_collections.ConfigDict(config.to_dict())
    resolved.model = ml_collections.ConfigDict(dataclasses.asdict(model))
    return Settings(resolved, model)


_NOTED: set = set()


def with_data_classes(config: ml_collections.ConfigDict, required: bool = True,
                      recorded: dict | None = None) -> ml_collections.ConfigDict:
    """`config`, with `model.num_classes` from its data where it is left None (the ImageNet
    config's default: a 100-class subset trains a 100-way head), read from the data's own
    metadata (`input_pipeline.num_classes`: a `DataError` where the data cannot be read).
    Where the data cannot be read but its runs recorded the count (`recorded`: {dataset:
    classes}, a finished sweep's), that count: the data is needed only for runs left to
    train (checked then). Not `required` (a dry run): where the data cannot be read, the
    preset's count, said on stderr (once: the config returned has it)."""
    if "model" not in config or config.model.get("num_classes") is not None:
        return config
    from inception_flax.run import input_pipeline
    try:
        classes = input_pipeline.num_classes(config)
    except input_pipeline.DataError as error:
        if (recorded or {}).get(config.dataset):
            classes = recorded[config.dataset]
        elif required:
            raise
        else:
            classes = get_preset(config.model.get("preset") or "inception_v3").num_classes
            note = (f"note: model.num_classes is the data's, which cannot be read now "
                    f"({str(error).rstrip('.')}); what is listed assumes the preset's "
                    f"{classes}.")
            if note not in _NOTED:  # once, for all the variants of a sweep
                _NOTED.add(note)
                print(note, file=sys.stderr)
    config = ml_collections.ConfigDict(config.to_dict())
    config.model.num_classes = classes
    return config


def validate(config: ml_collections.ConfigDict, data: bool = True) -> Settings:
    """Everything that can be checked before anything is written: every field's name, range
    and named choice, the input size for the variant, the batches against the devices; the
    data's class count where `model.num_classes` is None (`with_data_classes`; not `data`:
    a dry run, which reads no data where it cannot). Returns the run's `Settings`; raises a
    one-sentence ValueError."""
    settings = resolve(with_data_classes(config, required=data))
    config, model = settings.config, settings.model
    check_ranges(config)
    devices = jax.device_count()
    for name in ("global_batch_size", "eval_batch_size"):
        if config[name] % devices:
            raise ValueError(f"{name}={config[name]} does not split over {devices} devices; "
                             f"use a multiple of {devices}.")
    if not network.fits(model, config.image_size, train=True):
        minimum = network.min_input_size(model, train=True)
        raise ValueError(f"image_size={config.image_size} is too small for this variant in "
                         f"training; it needs at least {minimum} (or set model.aux_head='none', "
                         f"minimum {network.min_input_size(model.replace(aux_head='none'))}).")
    for name, choices in CHOICES.items():
        if config[name] not in choices:
            raise ValueError(f"{name}={config[name]!r} is not valid; choose "
                             f"{' or '.join(map(repr, choices))}.")
    return settings
