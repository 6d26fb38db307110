"""A two-variant sweep of the tiny training config, for the sweep tests."""

from experiments import base
from tests.scripts.tiny import tiny_config


def get_config(arg=None):
    config = tiny_config(steps=6)
    sweep = base(None, seeds=(0,), baseline="relu", axes=[{
        "relu": {}, "linear": {"model.factorization_activation": "linear"}}]).sweep
    config.sweep = sweep
    return config
