"""Sweeps of the tiny training config, for the sweep tests: two variants of one seed; with
`:grouped` one variant of two seeds trained as one program; with `:until_decided` two variants
with seeds added in stages (looks at 2 and 3 seeds)."""

from experiments import base
from tests.scripts.tiny import tiny_config

TWO_VARIANTS = [{"relu": {}, "linear": {"model.factorization_activation": "linear"}}]


def get_config(arg=None):
    config = tiny_config(steps=2 if arg == "until_decided" else 6)
    if arg == "grouped":
        config.sweep = base(None, seeds=(0, 1), seeds_per_program=2, baseline="relu",
                            axes=[{"relu": {}}]).sweep
    elif arg == "until_decided":
        config.sweep = base(None, seeds=(0, 1, 2), baseline="relu", axes=TWO_VARIANTS,
                            until_decided=True, min_seeds=2, max_seeds=3, seeds_per_stage=1).sweep
    else:
        config.sweep = base(None, seeds=(0,), baseline="relu", axes=TWO_VARIANTS).sweep
    return config
