"""A training config at the boundary: every numeric field's range, the one conversion to
`InceptionConfig`, and one sentence for each bad value."""

import dataclasses
import typing
from typing import Literal

import pytest

from configs import fashion_mnist, imagenet_inception_v3, inception
from inception_flax.run import settings
from inception_flax.model.architecture import InceptionConfig, get_preset

# (field, a value outside its range, a value at its edge that is allowed)
CASES = [
    ("global_batch_size", 0, 1), ("eval_batch_size", -8, 1), ("base_batch_size", 0, 1),
    ("learning_rate", -1.0, 1e-9), ("learning_rate", 0.0, 1e-9),
    ("lr_decay_rate", 0.0, 1.0), ("lr_decay_rate", 1.5, 1.0), ("lr_decay_epochs", 0.0, 0.1),
    ("warmup_epochs", -1.0, 0.0), ("ema_decay", 1.0, 0.0), ("ema_decay", -0.1, 0.0),
    ("gradient_clip_norm", -2.0, 0.0), ("weight_decay", -1e-5, 0.0),
    ("label_smoothing", 1.0, 0.0), ("aux_loss_weight", -0.4, 0.0),
    ("rmsprop_decay", 1.0, 0.0), ("rmsprop_epsilon", 0.0, 1e-8), ("momentum", 1.0, 0.0),
    ("num_epochs", -1.0, 0.0), ("num_epochs", float("inf"), 0.0), ("max_eval_examples", -1, 0), ("log_every_steps", 0, 1),
    ("eval_every_steps", -1, 0), ("checkpoint_every_steps", 0, 1), ("keep_checkpoints", 0, 1),
    ("seed", -1, 0), ("image_size", 0, 75), ("shuffle_buffer", 0, 1), ("data_threads", 0, 1),
    ("model.batch_norm_decay", 1.0, 0.0), ("model.batch_norm_epsilon", 0.0, 1e-5),
    ("model.dropout_rate", 1.0, 0.0), ("model.depth_multiplier", 0.0, 0.01),
]


def with_value(field, value):
    config = fashion_mnist.get_config()
    node, name = (config.model, field[6:]) if field.startswith("model.") else (config, field)
    node[name] = value
    return config


@pytest.mark.parametrize("field,bad,edge", CASES)
def test_every_numeric_field_is_range_checked(field, bad, edge):
    with pytest.raises(ValueError) as raised:
        settings.check_ranges(with_value(field, bad))
    message = str(raised.value)
    assert message.startswith(f"{field}={bad!r} is out of range: it must be ")
    assert message.endswith(f"set --config.{field}.") and message.count(". ") == 0
    settings.check_ranges(with_value(field, edge))  # the edge itself is allowed


def test_every_numeric_field_of_the_configs_has_a_range():
    hints = typing.get_type_hints(InceptionConfig)
    choices = {name for name, hint in hints.items() if typing.get_origin(hint) is Literal}
    for config in (fashion_mnist.get_config(), imagenet_inception_v3.get_config()):
        numeric = {k for k, v in config.items() if isinstance(v, (int, float))
                   and not isinstance(v, bool)}
        numeric |= {f"model.{k}" for k, v in config.model.items()  # not named choices (299)
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                    and k not in choices}
        assert numeric <= set(settings.RANGES), numeric - set(settings.RANGES)


def test_the_one_conversion():
    """A preset named by a string and overrides as plain values become the architecture once;
    the run records every field (the form before configs named presets, also accepted)."""
    config = fashion_mnist.get_config()
    assert config.model.preset == "inception_v3" and config.model.stem is None
    checked = settings.resolve(config)
    assert isinstance(checked.model, InceptionConfig) and checked.model.depth_multiplier == 0.25
    assert checked.model == get_preset("inception_v3", num_classes=10, depth_multiplier=0.25,
                                       aux_head="none", batch_norm_decay=0.99, lowering="xla")
    assert "preset" not in checked.config.model and checked.config.model.stem == "released"
    assert settings.resolve(checked.config) == checked  # the recorded form, resolved again
    assert settings.Settings.of_record(checked.config.to_dict()) == checked
    config.model.preset = "inception_v2_table1"
    config.model.modules_per_grid = (3, 4, 2)
    table1 = settings.resolve(config).model
    assert table1.stem == "table1" and table1.modules_per_grid == (3, 4, 2)
    with pytest.raises(ValueError, match=r"unknown InceptionConfig field\(s\) width \(model."
                                         r"width\); valid fields: aux_head"):
        InceptionConfig.from_fields({"width": 2})


def test_the_configs_name_every_architecture_field_with_its_type():
    hints = typing.get_type_hints(InceptionConfig)
    assert list(inception.FIELDS) == [f.name for f in dataclasses.fields(InceptionConfig)]
    for name, kind in inception.FIELDS.items():
        hint = hints[name]
        values = typing.get_args(hint) if typing.get_origin(hint) is Literal else ()
        expected = type(values[0]) if values else typing.get_origin(hint) or hint
        assert kind is expected, name
    with pytest.raises(ValueError, match="unknown architecture field"):
        inception.model(width=2)
