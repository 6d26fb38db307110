"""A training config at the boundary: every numeric field's range, the one conversion to
`InceptionConfig`, and one sentence for each bad value."""

import typing
from typing import Literal

import pytest

from configs import fashion_mnist, imagenet_inception_v3
from inception_flax import run_config
from inception_flax.config import InceptionConfig, get_preset

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
        run_config.check_ranges(with_value(field, bad))
    message = str(raised.value)
    assert message.startswith(f"{field}={bad!r} is out of range: it must be ")
    assert message.endswith(f"set --config.{field}.") and message.count(". ") == 0
    run_config.check_ranges(with_value(field, edge))  # the edge itself is allowed


def test_every_numeric_field_of_the_configs_has_a_range():
    hints = typing.get_type_hints(InceptionConfig)
    choices = {name for name, hint in hints.items() if typing.get_origin(hint) is Literal}
    for config in (fashion_mnist.get_config(), imagenet_inception_v3.get_config()):
        numeric = {k for k, v in config.items() if isinstance(v, (int, float))
                   and not isinstance(v, bool)}
        numeric |= {f"model.{k}" for k, v in config.model.items()  # not named choices (299)
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                    and k not in choices}
        assert numeric <= set(run_config.RANGES), numeric - set(run_config.RANGES)


def test_the_one_conversion_and_its_inverse():
    config = fashion_mnist.get_config()
    model = run_config.model_config(config)
    assert isinstance(model, InceptionConfig) and model.depth_multiplier == 0.25
    assert run_config.model_config(config) == get_preset(
        "inception_v3", **run_config.model_fields(model).to_dict())
    config.model.modules_per_grid = [3, 5, 2]  # as JSON gives it back: a hashable tuple
    assert run_config.model_config(config).modules_per_grid == (3, 5, 2)
    with pytest.raises(ValueError, match=r"unknown InceptionConfig field\(s\) width \(model."
                                         r"width\); valid fields: aux_head"):
        InceptionConfig.from_fields({"width": 2})
