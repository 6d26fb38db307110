"""Sweeps of the tiny training config, for the sweep tests: two variants of one seed, or with
`:grouped` one variant of two seeds trained as one program."""

from experiments import base
from tests.scripts.tiny import tiny_config


def get_config(arg=None):
    config = tiny_config(steps=6)
    if arg == "grouped":
        config.sweep = base(None, seeds=(0, 1), seeds_per_program=2, baseline="relu",
                            axes=[{"relu": {}}]).sweep
    else:
        config.sweep = base(None, seeds=(0,), baseline="relu", axes=[{
            "relu": {}, "linear": {"model.factorization_activation": "linear"}}]).sweep
    return config
